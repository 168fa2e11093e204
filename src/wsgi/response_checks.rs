//! What start_response() checks of the status and headers, raising mod_wsgi
//! 6.0.5's exceptions (types and texts: applications and tests match them).
//! Texts are built only when a check fails; the rules themselves are
//! `start_response::{parse_status, check_header}`, shared with the daemon
//! proxy, and are a little stricter than mod_wsgi's (see README).
use super::start_response::{check_header, is_token, parse_status};
use crate::python::text::type_name;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

/// Python's repr of the bytes, as mod_wsgi's `%R` shows them.
fn repr(py: Python<'_>, b: &[u8]) -> String {
    PyBytes::new(py, b)
        .repr()
        .map_or_else(|_| format!("{b:?}"), |r| r.to_string())
}

/// C's iscntrl() in the C locale.
fn is_cntrl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// A str as Latin-1 bytes; else mod_wsgi's TypeError or the codec's own
/// UnicodeEncodeError.
pub fn latin1(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("must be str, not {}", type_name(obj))))?;
    // SAFETY: `s` is a live str; the call returns a new reference, or NULL
    // with the codec's exception set.
    let b = unsafe {
        Bound::from_owned_ptr_or_err(obj.py(), pyo3::ffi::PyUnicode_AsLatin1String(s.as_ptr()))?
    };
    Ok(b.cast_into::<PyBytes>()?.as_bytes().to_vec())
}

/// The status line and its code.
pub fn status(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<(Vec<u8>, u16)> {
    let b = latin1(obj)?;
    match parse_status(&b) {
        Ok(code) => Ok((b, code)),
        Err(_) => Err(PyValueError::new_err(status_text(py, &b))),
    }
}

fn status_text(py: Python<'_>, b: &[u8]) -> String {
    let r = repr(py, b);
    let three = b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit);
    if !three || b.get(3).is_some_and(u8::is_ascii_digit) {
        return format!("status code must be a 3 digit integer: {r}");
    }
    if b.get(3) != Some(&b' ') {
        // mod_wsgi takes a bare "200"; a reason phrase is required here.
        return format!("no space following status code: {r}");
    }
    if b[4..].iter().any(|&c| is_cntrl(c)) {
        return format!("control character in status reason phrase: {r}");
    }
    format!("status code must be between 100 and 999: {r}")
}

/// Each (name, value) as Latin-1 bytes, checked; the Content-Length; and
/// the ValueError text of a bad Content-Length, which mod_wsgi raises only
/// when output starts (the header is then left out).
#[allow(clippy::type_complexity)]
pub fn headers(
    py: Python<'_>,
    list: &Bound<'_, PyList>,
) -> PyResult<(Vec<(Vec<u8>, Vec<u8>)>, Option<u64>, Option<String>)> {
    let mut out = Vec::with_capacity(list.len());
    let mut content_length = None;
    let mut invalid = None;
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "each header must be a 2-tuple, not {}",
                type_name(&item)
            ))
        })?;
        if pair.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "each header must be a 2-tuple, got length {}",
                pair.len()
            )));
        }
        let name = latin1(&pair.get_item(0)?)?;
        if !is_token(&name) {
            return Err(PyValueError::new_err(name_text(py, &name)));
        }
        let value = latin1(&pair.get_item(1)?)?;
        match check_header(&name, &value) {
            Ok(Some(n)) => content_length = Some(n),
            Ok(None) => {}
            Err(_) if is_bad_length(&name, &value) => {
                invalid.get_or_insert_with(|| {
                    format!(
                        "invalid Content-Length header value: '{}'",
                        String::from_utf8_lossy(&value)
                    )
                });
                continue;
            }
            Err(ours) => return Err(PyValueError::new_err(value_text(py, &value, ours))),
        }
        out.push((name, value));
    }
    Ok((out, content_length, invalid))
}

fn name_text(py: Python<'_>, name: &[u8]) -> String {
    if name.is_empty() {
        return "header name is empty".into();
    }
    for &c in name {
        if is_cntrl(c) {
            return format!("control character in header name: {}", repr(py, name));
        }
        if c == b' ' {
            return format!("space character in header name: {}", repr(py, name));
        }
    }
    // mod_wsgi lets these through (Apache then refuses the response).
    format!("invalid character in header name: {}", repr(py, name))
}

fn has_crlf(value: &[u8]) -> bool {
    value.iter().any(|&c| c == b'\r' || c == b'\n')
}

/// A Content-Length refused for its value (not for CR/LF in it).
fn is_bad_length(name: &[u8], value: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") && !has_crlf(value)
}

fn value_text(py: Python<'_>, value: &[u8], ours: String) -> String {
    if has_crlf(value) {
        return format!(
            "carriage return/line feed character in header value: {}",
            repr(py, value)
        );
    }
    ours
}
