//! One writer thread per process transmits the blocks that applications
//! stream (generators, write()), for every request whose transport can
//! queue them.
//!
//! Why: a write to the client's socket per block is what limits streaming,
//! and an application thread that waits for each write (with the GIL released
//! and re-taken) also queues for the GIL every time. Here the application
//! thread appends the block to its request's queue (a copy, no system call,
//! the GIL kept) and goes on; the writer sends what is queued, so blocks that
//! pile up while a write is in progress leave together in one write.
//!
//! PEP 3333 allows this: a block is never held back waiting for the next
//! one; it is transmitted while the application produces the next block.
//! The writer never blocks on a client: it sends only what the socket takes
//! at once (`Transport::room`) and polls the sockets of slow clients. A queue
//! over `QUEUE_MAX` makes its application thread wait (back-pressure).
use super::exchange::Exchange;
use super::output::SendError;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::Duration;

/// Queued bytes at which an application thread always waits for the writer.
const QUEUE_MAX: usize = 256 * 1024;

/// Bytes queued in the whole process above which requests holding more than
/// `QUEUE_MIN` wait too: streamed data waits in user space rather than in
/// the kernel's socket buffers, so this bounds what streaming adds to RSS.
const PROCESS_BUDGET: usize = 2 << 20;
const QUEUE_MIN: usize = 32 * 1024;

/// Bytes queued in this process, all requests together.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Whether a request holding `own` queued bytes must wait for the writer.
pub fn must_wait(own: usize) -> bool {
    own > QUEUE_MAX || (own > QUEUE_MIN && QUEUED.load(Ordering::Relaxed) > PROCESS_BUDGET)
}

/// How long a request whose lock is busy (its app is reading input, say)
/// waits before the writer tries it again.
const BUSY_RETRY: Duration = Duration::from_millis(2);

/// One request's queued output.
#[derive(Default)]
pub struct OutQueue {
    data: Vec<u8>,
    /// On the writer's lists (or being written): drained is !scheduled.
    pub scheduled: bool,
    pub failed: Option<SendError>,
}

impl OutQueue {
    /// Err once the queue failed (the client went away, the request is over).
    pub fn result(&self) -> Result<(), SendError> {
        self.failed.map_or(Ok(()), Err)
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn push(&mut self, chunks: &[&[u8]]) {
        let before = self.data.len();
        chunks.iter().for_each(|c| self.data.extend_from_slice(c));
        QUEUED.fetch_add(self.data.len() - before, Ordering::Relaxed);
    }

    /// Moves the first `n` bytes into `block` (emptied first).
    fn take(&mut self, n: usize, block: &mut Vec<u8>) {
        block.clear();
        if n == self.data.len() {
            std::mem::swap(&mut self.data, block);
        } else {
            block.extend_from_slice(&self.data[..n]);
            self.data.drain(..n);
        }
        QUEUED.fetch_sub(block.len(), Ordering::Relaxed);
    }

    pub fn clear(&mut self) {
        QUEUED.fetch_sub(self.data.len(), Ordering::Relaxed);
        self.data.clear();
    }
}

impl Drop for OutQueue {
    fn drop(&mut self) {
        self.clear();
    }
}

struct Work {
    ready: VecDeque<Arc<Exchange>>,
    /// The writer waits in poll(): wake it through `wake`.
    sleeping: bool,
}

struct Writer {
    /// The process the thread runs in: a process forked by the application
    /// (os.fork) has no writer thread and must not queue.
    pid: u32,
    work: Mutex<Work>,
    /// An eventfd the writer polls beside its slow clients' sockets.
    wake: OwnedFd,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

static WRITER: OnceLock<Option<&'static Writer>> = OnceLock::new();

/// The process's writer, started on first use (in each process: Apache
/// children fork before any request). None if no thread could be started.
fn writer() -> Option<&'static Writer> {
    let w = *WRITER.get_or_init(|| {
        // SAFETY: eventfd returns a new descriptor (or -1), which we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return None;
        }
        let w: &'static Writer = Box::leak(Box::new(Writer {
            pid: std::process::id(),
            work: Mutex::new(Work {
                ready: VecDeque::new(),
                sleeping: false,
            }),
            // SAFETY: `fd` is the fresh eventfd above.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
        }));
        std::thread::Builder::new()
            .name("wsgi-rs-writer".into())
            .spawn(move || run(w))
            .ok()
            .map(|_| w)
    });
    w.filter(|w| w.pid == std::process::id())
}

/// Whether blocks can be queued in this process.
pub fn available() -> bool {
    writer().is_some()
}

/// Puts a request on the writer's list.
pub fn schedule(ex: Arc<Exchange>) {
    let Some(w) = writer() else { return };
    let mut work = locked(&w.work);
    work.ready.push_back(ex);
    if work.sleeping {
        work.sleeping = false;
        let one: u64 = 1;
        // SAFETY: writes 8 bytes to our eventfd; a full counter just fails.
        unsafe { libc::write(w.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// What writing a request's queue came to.
enum Progress {
    /// The queue is empty (or failed): the request is off the lists.
    Drained,
    /// Its socket is full: poll it.
    Blocked(i32),
    /// Another thread holds the request's lock: try again soon.
    Busy,
}

/// Sends as much of `ex`'s queue as its transport takes without blocking.
fn write_some(ex: &Exchange, block: &mut Vec<u8>) -> Progress {
    let mut inner = match ex.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return Progress::Busy,
    };
    loop {
        let Some(t) = inner.transport() else {
            ex.fail_queue(SendError::Finished);
            return Progress::Drained;
        };
        let mut q = ex.queue();
        if q.data.is_empty() || q.failed.is_some() {
            q.clear();
            q.scheduled = false;
            drop(q);
            ex.queue_changed();
            return Progress::Drained;
        }
        let room = t.room();
        if room == 0 {
            return match t.poll_fd() {
                Some(fd) => Progress::Blocked(fd),
                None => Progress::Busy,
            };
        }
        // The writer's one buffer carries every write: no allocation per
        // write, and no memory left behind in the application threads' arenas.
        let n = room.min(q.data.len());
        q.take(n, block);
        drop(q);
        ex.queue_changed();
        if t.send(&[block]).is_err() {
            ex.fail_queue(SendError::ClientGone);
            return Progress::Drained;
        }
    }
}

fn run(w: &'static Writer) {
    let mut blocked: Vec<(Arc<Exchange>, i32)> = Vec::new();
    let mut busy: Vec<Arc<Exchange>> = Vec::new();
    let mut block: Vec<u8> = Vec::new();
    loop {
        let mut ready: Vec<Arc<Exchange>> = {
            let mut work = locked(&w.work);
            let ready: Vec<_> = work.ready.drain(..).collect();
            work.sleeping = ready.is_empty();
            ready
        };
        if ready.is_empty() {
            wait(w, &blocked, !busy.is_empty());
            locked(&w.work).sleeping = false;
            ready.extend(blocked.drain(..).map(|(ex, _)| ex));
            ready.append(&mut busy);
        }
        if block.capacity() > 4 * QUEUE_MAX {
            block = Vec::new(); // after a huge write(), give the memory back
        }
        for ex in ready {
            // A panic must not end the thread: its requests would wait forever.
            let progress = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                write_some(&ex, &mut block)
            }));
            match progress.unwrap_or_else(|_| {
                ex.fail_queue(SendError::ClientGone);
                Progress::Drained
            }) {
                Progress::Drained => {}
                Progress::Blocked(fd) => blocked.push((ex, fd)),
                Progress::Busy => busy.push(ex),
            }
        }
    }
}

/// Waits for new work, a blocked socket turning writable, or (with busy
/// requests) a short while.
fn wait(w: &Writer, blocked: &[(Arc<Exchange>, i32)], busy: bool) {
    let mut fds = Vec::with_capacity(blocked.len() + 1);
    fds.push(libc::pollfd {
        fd: w.wake.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    fds.extend(blocked.iter().map(|(_, fd)| libc::pollfd {
        fd: *fd,
        events: libc::POLLOUT,
        revents: 0,
    }));
    // Blocked sockets are polled; a request whose socket went away shows
    // POLLERR/POLLHUP and is dropped by its failed send. A timeout bounds
    // the wait anyway, in case a socket was replaced under us.
    let timeout = if busy {
        BUSY_RETRY.as_millis() as i32
    } else if blocked.is_empty() {
        -1
    } else {
        100
    };
    // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    let mut counter: u64 = 0;
    // SAFETY: reads 8 bytes from our non-blocking eventfd into `counter`.
    unsafe { libc::read(w.wake.as_raw_fd(), (&mut counter as *mut u64).cast(), 8) };
}
