//! mod_wsgi 6's telemetry service (WSGITelemetryService): every process
//! that serves requests runs a reporter thread that sends its figures as
//! datagrams to a UNIX socket, where mod_wsgi-telemetry's ingester reads
//! them. Sending never blocks a request: the reporter has its own thread,
//! its socket is non-blocking, and a datagram nobody takes is dropped.
pub mod config;
mod reporter;
pub mod slow;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

pub use config::Service;

/// The service of this configuration generation, set in the Apache parent
/// before children and daemons fork.
static SERVICE: Mutex<Option<Service>> = Mutex::new(None);
static ENABLED: AtomicBool = AtomicBool::new(false);
static OPTIONS: AtomicU32 = AtomicU32::new(0);

/// post_config, in the parent: this generation's directives.
pub fn configure(service: Option<Service>, options: u32) {
    ENABLED.store(service.is_some(), Ordering::Relaxed);
    OPTIONS.store(options, Ordering::Relaxed);
    *SERVICE.lock().unwrap_or_else(|p| p.into_inner()) = service;
}

/// Whether a telemetry service is configured: then the reporter owns the
/// request figures and the Python accessors return None.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn service() -> Option<Service> {
    SERVICE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// What a process tells the service about itself.
pub struct Identity {
    /// The daemon process group ("" in Apache's children).
    pub process_group: String,
    pub daemon: bool,
    /// Request threads of this process.
    pub threads: usize,
    pub mpm_name: String,
    pub apache_version: String,
}

/// A process starts serving: records its requests and starts its
/// reporter (once; nothing when no service is configured).
pub fn start(identity: Identity) {
    if let Some(service) = service() {
        reporter::start(service, identity);
    }
}

/// The process decided to stop: PROCESS_STOPPING, with the requests then
/// in flight; the periodic samples end.
pub fn stopping(reason: &str) {
    if enabled() {
        reporter::stopping(reason);
    }
}

/// The process's requests are over: sends the interval since the last
/// sample, which would otherwise be lost.
pub fn stopped() {
    if enabled() {
        reporter::last_tick();
    }
}

/// A request begins: entered in the in-flight table when slow requests
/// are reported (WSGITelemetryService with WSGISlowRequests).
pub fn request_begin(
    head: &crate::wsgi::head::RequestHead,
    start_us: i64,
) -> Option<slow::InFlight> {
    if !enabled() || !reporter::running() || crate::wsgi::slow::threshold_us().is_none() {
        return None;
    }
    let ua = OPTIONS.load(Ordering::Relaxed) & config::CAPTURE_USER_AGENT != 0;
    Some(slow::begin(head, start_us, ua))
}

/// The request ended after `duration_us`.
pub fn request_end(request: slow::InFlight, duration_us: i64, outcome: slow::Outcome) {
    let threshold = crate::wsgi::slow::threshold_us().unwrap_or(i64::MAX);
    slow::finished(request, duration_us, threshold, outcome);
}
