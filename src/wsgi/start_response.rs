//! start_response() and write(), bound to a request by functools.partial
//! over the request's capsule. Everything the application passes is checked
//! here, in Python terms; the rules about when output may go out live in
//! `output`.
use super::exchange::Exchange;
use super::output::{SendError, StartError};
use super::response_checks as checks;
use super::transport::ResponseHead;
use super::writer;
use crate::python::text::type_name;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::sync::Arc;

/// Response headers that only make sense for one connection (PEP 3333 §"Other HTTP Features").
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Parses a status line: three digits, a space and a reason without control characters.
pub fn parse_status(status: &[u8]) -> Result<u16, String> {
    let ok = status.len() >= 4
        && status[..3].iter().all(u8::is_ascii_digit)
        && status[0] != b'0'
        && status[3] == b' '
        && status[4..].iter().all(|&b| b >= 0x20 && b != 0x7f);
    if !ok {
        return Err(format!(
            "invalid status line {:?}: expected 'NNN Reason'",
            String::from_utf8_lossy(status)
        ));
    }
    Ok(status[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + (d - b'0') as u16))
}

/// RFC 9110 token characters.
pub fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks one response header; returns the Content-Length if this is one.
pub fn check_header(name: &[u8], value: &[u8]) -> Result<Option<u64>, String> {
    let shown = String::from_utf8_lossy(name);
    if !is_token(name) {
        return Err(format!("invalid response header name {shown:?}"));
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!(
            "response header {shown:?} contains control characters (such as CR or LF) in its value"
        ));
    }
    if HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
    {
        return Err(format!(
            "hop-by-hop header '{shown}' is not allowed in a WSGI response"
        ));
    }
    if name.eq_ignore_ascii_case(b"content-length") {
        let v = std::str::from_utf8(value).unwrap_or("").trim();
        return match v.parse::<u64>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
            _ => Err(format!(
                "invalid Content-Length value {:?}",
                String::from_utf8_lossy(value)
            )),
        };
    }
    Ok(None)
}

/// The status and headers as Python gave them, checked, and the error they
/// give when output starts (as mod_wsgi, a bad Content-Length).
fn response_head(
    py: Python<'_>,
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyList>,
) -> PyResult<(ResponseHead, Option<String>)> {
    let (status, code) = checks::status(py, status)?;
    let (headers, content_length, invalid) = checks::headers(py, headers)?;
    let head = ResponseHead {
        code,
        status,
        headers,
        content_length,
    };
    Ok((head, invalid))
}

/// The exception to re-raise for exc_info given after the headers went out
/// (mod_wsgi unpacks it with PyArg_ParseTuple, hence that TypeError).
fn reraise(exc_info: &Bound<'_, PyTuple>) -> PyErr {
    match exc_info.get_item(1) {
        Ok(v) if exc_info.len() == 3 => PyErr::from_value(v),
        _ => PyTypeError::new_err(format!(
            "function takes exactly 3 arguments ({} given)",
            exc_info.len()
        )),
    }
}

/// start_response(status, headers, exc_info=None). Returns write().
#[pyfunction]
#[pyo3(signature = (ctx, status, headers, exc_info=None))]
pub fn _rs_start_response<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    status: &Bound<'py, PyAny>,
    headers: &Bound<'py, PyAny>,
    exc_info: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    crate::python::guard::catch(|| start_response(py, ctx, status, headers, exc_info))
}

fn start_response<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    status: &Bound<'py, PyAny>,
    headers: &Bound<'py, PyAny>,
    exc_info: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ex = Exchange::from_capsule(ctx)?;
    // mod_wsgi 6.0.5's checks, in its order.
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "start_response() argument 2 must be list, not {}",
            type_name(headers)
        ))
    })?;
    let exc_info = exc_info.filter(|e| !e.is_none());
    let exc_tuple = match exc_info {
        None => None,
        Some(e) => Some(e.cast::<PyTuple>().map_err(|_| {
            PyRuntimeError::new_err(
                "start_response() argument 'exc_info' must be a 3-tuple or None",
            )
        })?),
    };
    {
        let inner = ex.lock_py(py);
        if inner.output.ended() {
            return Err(PyRuntimeError::new_err(
                "start_response() called after request completed",
            ));
        }
        match exc_tuple {
            // PEP 3333: too late to change the response; re-raise the original error.
            Some(t) if inner.output.headers_sent() => return Err(reraise(t)),
            None if inner.output.status_code().is_some() => return Err(second_call()),
            _ => {}
        }
    }
    let (head, invalid) = response_head(py, status, list)?;
    let recorded = {
        let mut inner = ex.lock_py(py);
        let recorded = inner.output.start(head, exc_info.is_some());
        if recorded.is_ok() {
            inner.output.set_invalid(invalid);
        }
        recorded
    };
    match (recorded, exc_tuple) {
        (Ok(()), _) => {}
        (Err(StartError::TooLate), Some(t)) => return Err(reraise(t)),
        (Err(_), _) => return Err(second_call()),
    }
    super::events::response_started(py, &ex, status, headers, exc_info);
    let objs = ex.interp.objects();
    objs.partial.bind(py).call1((objs.write.bind(py), ctx))
}

/// A second call without exc_info. mod_wsgi refuses it once output has
/// started; here it is refused before that too (PEP 3333: a fatal error).
fn second_call() -> PyErr {
    PyRuntimeError::new_err("start_response() called more than once without exc_info")
}

/// Sends blocks. Where the transport can queue them, they are copied to the
/// request's queue for the process's writer thread, with the GIL kept (see
/// `writer`); else they are sent with the GIL released, as that may block.
pub fn send_blocks(py: Python<'_>, ex: &Arc<Exchange>, chunks: &[&[u8]]) -> Result<(), SendError> {
    let queued = {
        let mut inner = ex.lock_py(py);
        let queueing = inner.queueing();
        let (t, output) = inner.output()?;
        if queueing {
            let cut = output.queued(t, chunks)?;
            let mut q = ex.queue();
            q.result()?;
            q.push(&cut);
            let wake = q.len() > 0 && !q.scheduled;
            q.scheduled |= wake;
            Some((wake, q.len()))
        } else {
            None
        }
    };
    match queued {
        Some((wake, len)) => {
            if wake {
                writer::schedule(ex.clone());
            }
            if writer::must_wait(len) {
                return py.detach(|| ex.wait_queue_room());
            }
            Ok(())
        }
        None => py.detach(|| {
            let mut inner = ex.lock();
            let (t, output) = inner.output()?;
            output.send(t, chunks)
        }),
    }
}

/// The ValueError of headers that fail when output starts.
pub fn invalid_head(py: Python<'_>, ex: &Exchange) -> PyErr {
    let inner = ex.lock_py(py);
    PyValueError::new_err(inner.output.invalid_head().unwrap_or_default().to_string())
}

/// write(data): the imperative output API of PEP 3333.
#[pyfunction]
pub fn _rs_write(py: Python<'_>, ctx: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::python::guard::catch(|| write(py, ctx, data))
}

fn write(py: Python<'_>, ctx: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let ex = Exchange::from_capsule(ctx)?;
    let bytes = data.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "write() argument must be bytes, not {}",
            type_name(data)
        ))
    })?;
    send_blocks(py, &ex, &[bytes.as_bytes()]).map_err(|e| match e {
        SendError::NotStarted => PyRuntimeError::new_err(
            "start_response() must be called before response content is produced",
        ),
        SendError::Finished => PyRuntimeError::new_err("write() called after request completed"),
        SendError::InvalidHead => invalid_head(py, &ex),
        SendError::ClientGone => {
            PyOSError::new_err("failed to write response data: client connection closed")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"200 OK"), Ok(200));
        assert_eq!(parse_status(b"404 Not Found"), Ok(404));
        assert_eq!(parse_status(b"599 "), Ok(599));
        assert!(parse_status(b"200").is_err());
        assert!(parse_status(b"20 OK").is_err());
        assert!(parse_status(b"abc OK").is_err());
        assert!(parse_status(b"200 OK\r\nX: y").is_err());
        assert!(parse_status(b"099 Low").is_err());
    }

    #[test]
    fn header_rules() {
        assert_eq!(check_header(b"X-Thing", b"v a l"), Ok(None));
        assert_eq!(check_header(b"Content-Length", b"12"), Ok(Some(12)));
        assert!(check_header(b"Content-Length", b"twelve").is_err());
        assert!(check_header(b"Content-Length", b"-1").is_err());
        assert!(check_header(b"X-Evil", b"a\r\nSet-Cookie: x").is_err());
        assert!(check_header(b"Bad Name", b"v").is_err());
        assert!(check_header(b"", b"v").is_err());
        assert!(check_header(b"Connection", b"close").is_err());
        assert!(check_header(b"transfer-encoding", b"chunked").is_err());
    }
}
