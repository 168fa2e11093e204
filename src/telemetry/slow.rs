//! Slow requests for the telemetry service: finished requests slower than
//! WSGISlowRequests wait in a small queue for the reporter's next tick, and
//! requests still running past it are found in the in-flight table. Each
//! request touches these locks once at its start and once at its end, for
//! a map insert or a queue push; the reporter holds them only to copy.
use super::wire::{field, Datagram};
use crate::wsgi::head::{Key, RequestHead};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// Finished slow requests kept between ticks; more are dropped.
const QUEUE_MAX: usize = 64;
/// In-flight slow requests reported per tick (mod_wsgi's bound).
const ACTIVE_MAX: usize = 16;

/// What a slow record says about its request, copied at its start.
pub struct Identity {
    pub start_us: i64,
    pub thread: u64,
    fields: Vec<(u16, Vec<u8>, usize)>,
}

/// A slow request: still running (`finished` None) or finished.
pub struct Record {
    pub identity: Arc<Identity>,
    pub duration_us: i64,
    pub finished: Option<Outcome>,
}

/// How a finished request ended.
#[derive(Clone, Copy, Default)]
pub struct Outcome {
    pub status: u16,
    pub server_us: i64,
    pub application_us: i64,
    pub input_bytes: u64,
    pub input_reads: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static ACTIVE: LazyLock<Mutex<HashMap<u64, Arc<Identity>>>> = LazyLock::new(Mutex::default);
static DONE: LazyLock<Mutex<VecDeque<Record>>> = LazyLock::new(Mutex::default);

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running request in the in-flight table; leaves it when dropped.
pub struct InFlight {
    id: u64,
    pub identity: Arc<Identity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&ACTIVE).remove(&self.id);
    }
}

/// Enters a request that started at `start_us` (µs since the epoch).
pub fn begin(head: &RequestHead, start_us: i64, user_agent: bool) -> InFlight {
    let text = |k| head.get(k).unwrap_or(b"").to_vec();
    // Apache's r->hostname, as mod_wsgi reports it: the Host without port.
    let host = head
        .get(Key::ServerName)
        .or_else(|| head.get_other(b"HTTP_HOST"))
        .unwrap_or(b"")
        .to_vec();
    let scheme = head
        .get(Key::UrlScheme)
        .or_else(|| head.get(Key::RequestScheme))
        .unwrap_or(b"")
        .to_vec();
    // (field, value, mod_wsgi's length bound)
    let mut fields = vec![
        (field::SLOW_LOG_ID, text(Key::RequestId), 63),
        (field::SLOW_METHOD, text(Key::RequestMethod), 15),
        (field::SLOW_SCHEME, scheme, 15),
        (field::SLOW_HOSTNAME, host, 255),
        (field::SLOW_SCRIPT_NAME, text(Key::ScriptName), 255),
        (field::SLOW_PATH_INFO, text(Key::PathInfo), 511),
        (field::SLOW_PROTOCOL, text(Key::ServerProtocol), 15),
        (field::SLOW_PEER_IP, text(Key::RemoteAddr), 45),
    ];
    if user_agent {
        if let Some(ua) = head.get_other(b"HTTP_USER_AGENT") {
            fields.push((field::SLOW_USER_AGENT, ua.to_vec(), 511));
        }
    }
    let thread = u64::from(crate::wsgi::environ::thread_id());
    let identity = Arc::new(Identity {
        start_us,
        thread,
        fields,
    });
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock(&ACTIVE).insert(id, identity.clone());
    InFlight { id, identity }
}

/// A request that took `duration_us` finished; queued when that is at
/// least the threshold.
pub fn finished(request: InFlight, duration_us: i64, threshold_us: i64, outcome: Outcome) {
    let identity = request.identity.clone();
    drop(request);
    if duration_us < threshold_us {
        return;
    }
    let mut done = lock(&DONE);
    if done.len() < QUEUE_MAX {
        done.push_back(Record {
            identity,
            duration_us,
            finished: Some(outcome),
        });
    }
}

/// The finished slow requests since the last call, then the requests
/// running for at least `threshold_us` at `now`.
pub fn take(now: i64, threshold_us: i64) -> Vec<Record> {
    let mut records: Vec<Record> = lock(&DONE).drain(..).collect();
    let mut running: Vec<Arc<Identity>> = lock(&ACTIVE)
        .values()
        .filter(|i| now - i.start_us >= threshold_us)
        .cloned()
        .collect();
    running.sort_by_key(|i| i.start_us);
    records.extend(running.into_iter().take(ACTIVE_MAX).map(|identity| Record {
        duration_us: now - identity.start_us,
        identity,
        finished: None,
    }));
    records
}

/// The record's fields; `server_pid` is the Apache child that took the
/// request when known (embedded mode), else 0.
pub fn encode(r: &Record, d: &mut Datagram, server_pid: u32) {
    let o = r.finished.unwrap_or_default();
    let secs = |us: i64| us.max(0) as f64 / 1e6;
    d.u64(field::SLOW_RECORD_STATE, u64::from(r.finished.is_some()))
        .f64(field::SLOW_START_STAMP, secs(r.identity.start_us))
        .f64(field::SLOW_DURATION, secs(r.duration_us))
        .u64(field::SLOW_THREAD_ID, r.identity.thread)
        .u64(field::SLOW_SERVER_PID, u64::from(server_pid))
        .u64(field::SLOW_INPUT_BYTES, o.input_bytes)
        .u64(field::SLOW_INPUT_READS, o.input_reads)
        .u64(field::SLOW_OUTPUT_BYTES, o.output_bytes)
        .u64(field::SLOW_OUTPUT_WRITES, o.output_writes)
        .f64(field::SLOW_SERVER_TIME, secs(o.server_us))
        .f64(field::SLOW_APPLICATION_TIME, secs(o.application_us))
        .u64(field::SLOW_STATUS, u64::from(o.status));
    for (id, value, max) in &r.identity.fields {
        if !value.is_empty() {
            d.bytes(*id, value, *max);
        }
    }
}
