//! apache.request_rec (WSGIPassApacheRequest On, embedded mode): a PyCapsule
//! holding the address of Apache's request_rec, unnamed as mod_wsgi's is.
//!
//! Contract (mod_wsgi's): the pointer is valid only while the request that
//! put it in the environ is being handled, on that request's thread. This
//! module never reads through it: the capsule has no destructor and no
//! name, and nothing in mod_wsgi_rs takes a pointer back out of a capsule
//! of this kind, so a capsule kept past its request is inert unless
//! foreign code (ctypes, an extension) dereferences it, which is that
//! code's responsibility exactly as with mod_wsgi.
use pyo3::prelude::*;

/// The environ key.
pub const KEY: &str = "apache.request_rec";

/// A capsule for the request_rec at `addr` (non-zero).
pub fn capsule(py: Python<'_>, addr: usize) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: PyCapsule_New only stores the pointer (non-NULL: addr != 0)
    // and the NULL name; it never dereferences either. The GIL is held.
    unsafe {
        let p = pyo3::ffi::PyCapsule_New(addr as *mut std::ffi::c_void, std::ptr::null(), None);
        Bound::from_owned_ptr_or_err(py, p)
    }
}
