//! Bytes ↔ Python str conversions with the encodings WSGI prescribes.
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// A str decoded from Latin-1 (any bytes are valid).
#[inline(always)]
pub fn str_from_latin1<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the decoder reads exactly b.len() bytes and returns a new
    // reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeLatin1(
                b.as_ptr().cast(),
                b.len() as ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
        .map(|o| o.cast_into_unchecked())
    }
}

/// A str decoded with the filesystem encoding (surrogateescape), for paths.
pub fn str_from_fs<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: as above; the filesystem decoder accepts any bytes.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeFSDefaultAndSize(b.as_ptr().cast(), b.len() as ffi::Py_ssize_t),
        )
        .map(|o| o.cast_into_unchecked())
    }
}

/// The Latin-1 bytes of a str (`what` names it in errors): the encoding of
/// response status lines and headers.
pub fn latin1_bytes(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let s = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected str object for {what}, value of type {} found",
            type_name(obj)
        ))
    })?;
    let s = s.to_cow()?;
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                PyValueError::new_err(format!("{what} {s:?} is not Latin-1 encodable"))
            })
        })
        .collect()
}

pub use super::guard::type_name;
