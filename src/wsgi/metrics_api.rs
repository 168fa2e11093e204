//! `mod_wsgi.start_recording_metrics()`, `request_metrics()` and
//! `process_metrics()`: the figures of `recording`, as the dicts of mod_wsgi
//! 6 (same keys, same units: seconds as floats, times since the epoch,
//! memory in bytes). Both accessors return None until recording starts.
use super::recording::{self, PHASES};
use crate::python::guard;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

static IN_DAEMON: AtomicBool = AtomicBool::new(false);
static PROCESS_START: AtomicI64 = AtomicI64::new(0);

/// The process starts serving (`daemon`: a daemon process).
pub fn process_started(daemon: bool) {
    IN_DAEMON.store(daemon, Ordering::Relaxed);
    PROCESS_START.store(recording::now_us(), Ordering::Relaxed);
}

/// Whether this is a daemon process (queue and daemon times exist).
pub fn in_daemon() -> bool {
    IN_DAEMON.load(Ordering::Relaxed)
}

/// The process's (user, system) CPU seconds.
pub(crate) fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime), secs(u.ru_stime))
}

/// (current, peak) resident set size in bytes.
pub(crate) fn rss() -> (i64, i64) {
    // SAFETY: as above; sysconf has no preconditions.
    let (peak_kb, page) = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        (u.ru_maxrss, libc::sysconf(libc::_SC_PAGESIZE))
    };
    let current = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map_or(0, |pages| pages * page);
    (current, peak_kb * 1024)
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// `threads_per_process` of the calling interpreter's `mod_wsgi` module.
fn threads_maximum(py: Python<'_>) -> usize {
    py.import("mod_wsgi")
        .and_then(|m| m.getattr("threads_per_process"))
        .and_then(|n| n.extract::<usize>())
        .unwrap_or(1)
        .max(1)
}

#[pyfunction]
pub fn start_recording_metrics() -> PyResult<()> {
    guard::catch(|| {
        recording::start(cpu_times());
        Ok(())
    })
}

#[pyfunction]
pub fn process_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    guard::catch(|| {
        // With a telemetry service the reporter owns the figures (mod_wsgi 6).
        if !recording::enabled() || crate::telemetry::enabled() {
            return Ok(py.None());
        }
        let now = recording::now_us();
        let (busy, count, threads, active) = {
            let st = recording::state();
            let threads: Vec<(usize, u64)> = st
                .slots
                .iter()
                .enumerate()
                .map(|(n, s)| (n + 1, s.total_completed))
                .collect();
            let active = st
                .slots
                .iter()
                .filter(|s| s.running_since.is_some())
                .count();
            (st.busy_until(now), st.count, threads, active)
        };
        let d = PyDict::new(py);
        let (rss, peak) = rss();
        let (user, system) = cpu_times();
        let start = PROCESS_START.load(Ordering::Relaxed);
        d.set_item("pid", std::process::id())?;
        d.set_item("request_busy_time", secs(busy as i64))?;
        d.set_item("request_count", count)?;
        d.set_item("memory_max_rss", peak)?;
        d.set_item("memory_rss", rss)?;
        d.set_item("cpu_user_time", user)?;
        d.set_item("cpu_system_time", system)?;
        d.set_item("cpu_time", user + system)?;
        d.set_item("restart_time", secs(start))?;
        d.set_item("current_time", secs(now))?;
        d.set_item("running_time", (now - start).max(0) / 1_000_000)?;
        d.set_item("request_threads", threads.len())?;
        d.set_item("active_requests", active)?;
        let list = PyList::empty(py);
        for (id, n) in threads {
            let t = PyDict::new(py);
            t.set_item("thread_id", id)?;
            t.set_item("request_count", n)?;
            list.append(t)?;
        }
        d.set_item("threads", list)?;
        Ok(d.into_any().unbind())
    })
}

#[pyfunction]
pub fn request_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    guard::catch(|| {
        // With a telemetry service the reporter owns the figures (mod_wsgi 6).
        if !recording::enabled() || crate::telemetry::enabled() {
            return Ok(py.None());
        }
        let maximum = threads_maximum(py);
        let now = recording::now_us();
        let cpu = cpu_times();
        let recording::Drained {
            interval,
            slots,
            start,
            busy,
            count,
            cpu0,
            threads_started,
        } = recording::drain(now, cpu);
        let period = (secs(now - start)).max(1e-6);
        let d = PyDict::new(py);
        let (rss, peak) = rss();
        let user = (cpu.0 - cpu0.0).max(0.0) / period;
        let system = (cpu.1 - cpu0.1).max(0.0) / period;
        d.set_item("pid", std::process::id())?;
        d.set_item("start_time", secs(start))?;
        d.set_item("stop_time", secs(now))?;
        d.set_item("sample_period", period)?;
        for (key, value) in [
            ("cpu_user_utilization", user),
            ("cpu_user_time", user),
            ("cpu_system_utilization", system),
            ("cpu_system_time", system),
            ("cpu_utilization", user + system),
            ("cpu_time", user + system),
        ] {
            d.set_item(key, value)?;
        }
        d.set_item("memory_max_rss", peak)?;
        d.set_item("memory_rss", rss)?;
        set_thread_figures(&d, &slots, maximum, threads_started)?;
        d.set_item(
            "capacity_utilization",
            secs(busy as i64) / period / maximum as f64,
        )?;
        d.set_item("request_count", count)?;
        d.set_item("request_throughput", count as f64 / period)?;
        for (n, v) in interval.status.iter().enumerate() {
            d.set_item(format!("status_{}xx", n + 1), v)?;
        }
        d.set_item("input_bytes", interval.input_bytes)?;
        d.set_item("input_reads", interval.input_reads)?;
        d.set_item("output_bytes", interval.output_bytes)?;
        d.set_item("output_writes", interval.output_writes)?;
        set_phase_figures(&d, &interval)?;
        d.set_item("gil_wait_count", 0)?;
        Ok(d.into_any().unbind())
    })
}

/// Per request thread figures, each a list of `maximum` entries.
fn set_thread_figures(
    d: &Bound<'_, PyDict>,
    slots: &[recording::SlotSnapshot],
    maximum: usize,
    threads_started: usize,
) -> PyResult<()> {
    let padded = |f: &dyn Fn(&recording::SlotSnapshot) -> f64| -> Vec<f64> {
        let mut v: Vec<f64> = slots.iter().take(maximum).map(f).collect();
        v.resize(maximum, 0.0);
        v
    };
    let active = slots
        .iter()
        .take(maximum)
        .filter(|s| s.completed > 0 || s.elapsed_us > 0)
        .count();
    d.set_item("request_threads_maximum", maximum)?;
    d.set_item("request_threads_started", threads_started.min(maximum))?;
    d.set_item("request_threads_active", active)?;
    let completed: Vec<u64> = {
        let mut v: Vec<u64> = slots.iter().take(maximum).map(|s| s.completed).collect();
        v.resize(maximum, 0);
        v
    };
    d.set_item("request_threads_completed", completed.clone())?;
    d.set_item("request_threads_buckets", completed)?;
    d.set_item(
        "request_threads_busy_time",
        padded(&|s| s.busy_us as f64 / 1e6),
    )?;
    d.set_item("request_threads_cpu_time", padded(&|_| 0.0))?;
    d.set_item(
        "request_threads_current_elapsed",
        padded(&|s| s.elapsed_us as f64 / 1e6),
    )?;
    d.set_item(
        "request_threads_max_duration",
        padded(&|s| s.max_us as f64 / 1e6),
    )
}

/// Mean, min/max and histogram of each phase; queue and daemon time are
/// None outside daemon processes.
fn set_phase_figures(d: &Bound<'_, PyDict>, interval: &recording::Interval) -> PyResult<()> {
    let daemon = in_daemon();
    let requests = interval.requests.max(1) as f64;
    for (phase, name) in PHASES {
        let p = &interval.phases[phase as usize];
        let daemon_only = matches!(phase, recording::Phase::Queue | recording::Phase::Daemon);
        d.set_item(format!("{name}_buckets"), p.buckets.to_vec())?;
        let (mean, min_max) = if daemon_only && !daemon {
            (None, None)
        } else if interval.requests > 0 {
            (Some(p.total / requests), p.min_max())
        } else {
            (Some(0.0), p.min_max())
        };
        d.set_item(name, mean)?;
        d.set_item(format!("{name}_min_us"), min_max.map(|m| m.0))?;
        d.set_item(format!("{name}_max_us"), min_max.map(|m| m.1))?;
    }
    Ok(())
}
