//! A table in memory shared by the Apache parent, the daemon processes and
//! Apache's children (an anonymous shared mapping made before they fork):
//! one entry per daemon process slot.
//!
//! It answers "why did the daemon serving this request die?": a daemon
//! writes its last words before it exits (or from a fatal-signal handler),
//! the parent adds what `waitpid` said, and an Apache child whose request
//! was cut reads the cause for its 502 log line.
use super::supervisor::Daemons;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[repr(C)]
struct Entry {
    /// The process now running in the slot.
    pid: AtomicI32,
    /// The same, once it is past its back-off delay and starting to serve.
    live: AtomicI32,
    /// What the running process said about its own end (encoded Cause).
    last_words: AtomicU32,
    /// The last process that died in the slot, and why.
    died_pid: AtomicI32,
    died_cause: AtomicU32,
}

/// Why a daemon process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// It stopped by design (the reason, e.g. "maximum-requests").
    Recycled(Reason),
    /// It exited with this status (os._exit, a failed start).
    Exited(i32),
    /// A signal killed it (a crash, SIGKILL, the OOM killer).
    Signal(i32),
}

macro_rules! reasons {
    ($($reason:ident = $text:literal),* $(,)?) => {
        /// Why a daemon process stopped by design.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Reason { $($reason),* }
        impl Reason {
            const ALL: &'static [Reason] = &[$(Reason::$reason),*];
            pub fn describe(self) -> &'static str {
                match self { $(Reason::$reason => $text),* }
            }
        }
    };
}

reasons! {
    Shutdown = "shutdown requested",
    MaximumRequests = "maximum-requests reached",
    RestartInterval = "restart-interval expired",
    InactivityTimeout = "inactivity-timeout expired",
    CpuTimeLimit = "cpu-time-limit reached",
    GracefulSignal = "graceful restart signal (SIGUSR1)",
    RequestTimeout = "request-timeout exceeded",
    ServiceScripts = "its service scripts returned (threads=0)",
    ScriptReload = "a WSGI script changed (WSGIScriptReloading)",
    StartupTimeout = "startup-timeout expired before a WSGI script was loaded",
    DeadlockTimeout = "deadlock-timeout expired: the GIL could not be taken",
}

impl Reason {
    /// mod_wsgi's name for it (the `shutdown_reason` of process_stopping).
    pub fn event_name(self) -> &'static str {
        match self {
            Reason::Shutdown => "shutdown_signal",
            Reason::MaximumRequests => "maximum_requests",
            Reason::RestartInterval => "restart_interval",
            Reason::InactivityTimeout => "inactivity_timeout",
            Reason::CpuTimeLimit => "cpu_time_limit",
            Reason::GracefulSignal => "graceful_signal",
            Reason::RequestTimeout => "request_timeout",
            Reason::ServiceScripts => "",
            Reason::ScriptReload => "script_reload",
            Reason::StartupTimeout => "startup_timeout",
            Reason::DeadlockTimeout => "deadlock_timeout",
        }
    }

    fn from_u8(v: u8) -> Reason {
        Reason::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(Reason::Shutdown)
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGXCPU => "SIGXCPU",
        _ => "signal",
    }
}

impl Cause {
    fn encode(self) -> u32 {
        match self {
            Cause::Recycled(r) => 1 << 24 | r as u32,
            Cause::Exited(c) => 2 << 24 | (c as u32 & 0xff_ffff),
            Cause::Signal(s) => 3 << 24 | (s as u32 & 0xff_ffff),
        }
    }
    fn decode(v: u32) -> Option<Cause> {
        let n = (v & 0xff_ffff) as i32;
        match v >> 24 {
            1 => Some(Cause::Recycled(Reason::from_u8(n as u8))),
            2 => Some(Cause::Exited(n)),
            3 => Some(Cause::Signal(n)),
            _ => None,
        }
    }
    pub fn describe(self) -> String {
        match self {
            Cause::Recycled(r) => format!("stopped ({})", r.describe()),
            Cause::Exited(c) => format!("exited with status {c}"),
            Cause::Signal(s) => format!("was killed by signal {s} ({})", signal_name(s)),
        }
    }
}

pub struct Table {
    entries: *mut Entry,
    len: usize,
}

// SAFETY: the mapping lives as long as the Table and is only accessed
// through atomics.
/// A fresh anonymous shared mapping of `size` bytes, zeroed by the kernel,
/// made before the processes that share it fork; never unmapped.
pub fn map_shared_zeroed(size: usize) -> std::io::Result<*mut libc::c_void> {
    // SAFETY: asks for a new mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(p)
    }
}

// SAFETY: the table is a never-unmapped shared mapping whose entries are
// only read and written through atomics, from any thread.
unsafe impl Send for Table {}
// SAFETY: as for Send.
unsafe impl Sync for Table {}

impl Table {
    pub fn new(len: usize) -> Result<Table, String> {
        let size = (len.max(1) * std::mem::size_of::<Entry>()).max(4096);
        // Zeroed by the kernel, which is a valid Entry: all atomics 0.
        let p = map_shared_zeroed(size)
            .map_err(|e| format!("Cannot map shared memory for the daemon processes: {e}"))?;
        Ok(Table {
            entries: p.cast(),
            len,
        })
    }

    fn entry(&self, id: usize) -> &Entry {
        assert!(id < self.len, "slot {id} out of range");
        // SAFETY: id is within the mapping, which outlives &self.
        unsafe { &*self.entries.add(id) }
    }

    /// The table index of process `slot` of group `gi`.
    pub fn slot_id(&self, daemons: &Daemons, gi: usize, slot: usize) -> usize {
        let before: usize = daemons.groups[..gi]
            .iter()
            .map(|g| g.def.processes as usize)
            .sum();
        before + slot
    }

    /// The parent forked `pid` into slot `id`.
    pub fn started(&self, id: usize, pid: i32) {
        let e = self.entry(id);
        e.last_words.store(0, Ordering::SeqCst);
        e.pid.store(pid, Ordering::SeqCst);
    }

    /// The daemon in slot `id` is past its back-off and starts serving.
    pub fn live(&self, id: usize, pid: i32) {
        self.entry(id).live.store(pid, Ordering::SeqCst);
    }

    /// The daemon in slot `id` says why it is about to end.
    pub fn last_words(&self, id: usize, cause: Cause) {
        self.entry(id)
            .last_words
            .store(cause.encode(), Ordering::SeqCst);
    }

    /// The parent reaped `pid` with `status` (an exit status or a signal
    /// number: Apache does not say which). A process that left no last
    /// words did not exit on its own: it was killed.
    pub fn died(&self, id: usize, pid: i32, status: i32) -> Cause {
        let e = self.entry(id);
        let cause =
            Cause::decode(e.last_words.load(Ordering::SeqCst)).unwrap_or(Cause::Signal(status));
        e.died_cause.store(cause.encode(), Ordering::SeqCst);
        e.died_pid.store(pid, Ordering::SeqCst);
        e.pid
            .compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst)
            .ok();
        cause
    }

    /// Every running daemon process.
    pub fn pids(&self) -> Vec<i32> {
        (0..self.len)
            .map(|i| self.entry(i).pid.load(Ordering::SeqCst))
            .filter(|&p| p > 0)
            .collect()
    }

    /// Whether a process runs (past its back-off) in any of the slots `ids`.
    pub fn any_running(&self, ids: std::ops::Range<usize>) -> bool {
        ids.into_iter()
            .any(|i| self.entry(i).live.load(Ordering::SeqCst) > 0)
    }

    /// Why `pid` died, waiting up to `wait` for the parent to notice.
    pub fn cause_of(&self, pid: i32, wait: Duration) -> Option<Cause> {
        let deadline = Instant::now() + wait;
        loop {
            for i in 0..self.len {
                let e = self.entry(i);
                if e.died_pid.load(Ordering::SeqCst) == pid {
                    return Cause::decode(e.died_cause.load(Ordering::SeqCst));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_round_trip() {
        for c in [
            Cause::Recycled(Reason::MaximumRequests),
            Cause::Recycled(Reason::RequestTimeout),
            Cause::Recycled(Reason::Shutdown),
            Cause::Exited(3),
            Cause::Signal(9),
        ] {
            assert_eq!(Cause::decode(c.encode()), Some(c));
        }
        assert_eq!(Cause::decode(0), None);
        assert_eq!(
            Cause::Signal(9).describe(),
            "was killed by signal 9 (SIGKILL)"
        );
    }
}
