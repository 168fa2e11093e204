//! One request's state shared by the thread serving it and the Python objects
//! the application holds (wsgi.input, start_response, write, wsgi.errors),
//! which it may keep past the request or use from threads of its own.
//!
//! Everything the core does with the transport happens under one mutex, so
//! the transport (an Apache request, whose pools and bucket allocator are not
//! thread-safe) is never entered by two threads at once. Lock rules:
//! - the mutex is never waited for while the GIL is held ([`Exchange::lock_py`]
//!   releases the GIL while it waits), and
//! - no Python code runs while it is held.
//!
//! So a thread holding the mutex never waits for a thread waiting for the GIL.
use super::input::InputBuffer;
use super::output::OutputState;
use super::output::SendError;
use super::transport::{Level, Site, Transport};
use super::writer::{self, OutQueue};
use crate::python::interp::Interp;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};

const CAPSULE_NAME: &CStr = c"mod_wsgi_rs.exchange";

pub struct Exchange {
    /// The interpreter serving the request (its helper objects build write()).
    pub interp: &'static Interp,
    inner: Mutex<Inner>,
    /// Output waiting for the process's writer thread (see `writer`). Lock
    /// order: `inner` before `queue`.
    queue: Mutex<OutQueue>,
    queue_cv: Condvar,
    /// The request's id and `mod_wsgi.request_data()` dict while the
    /// application runs (see `events`). No Python code runs while it is
    /// locked.
    request_py: Mutex<Option<RequestPy>>,
    /// wsgi.input reads, bytes and microseconds spent in them (events).
    pub input_reads: AtomicU64,
    pub input_bytes: AtomicU64,
    pub input_micros: AtomicU64,
}

/// The Python objects of a running request the events report.
pub struct RequestPy {
    /// `mod_wsgi.request_id` (None if Apache gave the request no log id).
    pub id: Option<Py<PyAny>>,
    pub data: Py<PyDict>,
}

pub struct Inner {
    /// The transport, while [`Exchange::lend`] lends it; None before and after.
    transport: Option<NonNull<dyn Transport>>,
    pub input: InputBuffer,
    pub output: OutputState,
    /// wsgi.errors text not yet ended by a newline.
    pub errors_line: String,
    /// Whether streamed blocks go through the writer's queue (decided once).
    queueing: Option<bool>,
}

// SAFETY: `transport` points to a `dyn Transport`, which is `Send`, and is
// only dereferenced through `&mut Inner`, i.e. under the mutex, while `lend`
// keeps the pointee exclusively borrowed and alive. The other fields are
// plain owned Rust data.
unsafe impl Send for Inner {}

impl Inner {
    /// The lent transport, with the input and output state beside it.
    pub fn parts(
        &mut self,
    ) -> (
        Option<&mut dyn Transport>,
        &mut InputBuffer,
        &mut OutputState,
    ) {
        // SAFETY: see `unsafe impl Send for Inner`: the pointer is live and
        // exclusively ours while it is set, and `&mut self` proves the lock.
        let t = self.transport.map(|mut p| unsafe { p.as_mut() });
        (t, &mut self.input, &mut self.output)
    }

    pub fn transport(&mut self) -> Option<&mut dyn Transport> {
        self.parts().0
    }

    /// The transport and the output state, or Finished once the request is over.
    pub fn output(&mut self) -> Result<(&mut dyn Transport, &mut OutputState), SendError> {
        match self.parts() {
            (Some(t), _, output) => Ok((t, output)),
            (None, ..) => Err(SendError::Finished),
        }
    }

    /// Whether this request's streamed blocks go to the writer's queue:
    /// decided on the first block (it costs a getpid and a walk of the
    /// output filters), then kept.
    pub fn queueing(&mut self) -> bool {
        if let Some(q) = self.queueing {
            return q;
        }
        let q = writer::available() && self.transport().is_some_and(|t| t.can_queue());
        self.queueing = Some(q);
        q
    }
}

impl Exchange {
    pub fn new(interp: &'static Interp, script: &str, body_length: Option<u64>) -> Arc<Exchange> {
        Arc::new(Exchange {
            interp,
            inner: Mutex::new(Inner {
                transport: None,
                input: InputBuffer::new(body_length),
                output: OutputState::new(script),
                errors_line: String::new(),
                queueing: None,
            }),
            queue: Mutex::new(OutQueue::default()),
            queue_cv: Condvar::new(),
            request_py: Mutex::new(None),
            input_reads: AtomicU64::new(0),
            input_bytes: AtomicU64::new(0),
            input_micros: AtomicU64::new(0),
        })
    }

    /// Lends `transport` to the request's Python objects while `f` runs; on
    /// return, also by a panic, they lose it for good (a later call reports
    /// the request as finished). Call without the GIL.
    pub fn lend<R>(&self, transport: &mut (dyn Transport + '_), f: impl FnOnce() -> R) -> R {
        struct Reclaim<'e>(&'e Exchange);
        impl Drop for Reclaim<'_> {
            fn drop(&mut self) {
                self.0.lock().transport = None;
            }
        }
        let ptr: NonNull<dyn Transport + '_> = NonNull::from(transport);
        // SAFETY: only the lifetime is erased; `Reclaim` clears the pointer
        // before `transport`'s borrow ends, and nothing copies it out.
        let ptr: NonNull<dyn Transport + 'static> = unsafe { std::mem::transmute(ptr) };
        self.lock().transport = Some(ptr);
        let _reclaim = Reclaim(self);
        f()
    }

    /// Locks the state. Only without the GIL (or where waiting is impossible).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tries to lock the state (for the writer thread, which must not wait
    /// behind a request that blocks on its client).
    pub fn try_lock(&self) -> Result<MutexGuard<'_, Inner>, TryLockError<MutexGuard<'_, Inner>>> {
        self.inner.try_lock()
    }

    /// The request's output queue.
    pub fn queue(&self) -> MutexGuard<'_, OutQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes threads waiting for the queue to shrink or drain.
    pub fn queue_changed(&self) {
        self.queue_cv.notify_all();
    }

    /// Ends the queue with an error (the client went away, the request is over).
    pub fn fail_queue(&self, e: SendError) {
        let mut q = self.queue();
        q.failed.get_or_insert(e);
        q.clear();
        q.scheduled = false;
        drop(q);
        self.queue_changed();
    }

    /// Waits (without the GIL) until the writer has sent everything queued.
    pub fn wait_queue(&self) -> Result<(), SendError> {
        self.wait_queue_until(|q| !q.scheduled)
    }

    /// Waits (without the GIL) until the queue may grow again (see
    /// `writer::must_wait`; the process-wide part is re-checked every ms).
    pub fn wait_queue_room(&self) -> Result<(), SendError> {
        self.wait_queue_until(|q| !writer::must_wait(q.len()))
    }

    fn wait_queue_until(&self, done: impl Fn(&OutQueue) -> bool) -> Result<(), SendError> {
        let mut q = self.queue();
        while q.failed.is_none() && !done(&q) {
            q = self
                .queue_cv
                .wait_timeout(q, std::time::Duration::from_millis(1))
                .map(|(q, _)| q)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        q.result()
    }

    /// Locks the state from a thread that holds the GIL: if another thread
    /// holds the lock (it may be blocked on the client), wait with the GIL
    /// released. No Python code may run while the guard lives.
    pub fn lock_py(&self, py: Python<'_>) -> MutexGuard<'_, Inner> {
        loop {
            match self.inner.try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => py.detach(|| drop(self.lock())),
            }
        }
    }

    /// Writes `lines` to the error log in the request's context (or the
    /// server's once the request is over), with the GIL released: a slow or
    /// piped ErrorLog must not stall the interpreter.
    pub fn log_lines(&self, py: Python<'_>, level: Level, lines: &[&str]) {
        self.log_lines_at(py, level, lines, None)
    }

    /// The same with the Python caller's file and line (mod_wsgi.LogHandler).
    pub fn log_lines_at(&self, py: Python<'_>, level: Level, lines: &[&str], site: Site<'_>) {
        py.detach(|| {
            let mut inner = self.lock();
            match inner.transport() {
                Some(t) => lines.iter().for_each(|l| t.log_at(level, l, site)),
                None => lines
                    .iter()
                    .for_each(|l| crate::apache::log::server_at(level, l, site)),
            }
        })
    }

    /// Sets (Some) or takes back (None) the request's id and data dict.
    /// Call with the GIL held: the objects taken back are released here.
    pub fn set_request_py(&self, _py: Python<'_>, value: Option<RequestPy>) -> Option<RequestPy> {
        let mut slot = self.request_py.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, value)
    }

    /// The request's id and data dict, while the application runs.
    pub fn request_py<'py>(
        &self,
        py: Python<'py>,
    ) -> Option<(Option<Bound<'py, PyAny>>, Bound<'py, PyDict>)> {
        let slot = self.request_py.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|r| {
            (
                r.id.as_ref().map(|i| i.bind(py).clone()),
                r.data.bind(py).clone(),
            )
        })
    }

    /// Counts one wsgi.input read of `bytes` that took `micros`.
    pub fn count_input(&self, bytes: usize, micros: u64) {
        self.input_reads.fetch_add(1, Ordering::Relaxed);
        self.input_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.input_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn capsule<'py>(self: &Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(py, self.clone(), CAPSULE_NAME)
    }

    /// The exchange behind a capsule made by [`Exchange::capsule`]; anything
    /// else (applications can call these functions with any object) is a
    /// TypeError or ValueError.
    pub fn from_capsule(obj: &Bound<'_, PyAny>) -> PyResult<Arc<Exchange>> {
        let cap = obj.cast::<PyCapsule>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "expected a mod_wsgi request context, not {}",
                crate::python::guard::type_name(obj)
            ))
        })?;
        let ptr = cap.pointer_checked(Some(CAPSULE_NAME))?;
        // SAFETY: a capsule with this name holds an Arc<Exchange> (`capsule`),
        // alive as long as the capsule, which `obj` keeps alive.
        Ok(unsafe { ptr.cast::<Arc<Exchange>>().as_ref() }.clone())
    }
}
