//! Per-process request metrics for mod_wsgi 6's Python API
//! (`start_recording_metrics()`, `request_metrics()`, `process_metrics()`).
//!
//! Nothing is recorded until the application calls
//! `start_recording_metrics()`: until then a request costs one relaxed
//! atomic load. Afterwards each request takes one short uncontended lock at
//! its start and at its end (no Python runs under it). `request_metrics()`
//! drains the interval since its previous call, as mod_wsgi does.
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

/// Histogram buckets per phase, mod_wsgi's layout: 16 octaves of 4 linear
/// sub-buckets from 1 ms to 65.536 s, bucket 0 below 1 ms, bucket 64 above.
pub const BUCKETS: usize = 65;
/// Per-thread statistics are kept for at most this many request threads.
const MAX_SLOTS: usize = 1024;

/// The phases a request's time is split into.
#[derive(Clone, Copy)]
pub enum Phase {
    /// From Apache reading the request to it being handed on (the
    /// application in embedded mode, the daemon socket in daemon mode).
    Server,
    /// Daemon mode: on the socket, waiting for a daemon thread.
    Queue,
    /// Daemon mode: in the daemon before the application is called.
    Daemon,
    Application,
    /// The whole request, from Apache reading it to the application's end.
    Request,
    GilWait,
    InputRead,
    OutputWrite,
}

pub const PHASES: [(Phase, &str); 8] = [
    (Phase::Server, "server_time"),
    (Phase::Queue, "queue_time"),
    (Phase::Daemon, "daemon_time"),
    (Phase::Application, "application_time"),
    (Phase::Request, "request_time"),
    (Phase::GilWait, "gil_wait_time"),
    (Phase::InputRead, "input_read_time"),
    (Phase::OutputWrite, "output_write_time"),
];

/// mod_wsgi's bucket of a duration in seconds.
pub fn bucket(seconds: f64) -> usize {
    let ms = seconds * 1000.0;
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    if ms >= 65536.0 {
        return BUCKETS - 1;
    }
    // ms = m * 2^octave with m in [1, 2): 4 linear sub-buckets of [1, 2).
    let octave = ms.log2().floor() as usize;
    let m = ms / f64::powi(2.0, octave as i32);
    let sub = (((m - 1.0) * 4.0) as usize).min(3);
    (octave * 4 + sub).min(BUCKETS - 2)
}

/// One phase's aggregate over an interval.
#[derive(Clone)]
pub struct PhaseStats {
    pub total: f64,
    pub min_us: u64,
    pub max_us: u64,
    pub buckets: [u64; BUCKETS],
}

impl Default for PhaseStats {
    fn default() -> Self {
        PhaseStats {
            total: 0.0,
            min_us: u64::MAX,
            max_us: 0,
            buckets: [0; BUCKETS],
        }
    }
}

impl PhaseStats {
    fn record(&mut self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let us = (seconds * 1e6) as u64;
        self.total += seconds;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        self.buckets[bucket(seconds)] += 1;
    }

    /// (min, max) in µs, or None when nothing was recorded.
    pub fn min_max(&self) -> Option<(u64, u64)> {
        (self.min_us != u64::MAX).then_some((self.min_us, self.max_us))
    }
}

/// One request thread's figures.
#[derive(Clone, Default)]
pub struct Slot {
    /// Requests completed in the interval, and over the process's life.
    pub completed: u64,
    pub total_completed: u64,
    /// Busy time (µs) in the interval, and the longest request.
    pub busy_us: u64,
    pub max_duration_us: u64,
    /// The running request's start and the start of its not yet counted
    /// busy time (µs since the epoch), while one runs.
    pub running_since: Option<i64>,
    pub busy_since: i64,
}

/// Figures accumulated since the last `request_metrics()`.
#[derive(Clone, Default)]
pub struct Interval {
    pub requests: u64,
    pub phases: [PhaseStats; 8],
    /// 1xx..5xx; anything else (no start_response) counts as 5xx.
    pub status: [u64; 5],
    pub input_bytes: u64,
    pub input_reads: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
}

/// What one finished request reports (times in µs since the epoch; 0 when
/// unknown).
#[derive(Clone, Copy, Default)]
pub struct Finished {
    pub request_start: i64,
    pub queue_start: i64,
    pub daemon_start: i64,
    pub application_start: i64,
    pub application_finish: i64,
    pub status: u16,
    pub input_bytes: u64,
    pub input_reads: u64,
    pub input_read_us: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
}

/// The recorder's state.
#[derive(Default)]
pub struct State {
    pub interval: Interval,
    pub slots: Vec<Slot>,
    /// When recording started, or the last request_metrics() (µs).
    pub interval_start: i64,
    /// Busy time (µs) and requests at the interval's start.
    pub interval_busy_us: u64,
    pub interval_count: u64,
    pub interval_cpu: (f64, f64),
    /// Since recording started: requests completed and their busy time.
    pub count: u64,
    pub busy_us: u64,
    pub started: bool,
}

impl State {
    /// Busy time until `now` (µs), in-flight requests included.
    pub fn busy_until(&self, now: i64) -> u64 {
        let running: i64 = self
            .slots
            .iter()
            .filter_map(|s| s.running_since.map(|_| (now - s.busy_since).max(0)))
            .sum();
        self.busy_us + running as u64
    }

    fn begin(&mut self, slot: usize, now: i64) {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, Slot::default());
        }
        let s = &mut self.slots[slot];
        s.running_since = Some(now);
        s.busy_since = now;
    }

    fn finish(&mut self, slot: Option<usize>, f: &Finished, now: i64) {
        if let Some(n) = slot {
            if self.slots.len() <= n {
                self.slots.resize(n + 1, Slot::default());
            }
            let s = &mut self.slots[n];
            // A request that began before recording started has no start.
            if let Some(since) = s.running_since.take() {
                let duration = (now - since).max(0) as u64;
                s.busy_us += (now - s.busy_since).max(0) as u64;
                s.max_duration_us = s.max_duration_us.max(duration);
                self.busy_us += duration;
            }
            s.completed += 1;
            s.total_completed += 1;
        }
        self.count += 1;
        let i = &mut self.interval;
        i.requests += 1;
        let secs = |from: i64, to: i64| (to - from).max(0) as f64 / 1e6;
        let handed_on = if f.queue_start > 0 {
            f.queue_start
        } else {
            f.application_start
        };
        if f.request_start > 0 {
            i.phases[Phase::Server as usize].record(secs(f.request_start, handed_on));
            i.phases[Phase::Request as usize].record(secs(f.request_start, f.application_finish));
        }
        if f.queue_start > 0 && f.daemon_start > 0 {
            i.phases[Phase::Queue as usize].record(secs(f.queue_start, f.daemon_start));
            i.phases[Phase::Daemon as usize].record(secs(f.daemon_start, f.application_start));
        }
        i.phases[Phase::Application as usize]
            .record(secs(f.application_start, f.application_finish));
        i.phases[Phase::GilWait as usize].record(0.0);
        i.phases[Phase::InputRead as usize].record(f.input_read_us as f64 / 1e6);
        i.phases[Phase::OutputWrite as usize].record(0.0);
        let class = match f.status {
            100..=599 => usize::from(f.status / 100 - 1),
            _ => 4,
        };
        i.status[class] += 1;
        i.input_bytes += f.input_bytes;
        i.input_reads += f.input_reads;
        i.output_bytes += f.output_bytes;
        i.output_writes += f.output_writes;
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static STATE: LazyLock<Mutex<State>> = LazyLock::new(Mutex::default);
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot (request threads get one on their first request).
    static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Microseconds since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The state, whatever a panicking holder left (plain numbers).
pub fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn slot() -> Option<usize> {
    let slot = SLOT.with(|s| match s.get() {
        Some(n) => n,
        None => {
            let n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
            s.set(Some(n));
            n
        }
    });
    (slot < MAX_SLOTS).then_some(slot)
}

/// Starts recording (idempotent); `cpu` is the process's (user, system)
/// CPU seconds now.
pub fn start(cpu: (f64, f64)) {
    let mut st = state();
    if !st.started {
        st.started = true;
        st.interval_start = now_us();
        st.interval_cpu = cpu;
        ENABLED.store(true, Ordering::Relaxed);
    }
}

/// A request thread starts a request.
pub fn begin() {
    if !enabled() {
        return;
    }
    if let Some(n) = slot() {
        state().begin(n, now_us());
    }
}

/// A request thread finished a request.
pub fn finish(f: &Finished) {
    if !enabled() {
        return;
    }
    let slot = slot();
    state().finish(slot, f, f.application_finish.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_mod_wsgi_layout() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.000_9), 0);
        assert_eq!(bucket(0.001), 0); // [1, 1.25) ms: octave 0, sub 0
        assert_eq!(bucket(0.001_25), 1);
        assert_eq!(bucket(0.001_75), 3);
        assert_eq!(bucket(0.002), 4);
        assert_eq!(bucket(0.003), 6); // 3 ms = 1.5 * 2^1
        assert_eq!(bucket(1.0), 39); // 1000 ms = 1.953 * 2^9
        assert_eq!(bucket(65.535), 63);
        assert_eq!(bucket(65.536), 64);
        assert_eq!(bucket(1e9), 64);
        assert_eq!(bucket(f64::NAN), 0);
    }

    #[test]
    fn finished_requests_add_up() {
        let mut st = State::default();
        st.begin(0, 1_000);
        st.begin(1, 1_000);
        assert_eq!(st.busy_until(3_000), 4_000);
        let f = Finished {
            request_start: 500,
            application_start: 1_000,
            application_finish: 2_000,
            status: 404,
            output_bytes: 10,
            output_writes: 1,
            ..Finished::default()
        };
        st.finish(Some(0), &f, 2_000);
        assert_eq!(st.count, 1);
        assert_eq!(st.busy_us, 1_000);
        assert_eq!(st.interval.status, [0, 0, 0, 1, 0]);
        let app = &st.interval.phases[Phase::Application as usize];
        assert_eq!(app.min_max(), Some((1_000, 1_000)));
        assert_eq!(app.buckets[0], 1);
        let server = &st.interval.phases[Phase::Server as usize];
        assert!((server.total - 0.000_5).abs() < 1e-9);
        assert!(st.interval.phases[Phase::Queue as usize]
            .min_max()
            .is_none());
        // A missing status is a 5xx.
        st.finish(Some(1), &Finished::default(), 2_000);
        assert_eq!(st.interval.status[4], 1);
        assert_eq!(st.slots[1].completed, 1);
    }
}
