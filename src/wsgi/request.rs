//! State shared between the request thread and the Python objects of one
//! request (start_response, write, wsgi.input), reached through a capsule.
//!
//! Lock rule: neither mutex is ever held while waiting for the GIL, so a
//! thread holding the GIL may block on them without deadlock.
use super::input::InputState;
use super::response::Output;
use crate::apache::sys;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::ffi::CStr;
use std::sync::{Arc, Mutex};

pub const CAPSULE_NAME: &CStr = c"mod_wsgi_rs.request";

pub struct RequestCtx {
    pub output: Mutex<Output>,
    pub input: Mutex<InputState>,
}

impl RequestCtx {
    /// # Safety
    /// `r` must be a live request; the context must be `finish`ed before the
    /// handler for `r` returns.
    pub unsafe fn new(r: *mut sys::request_rec, script: &str) -> Arc<RequestCtx> {
        // SAFETY: forwarded contract.
        unsafe {
            Arc::new(RequestCtx {
                output: Mutex::new(Output::new(r, script)),
                input: Mutex::new(InputState::new(r)),
            })
        }
    }

    /// Detaches the context from the request: the Python objects of this
    /// request may outlive it but must no longer touch Apache.
    pub fn finish(&self) {
        lock(&self.output).detach();
        lock(&self.input).detach();
    }

    pub fn capsule<'py>(self: &Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(py, self.clone(), CAPSULE_NAME)
    }

    /// The context behind a capsule created by [`RequestCtx::capsule`].
    pub fn from_capsule(obj: &Bound<'_, PyAny>) -> PyResult<Arc<RequestCtx>> {
        let cap = obj.cast::<PyCapsule>()?;
        let ptr = cap.pointer_checked(Some(CAPSULE_NAME))?;
        // SAFETY: capsules with this name hold an Arc<RequestCtx> (see `capsule`),
        // alive as long as the capsule, which `obj` keeps alive.
        Ok(unsafe { ptr.cast::<Arc<RequestCtx>>().as_ref() }.clone())
    }
}

/// Locks a mutex, recovering from poisoning (a panic elsewhere must not turn
/// every later request into a panic).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// SAFETY: the raw request pointers inside are only dereferenced while the
// request is active (checked under the mutexes) and Apache serves a request
// on one thread at a time.
unsafe impl Send for RequestCtx {}
unsafe impl Sync for RequestCtx {}
