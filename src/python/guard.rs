//! The boundary between Python and Rust, kept free of pyo3's process-wide
//! Python objects (sub-interpreters must not share them):
//! - a panic in code Python calls becomes a plain RuntimeError here, before
//!   pyo3's trampoline would raise its `PanicException` (a type object
//!   cached for the whole process);
//! - errors are described with the type's C name, not `PyErr`'s Display
//!   (which attaches through PyGILState and, before 3.11, reads
//!   `__qualname__` through a process-wide interned string).
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into a RuntimeError that names it.
pub fn catch<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(PyRuntimeError::new_err(format!(
            "internal error in mod_wsgi_rs: {what}"
        )))
    })
}

/// The C name of an object's type (`tp_name`), as mod_wsgi's messages use.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    // SAFETY: every object has a type whose tp_name is a NUL-terminated
    // string that lives as long as the type, which `obj` keeps alive.
    unsafe {
        let tp = ffi::Py_TYPE(obj.as_ptr());
        std::ffi::CStr::from_ptr((*tp).tp_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// "Type: message" for an error, without pyo3's Display.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    let text = value
        .str()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "<exception str() failed>".into());
    format!("{}: {text}", type_name(value.as_any()))
}

/// Test hook, present only when Apache runs with WSGI_RS_TEST_HOOKS set:
/// panics inside the boundary, so that tests prove a panic becomes a
/// RuntimeError in every interpreter and the process keeps serving.
#[pyfunction]
pub fn _rs_test_panic() -> PyResult<()> {
    catch(|| panic!("test hook panic"))
}
