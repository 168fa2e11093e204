//! start_response, write() and sending the response through Apache.
use super::request::{lock, RequestCtx};
use crate::apache::{self, brigade::Brigade, log, sys, table};
use crate::python::interp::Interp;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

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

#[derive(Debug, PartialEq)]
pub enum SendError {
    /// start_response() has not been called.
    NotStarted,
    /// The request is over; the Python objects outlived it.
    Finished,
    ClientGone,
}

/// What the application asked for, and what has gone out so far.
pub struct Output {
    r: *mut sys::request_rec,
    bb: Option<Brigade>,
    pub script: String,
    pub status: Option<(u16, Vec<u8>)>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub content_length: Option<u64>,
    pub headers_sent: bool,
    pub write_used: bool,
    pub sent: u64,
    /// The end of the response, put aside by `stage_final`.
    staged: Option<Brigade>,
}

impl Output {
    /// # Safety
    /// `r` must stay live until `detach` is called.
    pub unsafe fn new(r: *mut sys::request_rec, script: &str) -> Output {
        Output {
            r,
            bb: None,
            script: script.to_string(),
            status: None,
            headers: Vec::new(),
            content_length: None,
            headers_sent: false,
            write_used: false,
            sent: 0,
            staged: None,
        }
    }

    pub fn detach(&mut self) {
        self.r = std::ptr::null_mut();
        self.bb = None;
        self.staged = None;
    }

    pub fn request(&self) -> *mut sys::request_rec {
        self.r
    }

    /// Puts the status and headers on the request record.
    fn apply_headers(&mut self) -> Result<(), SendError> {
        let (code, line) = self.status.as_ref().ok_or(SendError::NotStarted)?;
        let r = self.r;
        // SAFETY: r is live (checked by the caller); strings are copied into r->pool.
        unsafe {
            (*r).status = *code as i32;
            (*r).status_line = apache::pstrdup((*r).pool, line);
            for (k, v) in &self.headers {
                if k.eq_ignore_ascii_case(b"content-type") {
                    sys::ap_set_content_type(r, apache::pstrdup((*r).pool, v));
                } else if k.eq_ignore_ascii_case(b"content-length") {
                    sys::ap_set_content_length(r, self.content_length.unwrap_or(0) as i64);
                } else if k.eq_ignore_ascii_case(b"www-authenticate") {
                    // Kept on error responses too (ErrorDocument), as mod_wsgi does.
                    table::add((*r).err_headers_out, (*r).pool, k, v, false);
                } else {
                    table::add((*r).headers_out, (*r).pool, k, v, false);
                }
            }
        }
        self.headers_sent = true;
        Ok(())
    }

    /// Bytes the declared Content-Length still allows (output beyond it is
    /// dropped, as mod_wsgi does).
    fn remaining(&self) -> u64 {
        self.content_length
            .map_or(u64::MAX, |cl| cl.saturating_sub(self.sent))
    }

    /// The request's brigade, with the status and headers applied the first
    /// time something is sent.
    fn brigade(&mut self) -> Result<&mut Brigade, SendError> {
        if self.r.is_null() {
            return Err(SendError::Finished);
        }
        if !self.headers_sent {
            self.apply_headers()?;
        }
        let r = self.r;
        // SAFETY: r is live; the brigade is created in r->pool on first use.
        Ok(self.bb.get_or_insert_with(|| unsafe { Brigade::new(r) }))
    }

    /// Passes the brigade down the output filters (blocking: GIL released).
    fn pass(&mut self) -> Result<(), SendError> {
        if self.bb.as_mut().is_some_and(|bb| bb.pass()) {
            Ok(())
        } else {
            Err(SendError::ClientGone)
        }
    }

    /// Sends `chunks` (and a FLUSH and/or EOS) down the output filters.
    /// Blocking: call with the GIL released. Nothing is sent for empty data
    /// without `eos`: headers go out with the first non-empty chunk.
    pub fn send(&mut self, chunks: &[&[u8]], flush: bool, eos: bool) -> Result<(), SendError> {
        if self.r.is_null() {
            return Err(SendError::Finished);
        }
        if !eos && (self.remaining() == 0 || chunks.iter().all(|c| c.is_empty())) {
            return if self.status.is_some() {
                Ok(())
            } else {
                Err(SendError::NotStarted)
            };
        }
        self.fill(chunks, false, flush, eos)?;
        self.pass()
    }

    /// Puts the end of the response (`chunks`, copied, then EOS) aside
    /// without passing it: [`Output::take_staged`] hands it to the handler,
    /// which passes it once the GIL is released for good. A small response
    /// then costs one GIL acquisition instead of two, which is what limits
    /// throughput when many threads share the GIL.
    pub fn stage_final(&mut self, chunks: &[&[u8]]) -> Result<(), SendError> {
        self.fill(chunks, true, false, true)?;
        self.staged = self.bb.take();
        Ok(())
    }

    /// The brigade left by [`Output::stage_final`], if any.
    pub fn take_staged(&mut self) -> Option<Brigade> {
        self.staged.take()
    }

    /// Appends `chunks`, cut to the declared Content-Length, plus a FLUSH or EOS.
    fn fill(
        &mut self,
        chunks: &[&[u8]],
        copy: bool,
        flush: bool,
        eos: bool,
    ) -> Result<(), SendError> {
        let mut room = self.remaining();
        let bb = self.brigade()?;
        let mut added = 0;
        for c in chunks {
            let c = &c[..room.min(c.len() as u64) as usize];
            if copy {
                bb.copy(c);
            } else {
                bb.transient(c);
            }
            room -= c.len() as u64;
            added += c.len() as u64;
        }
        if eos {
            bb.eos();
        } else if flush {
            bb.flush();
        }
        self.sent += added;
        if eos {
            self.check_length();
        }
        Ok(())
    }

    /// Sends a file range (file bucket) and EOS. Blocking, GIL released.
    ///
    /// # Safety
    /// `file` must stay open until the request pool is destroyed.
    pub unsafe fn send_file(
        &mut self,
        file: *mut sys::apr_file_t,
        offset: i64,
        len: u64,
    ) -> Result<(), SendError> {
        let len = len.min(self.remaining());
        let bb = self.brigade()?;
        if len > 0 {
            // SAFETY: the file is open for the request's life (caller's contract).
            unsafe { bb.file(file, offset, len as i64) };
        }
        bb.eos();
        self.sent += len;
        self.check_length();
        self.pass()
    }

    /// A response shorter than its Content-Length is logged, and the connection
    /// is closed afterwards so the client does not wait for the missing bytes.
    fn check_length(&self) {
        let r = self.r;
        // SAFETY: r is live (callers check).
        unsafe {
            if let Some(cl) = self.content_length {
                if self.sent < cl && (*r).header_only == 0 {
                    log::rerror(
                        r,
                        log::ERR,
                        &format!(
                            "Response for WSGI script '{}' is shorter than its Content-Length: {} of {cl} bytes sent; closing the connection.",
                            self.script, self.sent
                        ),
                    );
                    (*(*r).connection).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE;
                }
            }
        }
    }

    /// Cuts the connection: the client must see an incomplete response rather
    /// than a complete-looking one (no final chunk is sent).
    pub fn abort(&mut self) {
        if let Some(mut bb) = self.staged.take() {
            bb.discard();
        }
        if !self.r.is_null() {
            // SAFETY: r and its connection are live.
            unsafe {
                let c = (*self.r).connection;
                (*c).aborted = 1;
                (*c).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE;
            }
        }
    }
}

/// Sends with the GIL released.
pub fn send_detached(
    py: Python<'_>,
    ctx: &std::sync::Arc<RequestCtx>,
    chunks: &[&[u8]],
    flush: bool,
    eos: bool,
) -> Result<(), SendError> {
    let ptrs: Vec<apache::SendPtr<u8>> = chunks
        .iter()
        .map(|c| apache::SendPtr(c.as_ptr() as *mut u8))
        .collect();
    let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    let ctx = ctx.clone();
    py.detach(move || {
        // SAFETY: the caller keeps the chunks alive (and immutable: they are
        // Python bytes objects) until this closure has returned.
        let slices: Vec<&[u8]> = ptrs
            .iter()
            .zip(&lens)
            .map(|(p, &n)| {
                // SAFETY: pointer/length pairs of live, immutable bytes objects.
                unsafe { std::slice::from_raw_parts(p.0 as *const u8, n) }
            })
            .collect();
        lock(&ctx.output).send(&slices, flush, eos)
    })
}

fn latin1(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
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

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

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

/// start_response(status, headers, exc_info=None), bound to a request by
/// functools.partial. Returns the write() callable.
#[pyfunction]
#[pyo3(signature = (ctx, status, headers, exc_info=None))]
pub fn _rs_start_response<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    status: &Bound<'py, PyAny>,
    headers: &Bound<'py, PyAny>,
    exc_info: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let rctx = RequestCtx::from_capsule(ctx)?;
    let exc_info = exc_info.filter(|e| !e.is_none());
    if let Some(exc) = exc_info {
        if lock(&rctx.output).headers_sent {
            // PEP 3333: too late to change the response; re-raise the original error.
            let value = exc.cast::<PyTuple>().ok().and_then(|t| t.get_item(1).ok());
            return Err(match value {
                Some(v) => PyErr::from_value(v),
                None => PyTypeError::new_err("exc_info must be a (type, value, traceback) tuple"),
            });
        }
    } else if lock(&rctx.output).headers_sent {
        return Err(PyRuntimeError::new_err("headers have already been sent"));
    }

    let status = latin1(status, "status")?;
    let code = parse_status(&status).map_err(PyValueError::new_err)?;
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response headers must be a list, value of type {} found",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(list.len());
    let mut content_length = None;
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
        let name = latin1(&pair.get_item(0)?, "header name")?;
        let value = latin1(&pair.get_item(1)?, "header value")?;
        if let Some(cl) = check_header(&name, &value).map_err(PyValueError::new_err)? {
            content_length = Some(cl);
        }
        out.push((name, value));
    }
    {
        let mut o = lock(&rctx.output);
        o.status = Some((code, status));
        o.headers = out;
        o.content_length = content_length;
    }
    let interp = Interp::current().ok_or_else(|| PyRuntimeError::new_err("no interpreter"))?;
    let write = interp.objects().module.bind(py).getattr("_rs_write")?;
    interp.objects().partial.bind(py).call1((write, ctx))
}

/// write(data): the imperative output API of PEP 3333.
#[pyfunction]
pub fn _rs_write(py: Python<'_>, ctx: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<()> {
    let rctx = RequestCtx::from_capsule(ctx)?;
    let bytes = data.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "byte string value expected, value of type {} found",
            type_name(data)
        ))
    })?;
    lock(&rctx.output).write_used = true;
    match send_detached(py, &rctx, &[bytes.as_bytes()], true, false) {
        Ok(()) => Ok(()),
        Err(SendError::NotStarted) => Err(PyRuntimeError::new_err(
            "write() called before start_response()",
        )),
        Err(SendError::Finished) => Err(PyRuntimeError::new_err(
            "write() called after the request has completed",
        )),
        Err(SendError::ClientGone) => Err(PyOSError::new_err(
            "failed to write response data: client connection closed",
        )),
    }
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
