//! What the request path, the daemon processes and the parent count: each
//! call is a few relaxed atomic adds in the shared area (and nothing when
//! there is none: tests, `mod_wsgi_rs check`).
use super::shm::{Area, Proc, GROUPS, PROCS};
use crate::daemon::shared::{Cause, Reason};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering::Relaxed};

static AREA: AtomicPtr<Area> = AtomicPtr::new(std::ptr::null_mut());

/// WSGIServerMetrics (Apache's children) or server-metrics= (a daemon
/// group): whether mod_wsgi.server_metrics() answers.
static SERVER_METRICS: AtomicBool = AtomicBool::new(false);

pub fn set_server_metrics(on: bool) {
    SERVER_METRICS.store(on, Relaxed);
}

pub fn server_metrics_enabled() -> bool {
    SERVER_METRICS.load(Relaxed)
}

pub fn set_area(a: &'static Area) {
    AREA.store(a as *const Area as *mut Area, Relaxed);
}

pub fn area() -> Option<&'static Area> {
    // SAFETY: NULL or the never-unmapped Area stored by set_area.
    unsafe { AREA.load(Relaxed).as_ref() }
}

/// Restart causes, in the order of `Group::restarts`.
pub const RESTART_CAUSES: [&str; 13] = [
    "shutdown",
    "maximum-requests",
    "restart-interval",
    "inactivity-timeout",
    "cpu-time-limit",
    "graceful",
    "request-timeout",
    "service-scripts",
    "script-reload",
    "startup-timeout",
    "deadlock-timeout",
    "exited",
    "crash",
];

fn restart_cause(c: Cause) -> usize {
    match c {
        Cause::Recycled(r) => match r {
            Reason::Shutdown => 0,
            Reason::MaximumRequests => 1,
            Reason::RestartInterval => 2,
            Reason::InactivityTimeout => 3,
            Reason::CpuTimeLimit => 4,
            Reason::GracefulSignal => 5,
            Reason::RequestTimeout => 6,
            Reason::ServiceScripts => 7,
            Reason::ScriptReload => 8,
            Reason::StartupTimeout => 9,
            Reason::DeadlockTimeout => 10,
        },
        Cause::Exited(_) => 11,
        Cause::Signal(_) => 12,
    }
}

/// Why an Apache child answered for a daemon group with 500/502/503/504
/// (mod_wsgi 6's status for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 503: the group's socket refused or did not exist until connect-timeout.
    Connect,
    /// 500: the request could not be sent (or no socket could be made).
    Send,
    /// 503: no process of the group ran for connect-timeout.
    NoProcess,
    /// 503: the process kept restarting for a changed script.
    RestartLoop,
    /// 504: queue-timeout.
    QueueTimeout,
    /// 502: the process was restarted for request-timeout before the headers.
    RequestTimeout,
    /// 504: socket-timeout waiting for the response headers.
    SocketTimeout,
    /// 502: the daemon closed the connection before the headers (it died).
    DaemonCrash,
    /// 504: interrupt-timeout raised RequestTimeout in the request's thread.
    RequestInterrupted,
}

/// (cause label, status), in the order of `Group::errors`.
pub const FAILURES: [(&str, u16); 9] = [
    ("connect", 503),
    ("send", 500),
    ("no-process", 503),
    ("restart-loop", 503),
    ("queue-timeout", 504),
    ("request-timeout", 502),
    ("socket-timeout", 504),
    ("daemon-crash", 502),
    ("request-interrupted", 504),
];

/// A proxied request failed with `f` (Apache child).
pub fn failure(group: &str, f: Failure) {
    if let Some(a) = area() {
        a.groups[a.group(group)].errors[f as usize].fetch_add(1, Relaxed);
    }
}

thread_local! {
    /// (process group, application group, slot) already looked up here.
    static LABELS: RefCell<Vec<(String, String, usize)>> = const { RefCell::new(Vec::new()) };
}

/// The label slot of a request (cached per thread: no lock, no allocation
/// once seen).
pub fn label(process_group: &str, application_group: &str) -> Option<usize> {
    let a = area()?;
    LABELS.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((_, _, i)) = c
            .iter()
            .find(|(p, g, _)| p == process_group && g == application_group)
        {
            return Some(*i);
        }
        let i = a.label(process_group, application_group);
        if c.len() < 256 {
            c.push((process_group.to_string(), application_group.to_string(), i));
        }
        Some(i)
    })
}

/// A request of label slot `i` ended (Apache child, log_transaction).
pub fn request(i: usize, status: i32, micros: u64, bytes_in: u64, bytes_out: u64) {
    let Some(l) = area().and_then(|a| a.labels.get(i)) else {
        return;
    };
    let class = (status / 100).clamp(1, 5) as usize - 1;
    l.requests[class].fetch_add(1, Relaxed);
    l.latency.observe_us(micros);
    l.bytes_in.fetch_add(bytes_in, Relaxed);
    l.bytes_out.fetch_add(bytes_out, Relaxed);
}

fn proc_slot(id: usize) -> Option<&'static Proc> {
    area()?.procs.get(id)
}

/// The parent forked `pid` into process slot `id` of group `group`.
pub fn proc_started(id: usize, pid: i32, group: &str) {
    let (Some(a), Some(p)) = (area(), proc_slot(id)) else {
        return;
    };
    p.clear();
    p.group.store(a.group(group) as u32 + 1, Relaxed);
    p.pid.store(pid, Relaxed);
}

/// The parent reaped the process of slot `id`, of group `group`.
pub fn proc_died(id: usize, group: &str, cause: Cause) {
    let Some(a) = area() else { return };
    a.groups[a.group(group)].restarts[restart_cause(cause)].fetch_add(1, Relaxed);
    if let Some(p) = proc_slot(id) {
        p.clear();
    }
}

/// This daemon process's slot (1 + id) and pid: its writes go to the slot
/// only while the slot is still its own (a new generation resets them).
static MY_SLOT: AtomicUsize = AtomicUsize::new(0);
static MY_PID: AtomicI32 = AtomicI32::new(0);

fn mine() -> Option<&'static Proc> {
    let p = proc_slot(MY_SLOT.load(Relaxed).checked_sub(1)?)?;
    (p.pid.load(Relaxed) == MY_PID.load(Relaxed)).then_some(p)
}

/// A daemon process of `group` in slot `id` is ready with `threads` threads.
pub fn daemon_live(id: usize, group: &str, threads: u32) {
    let Some(a) = area() else { return };
    if id >= PROCS {
        return;
    }
    let pid = std::process::id() as i32;
    MY_SLOT.store(id + 1, Relaxed);
    MY_PID.store(pid, Relaxed);
    let p = &a.procs[id];
    p.group
        .store(a.group(group).min(GROUPS - 1) as u32 + 1, Relaxed);
    p.pid.store(pid, Relaxed);
    p.threads.store(threads, Relaxed);
    p.interpreters.fetch_max(1, Relaxed);
}

/// A daemon thread took (+1) or finished (-1) a request.
pub fn daemon_busy(delta: i32) {
    if let Some(p) = mine() {
        p.busy.fetch_add(delta, Relaxed);
    }
}

/// This daemon process has (at least) `n` Python interpreters.
pub fn daemon_interpreters(n: u32) {
    if let Some(p) = mine() {
        p.interpreters.fetch_max(n, Relaxed);
    }
}

/// A daemon thread starts a request of `group` that reached Apache at
/// `arrived` (µs since the epoch, the head's mod_wsgi.request_start).
pub fn daemon_request(group: &str, arrived: Option<i64>) {
    let Some(p) = mine() else { return };
    p.requests.fetch_add(1, Relaxed);
    let (Some(a), Some(arrived)) = (area(), arrived) else {
        return;
    };
    let gi = match p.group.load(Relaxed) {
        0 => a.group(group),
        n => n as usize - 1,
    };
    let waited = now_us().saturating_sub(arrived).max(0) as u64;
    a.groups[gi.min(GROUPS - 1)].queue.observe_us(waited);
}

/// Microseconds since the epoch (apr_time_t).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_a_name() {
        assert_eq!(
            RESTART_CAUSES[restart_cause(Cause::Recycled(Reason::MaximumRequests))],
            "maximum-requests"
        );
        assert_eq!(RESTART_CAUSES[restart_cause(Cause::Signal(9))], "crash");
        assert_eq!(
            FAILURES[Failure::DaemonCrash as usize],
            ("daemon-crash", 502)
        );
        assert!(RESTART_CAUSES.len() <= super::super::shm::CAUSES);
    }
}
