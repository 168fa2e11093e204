//! The Apache request as an auth script's Python objects reach it: through
//! one mutex, and only until the hook returns. Scripts may keep those
//! objects (wsgi.errors, the mod_ssl callables) and call them later or from
//! threads of their own; then they raise instead of touching a request that
//! is gone or in use by another thread.
use crate::apache::{log, sys};
use crate::wsgi::transport::{ClientGone, Ending, Level, ResponseHead, Transport};
use pyo3::prelude::*;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

struct Ptr(*mut sys::request_rec);

// SAFETY: an Apache request may be used from any thread, one at a time:
// every use goes through the mutex of the `RequestRef` holding it.
unsafe impl Send for Ptr {}

/// The request while its hook runs (None after).
pub struct RequestRef(Mutex<Option<Ptr>>);

impl RequestRef {
    /// # Safety
    /// `r` must stay live until [`RequestRef::end`] is called.
    pub unsafe fn new(r: *mut sys::request_rec) -> Arc<RequestRef> {
        Arc::new(RequestRef(Mutex::new(Some(Ptr(r)))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Ptr>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hook is returning: the request is out of reach from now on.
    pub fn end(&self) {
        *self.lock() = None;
    }

    /// Runs `f` on the request, unless the hook has returned. Only without
    /// the GIL (the holder of the mutex may wait for nothing else).
    pub fn with<R>(&self, f: impl FnOnce(*mut sys::request_rec) -> R) -> Option<R> {
        self.lock().as_ref().map(|p| f(p.0))
    }

    /// Like [`RequestRef::with`], from a thread holding the GIL: `f` runs
    /// with the GIL held, so it must not block.
    pub fn with_py<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(*mut sys::request_rec) -> R,
    ) -> Option<R> {
        loop {
            match self.0.try_lock() {
                Ok(g) => return g.as_ref().map(|p| f(p.0)),
                Err(TryLockError::Poisoned(p)) => return p.into_inner().as_ref().map(|p| f(p.0)),
                // The holder never needs the GIL: wait for it without.
                Err(TryLockError::WouldBlock) => py.detach(|| drop(self.lock())),
            }
        }
    }
}

/// The transport behind an auth script's wsgi.errors: it only logs (in the
/// request's context while the hook runs); there is no response to send.
pub struct LogOnly(pub Arc<RequestRef>);

impl Transport for LogOnly {
    fn read(&mut self, _buf: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
        Ok(0)
    }
    fn head_only(&self) -> bool {
        true
    }
    fn start(&mut self, _head: &ResponseHead) {}
    fn send(&mut self, _chunks: &[&[u8]]) -> Result<(), ClientGone> {
        Err(ClientGone)
    }
    fn send_file(&mut self, _file: OwnedFd, _offset: u64, _len: u64) -> Result<(), ClientGone> {
        Err(ClientGone)
    }
    fn end(&mut self, _chunks: &[&[u8]], _how: Ending) -> Result<(), ClientGone> {
        Err(ClientGone)
    }
    fn close_connection(&mut self) {}
    fn abort(&mut self) {}
    fn log(&mut self, level: Level, msg: &str) {
        // SAFETY: `with` hands out the request only while its hook runs.
        let logged = self
            .0
            .with(|r| unsafe { log::rerror(r, log::level(level), msg) });
        if logged.is_none() {
            log::server(level, msg);
        }
    }
}
