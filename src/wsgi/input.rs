//! wsgi.input: the request body, read from Apache's input filters (which
//! de-chunk and stop at Content-Length) with the GIL released.
use super::request::{lock, RequestCtx};
use crate::apache::sys;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Largest single read from Apache.
const BLOCK: usize = 64 * 1024;

pub struct InputState {
    r: *mut sys::request_rec,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    failed: bool,
}

impl InputState {
    /// # Safety
    /// `r` must stay live until `detach` is called.
    pub unsafe fn new(r: *mut sys::request_rec) -> InputState {
        InputState {
            r,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            failed: false,
        }
    }

    pub fn detach(&mut self) {
        self.r = std::ptr::null_mut();
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads one block (up to `want` bytes) from the client into the buffer.
    fn fill(&mut self, want: usize) -> Result<(), String> {
        if self.r.is_null() {
            return Err("mod_wsgi request data read error: request has already completed".into());
        }
        if self.failed {
            return Err("mod_wsgi request data read error: input is already in error state".into());
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > BLOCK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let want = want.clamp(8192, BLOCK);
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        // SAFETY: r is live (not detached); the buffer has `want` writable bytes.
        let n =
            unsafe { sys::ap_get_client_block(self.r, self.buf[old..].as_mut_ptr().cast(), want) };
        if n < 0 {
            self.buf.truncate(old);
            self.failed = true;
            return Err(
                "mod_wsgi request data read error: the client closed the connection or timed out"
                    .into(),
            );
        }
        self.buf.truncate(old + n as usize);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.available());
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        out
    }

    /// read(size): at most `size` bytes (all remaining if negative); empty only at EOF.
    pub fn read(&mut self, size: i64) -> Result<Vec<u8>, String> {
        if size == 0 {
            return Ok(Vec::new());
        }
        while !self.eof && (size < 0 || self.available() < size as usize) {
            let want = if size < 0 {
                BLOCK
            } else {
                size as usize - self.available()
            };
            self.fill(want)?;
        }
        let n = if size < 0 {
            self.available()
        } else {
            size as usize
        };
        Ok(self.take(n))
    }

    /// readline(size): up to and including the next newline, at most `size` bytes.
    pub fn readline(&mut self, size: i64) -> Result<Vec<u8>, String> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let limit = if size < 0 { usize::MAX } else { size as usize };
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(self.take((scanned + i + 1).min(limit)));
            }
            scanned = avail.len();
            if scanned >= limit || self.eof {
                return Ok(self.take(limit));
            }
            self.fill(8192)?;
        }
    }
}

/// Runs an input operation with the GIL released and returns its bytes.
fn with_input<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    op: impl FnOnce(&mut InputState) -> Result<Vec<u8>, String> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    let ctx = RequestCtx::from_capsule(ctx)?;
    let data = py.detach(move || op(&mut lock(&ctx.input)));
    match data {
        Ok(d) => Ok(PyBytes::new(py, &d)),
        Err(e) => Err(PyOSError::new_err(e)),
    }
}

#[pyfunction]
pub fn _rs_input_read<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    size: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    with_input(py, ctx, move |i| i.read(size))
}

#[pyfunction]
pub fn _rs_input_readline<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    size: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    with_input(py, ctx, move |i| i.readline(size))
}
