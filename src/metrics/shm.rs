//! The metrics area: one anonymous shared mapping made by the Apache parent
//! before anything forks, written with relaxed atomic adds by Apache's
//! children and the daemon processes, read (without a lock) by whoever
//! renders it.
//!
//! Every record is a fixed-size array of atomics (zeroed memory is a valid,
//! empty area). Names (label values) are claimed once in a slot: state
//! FREE → CLAIMING (the claimer writes the name) → READY (Release; readers
//! load it with Acquire). Two processes claiming the same name at once may
//! get two slots: the renderer adds slots with equal names together.
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

/// Latency buckets (upper bounds, seconds); the last, implicit, is +Inf.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const NB: usize = BUCKETS.len() + 1;

/// (process group, application group) label sets; the last is "other".
pub const LABELS: usize = 64;
/// Daemon process groups (by name) ever seen; the last is "other".
pub const GROUPS: usize = 32;
/// Daemon process slots of the running generation.
pub const PROCS: usize = 256;
/// Causes of daemon restarts and of proxy errors (see record.rs).
pub const CAUSES: usize = 16;

const PG_LEN: usize = 64;
const AG_LEN: usize = 128;
const FREE: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;
const MAGIC: u64 = 0x7773_6772_6d65_7401; // "wsgrmet" + layout version

#[repr(C)]
pub struct Histogram {
    /// Per bucket (not cumulative: the renderer adds them up).
    pub buckets: [AtomicU64; NB],
    pub count: AtomicU64,
    /// Sum of the observations, microseconds.
    pub sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe_us(&self, us: u64) {
        let secs = us as f64 / 1e6;
        let i = BUCKETS.iter().position(|&b| secs <= b).unwrap_or(NB - 1);
        self.buckets[i].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

#[repr(C)]
pub struct Name<const N: usize> {
    state: AtomicU32,
    len: AtomicU32,
    bytes: [AtomicU8; N],
}

impl<const N: usize> Name<N> {
    /// The name, once the slot is claimed.
    pub fn get(&self) -> Option<String> {
        if self.state.load(Acquire) != READY {
            return None;
        }
        let len = (self.len.load(Relaxed) as usize).min(N);
        let b: Vec<u8> = self.bytes[..len].iter().map(|c| c.load(Relaxed)).collect();
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    fn is(&self, name: &[u8]) -> bool {
        self.state.load(Acquire) == READY
            && self.len.load(Relaxed) as usize == name.len()
            && self
                .bytes
                .iter()
                .zip(name)
                .all(|(c, b)| c.load(Relaxed) == *b)
    }

    fn claim(&self, name: &[u8]) -> bool {
        if self
            .state
            .compare_exchange(FREE, CLAIMING, Acquire, Relaxed)
            .is_err()
        {
            return false;
        }
        for (c, b) in self.bytes.iter().zip(name) {
            c.store(*b, Relaxed);
        }
        self.len.store(name.len() as u32, Relaxed);
        self.state.store(READY, Release);
        true
    }
}

/// Requests of one (process group, application group).
#[repr(C)]
pub struct Label {
    pub process_group: Name<PG_LEN>,
    pub application_group: Name<AG_LEN>,
    /// By status class: 1xx..5xx (index 0..4).
    pub requests: [AtomicU64; 5],
    pub latency: Histogram,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// A daemon process group, by name (kept across restarts of Apache).
#[repr(C)]
pub struct Group {
    pub name: Name<PG_LEN>,
    /// Daemon process restarts, by cause index (record::RESTART_CAUSES).
    pub restarts: [AtomicU64; CAUSES],
    /// 502/503/504 answers, by cause index (record::ERROR_CAUSES).
    pub errors: [AtomicU64; CAUSES],
    /// From the request's arrival in Apache to a daemon thread taking it.
    pub queue: Histogram,
}

/// A daemon process slot of the running generation.
#[repr(C)]
pub struct Proc {
    pub pid: AtomicI32,
    /// 1 + the index of its Group.
    pub group: AtomicU32,
    pub threads: AtomicU32,
    pub busy: AtomicI32,
    pub interpreters: AtomicU32,
    pub requests: AtomicU64,
}

#[repr(C)]
pub struct Area {
    magic: AtomicU64,
    pub labels: [Label; LABELS],
    pub groups: [Group; GROUPS],
    pub procs: [Proc; PROCS],
}

impl Area {
    /// A zeroed shared mapping, or the one an earlier generation made (kept
    /// in the process pool, which outlives restarts, so that counters keep
    /// counting across graceful restarts).
    pub fn map() -> Result<&'static Area, String> {
        let size = std::mem::size_of::<Area>();
        // Zeroed by the kernel: every field of Area is an atomic, for
        // which zero is valid.
        let p = crate::daemon::shared::map_shared_zeroed(size)
            .map_err(|e| format!("Cannot map shared memory for the server metrics: {e}"))?;
        // SAFETY: the mapping is never unmapped and is only used through atomics.
        let area = unsafe { &*(p as *const Area) };
        area.magic.store(MAGIC, Relaxed);
        Ok(area)
    }

    /// Whether `p` points to an Area of this layout.
    ///
    /// # Safety
    /// `p` must be NULL or an address returned by [`Area::map`].
    pub unsafe fn adopt(p: *const Area) -> Option<&'static Area> {
        // SAFETY: per the contract, a live mapping of at least an Area.
        let a = unsafe { p.as_ref()? };
        (a.magic.load(Relaxed) == MAGIC).then_some(a)
    }

    /// The slot for this label set (the "other" slot when all are taken).
    pub fn label(&self, process_group: &str, application_group: &str) -> usize {
        let pg = trim(process_group.as_bytes(), PG_LEN);
        let ag = trim(application_group.as_bytes(), AG_LEN);
        for (i, l) in self.labels[..LABELS - 1].iter().enumerate() {
            if l.process_group.is(pg) && l.application_group.is(ag) {
                return i;
            }
        }
        for (i, l) in self.labels[..LABELS - 1].iter().enumerate() {
            if l.application_group.state.load(Relaxed) == FREE && l.application_group.claim(ag) {
                // The second name is free: this slot is ours.
                l.process_group.claim(pg);
                return i;
            }
        }
        LABELS - 1
    }

    /// The slot of daemon process group `name`.
    pub fn group(&self, name: &str) -> usize {
        let name = trim(name.as_bytes(), PG_LEN);
        for (i, g) in self.groups[..GROUPS - 1].iter().enumerate() {
            if g.name.is(name) {
                return i;
            }
        }
        for (i, g) in self.groups[..GROUPS - 1].iter().enumerate() {
            if g.name.claim(name) {
                return i;
            }
        }
        GROUPS - 1
    }

    /// A new generation: no daemon process runs in any slot yet.
    pub fn reset_procs(&self) {
        for p in &self.procs {
            p.clear();
        }
    }
}

impl Proc {
    pub fn clear(&self) {
        self.pid.store(0, Relaxed);
        self.threads.store(0, Relaxed);
        self.busy.store(0, Relaxed);
        self.interpreters.store(0, Relaxed);
        self.requests.store(0, Relaxed);
        self.group.store(0, Relaxed);
    }
}

/// A name cut to fit its slot (at a UTF-8 boundary).
fn trim(b: &[u8], max: usize) -> &[u8] {
    if b.len() <= max {
        return b;
    }
    let mut n = max;
    while n > 0 && (b[n] & 0xc0) == 0x80 {
        n -= 1;
    }
    &b[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_claimed_once_and_overflow_to_other() {
        let a = Area::map().unwrap();
        assert_eq!(a.label("", "x"), 0);
        assert_eq!(a.label("g", "x"), 1);
        assert_eq!(a.label("", "x"), 0);
        for i in 0..100 {
            a.label("g", &format!("app{i}"));
        }
        assert_eq!(a.label("g", "late"), LABELS - 1);
        assert_eq!(a.labels[1].process_group.get().as_deref(), Some("g"));
        assert_eq!(a.group("one"), 0);
        assert_eq!(a.group("two"), 1);
        assert_eq!(a.group("one"), 0);
    }

    #[test]
    fn histogram_buckets() {
        let a = Area::map().unwrap();
        let h = &a.labels[0].latency;
        h.observe_us(1);
        h.observe_us(30_000);
        h.observe_us(60_000_000);
        assert_eq!(h.buckets[0].load(Relaxed), 1);
        assert_eq!(h.buckets[3].load(Relaxed), 1);
        assert_eq!(h.buckets[NB - 1].load(Relaxed), 1);
        assert_eq!(h.count.load(Relaxed), 3);
    }

    #[test]
    fn trims_at_char_boundary() {
        assert_eq!(trim("aé".as_bytes(), 2), b"a");
        assert_eq!(trim(b"abc", 5), b"abc");
    }
}
