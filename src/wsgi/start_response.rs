//! start_response() and write(), bound to a request by functools.partial
//! over the request's capsule. Everything the application passes is checked
//! here, in Python terms; the rules about when output may go out live in
//! `output`.
use super::exchange::Exchange;
use super::output::{SendError, StartError};
use super::transport::ResponseHead;
use super::writer;
use crate::python::text::{latin1_bytes, type_name};
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
fn is_token(name: &[u8]) -> bool {
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

/// The status and headers as Python gave them, checked.
fn response_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<ResponseHead> {
    let status = latin1_bytes(status, "status")?;
    let code = parse_status(&status).map_err(PyValueError::new_err)?;
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response headers must be a list, value of type {} found",
            type_name(headers)
        ))
    })?;
    let mut head = ResponseHead {
        code,
        status,
        headers: Vec::with_capacity(list.len()),
        content_length: None,
    };
    for item in list.iter() {
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "response header must be a (name, value) tuple, value of type {} found",
                    type_name(&item)
                ))
            })?;
        let name = latin1_bytes(&pair.get_item(0)?, "header name")?;
        let value = latin1_bytes(&pair.get_item(1)?, "header value")?;
        if let Some(cl) = check_header(&name, &value).map_err(PyValueError::new_err)? {
            head.content_length = Some(cl);
        }
        head.headers.push((name, value));
    }
    Ok(head)
}

/// The exception to re-raise for exc_info given after the headers went out.
fn reraise(exc_info: &Bound<'_, PyAny>) -> PyErr {
    match exc_info
        .cast::<PyTuple>()
        .ok()
        .and_then(|t| t.get_item(1).ok())
    {
        Some(v) => PyErr::from_value(v),
        None => PyTypeError::new_err("exc_info must be a (type, value, traceback) tuple"),
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
    let exc_info = exc_info.filter(|e| !e.is_none());
    if let Some(e) = exc_info {
        if !e.cast::<PyTuple>().is_ok_and(|t| t.len() == 3) {
            return Err(PyTypeError::new_err(format!(
                "exc_info must be a (type, value, traceback) tuple, value of type {} found",
                type_name(e)
            )));
        }
        // PEP 3333: too late to change the response; re-raise the original error.
        if ex.lock_py(py).output.headers_sent() {
            return Err(reraise(e));
        }
    }
    let head = response_head(status, headers)?;
    let recorded = ex.lock_py(py).output.start(head, exc_info.is_some());
    match recorded {
        Ok(()) => {}
        Err(StartError::TooLate) => return Err(reraise(exc_info.expect("TooLate needs exc_info"))),
        Err(StartError::AlreadyStarted) => {
            return Err(PyRuntimeError::new_err(
                "start_response() was already called for this request: a second call must pass exc_info",
            ))
        }
    }
    super::events::response_started(py, &ex, status, headers, exc_info);
    let objs = ex.interp.objects();
    objs.partial.bind(py).call1((objs.write.bind(py), ctx))
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

/// write(data): the imperative output API of PEP 3333.
#[pyfunction]
pub fn _rs_write(py: Python<'_>, ctx: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    crate::python::guard::catch(|| write(py, ctx, data))
}

fn write(py: Python<'_>, ctx: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let ex = Exchange::from_capsule(ctx)?;
    let bytes = data.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "byte string value expected, value of type {} found",
            type_name(data)
        ))
    })?;
    send_blocks(py, &ex, &[bytes.as_bytes()]).map_err(|e| match e {
        SendError::NotStarted => PyRuntimeError::new_err("write() called before start_response()"),
        SendError::Finished => {
            PyRuntimeError::new_err("write() called after the request has completed")
        }
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
