//! The reporter thread: PROCESS_STARTED once, then every interval a
//! REQUEST sample (the interval drained from `recording`) and the slow
//! requests, and PROCESS_STOPPING when the process stops. mod_wsgi 6 sends
//! no PROCESS or SERVER samples from these processes; neither does this.
use super::wire::{field, Datagram, Kind, MAX_DATAGRAM};
use super::{slow, Identity, Service};
use crate::wsgi::metrics_api::{cpu_times, rss};
use crate::wsgi::recording::{self, Phase, PHASES};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// Per-thread arrays hold at most this many threads (mod_wsgi's bound,
/// which keeps a sample within one datagram).
const MAX_SLOTS: usize = 128;

struct Reporter {
    socket: UnixDatagram,
    service: Service,
    identity: Identity,
    pid: u32,
    parent_pid: u32,
    hostname: Vec<u8>,
    /// "3.13.5": the running interpreter's, as mod_wsgi reports it.
    python_version: Vec<u8>,
    seq: AtomicU32,
    /// Serialises ticks (the thread's and the last one at shutdown).
    tick: Mutex<()>,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();
static STOPPED: AtomicBool = AtomicBool::new(false);
/// Wakes the thread early when the process stops.
static WAKE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

pub fn running() -> bool {
    REPORTER.get().is_some() && !STOPPED.load(Ordering::Relaxed)
}

fn stamp() -> f64 {
    recording::now_us() as f64 / 1e6
}

fn python_version() -> Vec<u8> {
    // SAFETY: Py_GetVersion returns a static NUL-terminated string and
    // needs neither the GIL nor an initialized interpreter.
    let full = unsafe { std::ffi::CStr::from_ptr(pyo3::ffi::Py_GetVersion()) };
    let full = full.to_bytes();
    full.split(|&b| b == b' ').next().unwrap_or(full).to_vec()
}

fn hostname() -> Vec<u8> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 {
        buf[..n].to_vec()
    } else {
        Vec::new()
    }
}

impl Reporter {
    fn datagram(&self, kind: Kind) -> Datagram {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        Datagram::new(kind, self.pid, seq, stamp())
    }

    /// Sends without waiting; a datagram nobody takes (no listener, full
    /// queue) is dropped, as mod_wsgi does.
    fn send(&self, d: Datagram) {
        let buf = d.finish();
        if buf.len() <= MAX_DATAGRAM {
            let _ = self.socket.send_to(&buf, &self.service.path);
        }
    }

    fn identity(&self, d: &mut Datagram, versions: bool) {
        let id = &self.identity;
        if versions {
            d.bytes(
                field::MOD_WSGI_VERSION,
                concat!("mod_wsgi_rs/", env!("CARGO_PKG_VERSION")).as_bytes(),
                31,
            )
            .bytes(field::PYTHON_VERSION, &self.python_version, 31)
            .bytes(field::APACHE_VERSION, id.apache_version.as_bytes(), 63)
            .bytes(field::MPM_NAME, id.mpm_name.as_bytes(), 31);
        }
        d.bytes(field::HOSTNAME, &self.hostname, 255);
        if !id.process_group.is_empty() {
            d.bytes(field::PROCESS_GROUP, id.process_group.as_bytes(), 255);
        }
        if versions {
            d.u64(field::PROCESS_PARENT_PID, u64::from(self.parent_pid));
        }
    }

    fn started(&self) {
        let mut d = self.datagram(Kind::ProcessStarted);
        self.identity(&mut d, true);
        self.send(d);
    }

    /// One interval's REQUEST sample, then its slow requests.
    fn tick(&self) {
        let _one = self.tick.lock().unwrap_or_else(|p| p.into_inner());
        let now = recording::now_us();
        let cpu = cpu_times();
        let drained = recording::drain(now, cpu);
        let mut d = self.datagram(Kind::Request);
        self.identity(&mut d, true);
        self.sample(&mut d, &drained, now, cpu);
        self.send(d);
        if let Some(threshold) = crate::wsgi::slow::threshold_us() {
            let server_pid = if self.identity.daemon { 0 } else { self.pid };
            for record in slow::take(now, threshold) {
                let mut d = self.datagram(Kind::SlowRequest);
                slow::encode(&record, &mut d, server_pid);
                self.send(d);
            }
        }
    }

    fn sample(&self, d: &mut Datagram, r: &recording::Drained, now: i64, cpu: (f64, f64)) {
        let period = ((now - r.start) as f64 / 1e6).max(1e-6);
        let maximum = self.identity.threads.max(1);
        let user = (cpu.0 - r.cpu0.0).max(0.0) / period;
        let system = (cpu.1 - r.cpu0.1).max(0.0) / period;
        let (rss, peak) = rss();
        let threshold = crate::wsgi::slow::threshold_us().unwrap_or(0);
        let width = maximum.min(MAX_SLOTS);
        let slots = &r.slots[..r.slots.len().min(width)];
        let active = slots
            .iter()
            .filter(|s| s.completed > 0 || s.elapsed_us > 0)
            .count();
        d.f64(field::SAMPLE_PERIOD, period)
            .f64(field::TELEMETRY_INTERVAL, self.service.interval)
            .f64(field::SLOW_REQUESTS_THRESHOLD, threshold as f64 / 1e6)
            .u64(field::REQUEST_COUNT, r.count)
            .f64(field::REQUEST_THROUGHPUT, r.count as f64 / period)
            .f64(
                field::CAPACITY_UTILIZATION,
                r.busy as f64 / 1e6 / period / maximum as f64,
            )
            .f64(field::CPU_USER_UTILIZATION, user)
            .f64(field::CPU_SYSTEM_UTILIZATION, system)
            .f64(field::CPU_UTILIZATION, user + system)
            .u64(field::MEMORY_RSS, rss.max(0) as u64)
            .u64(field::MEMORY_MAX_RSS, peak.max(0) as u64)
            .u64(field::REQUEST_THREADS_MAXIMUM, maximum as u64)
            .u64(
                field::REQUEST_THREADS_STARTED,
                r.threads_started.min(maximum) as u64,
            )
            .u64(field::REQUEST_THREADS_ACTIVE, active as u64);
        let i = &r.interval;
        let requests = i.requests.max(1) as f64;
        let daemon = crate::wsgi::metrics_api::in_daemon();
        for (n, (phase, _)) in PHASES.iter().enumerate() {
            // Queue and daemon times exist in daemon processes only.
            if !daemon && matches!(phase, Phase::Queue | Phase::Daemon) {
                continue;
            }
            let p = &i.phases[*phase as usize];
            let n = n as u16;
            d.f64(field::PHASE_MEAN + n, p.total / requests);
            if let Some((min, max)) = p.min_max() {
                d.f64(field::PHASE_MIN + n, min as f64 / 1e6)
                    .f64(field::PHASE_MAX + n, max as f64 / 1e6);
            }
            let buckets: Vec<i32> = p
                .buckets
                .iter()
                .map(|&b| b.min(i32::MAX as u64) as i32)
                .collect();
            d.i32s(field::PHASE_BUCKETS + n, &buckets);
        }
        d.u64(field::INPUT_BYTES_TOTAL, i.input_bytes)
            .u64(field::INPUT_READS_TOTAL, i.input_reads)
            .u64(field::OUTPUT_BYTES_TOTAL, i.output_bytes)
            .u64(field::OUTPUT_WRITES_TOTAL, i.output_writes);
        for (n, total) in i.status.iter().enumerate() {
            d.u64(field::STATUS_TOTAL + n as u16, *total);
        }
        let padded = |f: &dyn Fn(&recording::SlotSnapshot) -> f64| -> Vec<f64> {
            let mut v: Vec<f64> = slots.iter().map(f).collect();
            v.resize(width, 0.0);
            v
        };
        let mut completed: Vec<i32> = slots
            .iter()
            .map(|s| s.completed.min(i32::MAX as u64) as i32)
            .collect();
        completed.resize(width, 0);
        d.i32s(field::REQUEST_THREADS_COMPLETED, &completed)
            .f64s(
                field::REQUEST_THREADS_BUSY_TIME,
                &padded(&|s| s.busy_us as f64 / 1e6),
            )
            .f64s(field::REQUEST_THREADS_CPU_TIME, &padded(&|_| 0.0))
            .f64s(
                field::REQUEST_THREADS_CURRENT_ELAPSED,
                &padded(&|s| s.elapsed_us as f64 / 1e6),
            )
            .f64s(
                field::REQUEST_THREADS_MAX_DURATION,
                &padded(&|s| s.max_us as f64 / 1e6),
            );
    }

    fn stopping(&self, reason: &str) {
        let (active, lifetime) = {
            let st = recording::state();
            let active = st
                .slots
                .iter()
                .filter(|s| s.running_since.is_some())
                .count();
            (active, st.count)
        };
        let mut d = self.datagram(Kind::ProcessStopping);
        self.identity(&mut d, false);
        d.bytes(field::SHUTDOWN_REASON, reason.as_bytes(), 63)
            .u64(field::ACTIVE_REQUESTS_AT_DECISION, active as u64)
            .u64(field::LIFETIME_REQUEST_COUNT, lifetime);
        self.send(d);
    }
}

/// Starts recording and the reporter thread (once per process).
pub fn start(service: Service, identity: Identity) {
    let socket = match UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            return crate::apache::log::server_status(
                crate::wsgi::transport::Level::Warning,
                e.raw_os_error().unwrap_or(0),
                &format!(
                    "WSGI0132: Telemetry reporter could not open target '{}'; metrics will not be sent.",
                    service.path
                ),
            )
        }
    };
    let reporter = Reporter {
        socket,
        service,
        identity,
        pid: std::process::id(),
        // SAFETY: getppid has no preconditions.
        parent_pid: unsafe { libc::getppid() } as u32,
        hostname: hostname(),
        python_version: python_version(),
        seq: AtomicU32::new(0),
        tick: Mutex::new(()),
    };
    if REPORTER.set(reporter).is_err() {
        return;
    }
    recording::start(cpu_times());
    let spawned = std::thread::Builder::new()
        .name("wsgi-telemetry".into())
        .spawn(run);
    if let Err(e) = spawned {
        crate::apache::log::server_status(
            crate::wsgi::transport::Level::Warning,
            e.raw_os_error().unwrap_or(0),
            "WSGI0133: Unable to create telemetry reporter thread; metrics will not be sent.",
        );
    }
}

fn run() {
    let Some(r) = REPORTER.get() else { return };
    let _ = std::panic::catch_unwind(|| {
        r.started();
        let every = Duration::from_secs_f64(r.service.interval.max(0.1));
        loop {
            let guard = WAKE.0.lock().unwrap_or_else(|p| p.into_inner());
            drop(WAKE.1.wait_timeout(guard, every));
            if STOPPED.load(Ordering::Relaxed) {
                return;
            }
            r.tick();
        }
    });
}

/// PROCESS_STOPPING, and the thread's ticks end.
pub fn stopping(reason: &str) {
    let Some(r) = REPORTER.get() else { return };
    if STOPPED.swap(true, Ordering::Relaxed) {
        return;
    }
    WAKE.1.notify_all();
    let _ = std::panic::catch_unwind(|| r.stopping(reason));
}

/// The last, partial interval (after the process's requests ended).
pub fn last_tick() {
    if let Some(r) = REPORTER.get() {
        let _ = std::panic::catch_unwind(|| r.tick());
    }
}
