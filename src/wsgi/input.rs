//! wsgi.input: the request body, read from the transport with the GIL
//! released. Reads of a known size go straight into the bytes object that
//! is returned (no zero-filling, no intermediate copy); readline() and
//! unsized reads go through a buffer.
use super::exchange::{Exchange, Inner};
use super::transport::Transport;
use pyo3::exceptions::PyOSError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::mem::MaybeUninit;

/// Buffer growth step for readline() and unsized reads.
const BLOCK: usize = 64 * 1024;

/// Reads whose result could be larger than this go through a growing buffer
/// instead of a bytes object of the largest possible size: read(10**9) on a
/// small body, or a client announcing a huge Content-Length and sending
/// nothing, must not allocate that much up front.
const PREALLOC_MAX: usize = 4 << 20;

const ERR_PREFIX: &str = "mod_wsgi request data read error: ";

#[derive(Default)]
pub struct InputBuffer {
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    failed: bool,
    /// Body bytes not yet read from the transport, when the length is known.
    unread: Option<u64>,
}

impl InputBuffer {
    pub fn new(body_length: Option<u64>) -> InputBuffer {
        InputBuffer {
            unread: body_length,
            ..Default::default()
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    /// How many bytes read(size) returns at most, if that is known and small
    /// enough to allocate up front.
    pub fn bound(&self, size: i64) -> Option<usize> {
        let known = self.unread.map(|u| {
            usize::try_from(u)
                .unwrap_or(usize::MAX)
                .saturating_add(self.buffered().len())
        });
        let size = usize::try_from(size).ok();
        let n = match (size, known) {
            (Some(s), Some(k)) => s.min(k),
            (Some(n), None) | (None, Some(n)) => n,
            (None, None) => return None,
        };
        (n <= PREALLOC_MAX).then_some(n)
    }

    /// One read from the transport into `dest`.
    fn pull(
        &mut self,
        t: &mut dyn Transport,
        dest: &mut [MaybeUninit<u8>],
    ) -> Result<usize, String> {
        if self.failed {
            return Err(format!("{ERR_PREFIX}input is already in error state"));
        }
        if self.eof || dest.is_empty() {
            return Ok(0);
        }
        match t.read(dest) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.unread = self.unread.map(|u| u.saturating_sub(n as u64));
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(format!("{ERR_PREFIX}{e}"))
            }
        }
    }

    /// Like `pull`, without blocking: None when nothing is available now.
    fn pull_ready(
        &mut self,
        t: &mut dyn Transport,
        dest: &mut [MaybeUninit<u8>],
    ) -> Result<Option<usize>, String> {
        if self.failed {
            return Err(format!("{ERR_PREFIX}input is already in error state"));
        }
        if self.eof || dest.is_empty() {
            return Ok(Some(0));
        }
        match t.read_ready(dest) {
            Ok(None) => Ok(None),
            Ok(Some(0)) => {
                self.eof = true;
                Ok(Some(0))
            }
            Ok(Some(n)) => {
                self.unread = self.unread.map(|u| u.saturating_sub(n as u64));
                Ok(Some(n))
            }
            Err(e) => {
                self.failed = true;
                Err(format!("{ERR_PREFIX}{e}"))
            }
        }
    }

    /// Moves buffered bytes to the front of `dest`; returns how many.
    fn take_buffered(&mut self, dest: &mut [MaybeUninit<u8>]) -> usize {
        let n = self.buffered().len().min(dest.len());
        for (d, s) in dest.iter_mut().zip(self.buffered()) {
            d.write(*s);
        }
        self.consume(n);
        n
    }

    /// Fills `dest` with what is available without blocking. Returns the
    /// bytes written and whether `dest` is complete (full, or the body ended).
    pub fn read_into_ready(
        &mut self,
        t: &mut dyn Transport,
        dest: &mut [MaybeUninit<u8>],
    ) -> Result<(usize, bool), String> {
        let mut n = self.take_buffered(dest);
        while n < dest.len() {
            match self.pull_ready(t, &mut dest[n..])? {
                None => return Ok((n, false)),
                Some(0) => return Ok((n, true)),
                Some(got) => n += got,
            }
        }
        Ok((n, true))
    }

    /// Reads one block from the transport into the buffer's spare room.
    fn fill(&mut self, t: &mut dyn Transport) -> Result<usize, String> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(BLOCK);
        let mut spare = std::mem::take(&mut self.buf);
        let res = self.pull(t, spare.spare_capacity_mut());
        if let Ok(n) = res {
            // SAFETY: `pull` initialised the first n bytes of the spare room.
            unsafe { spare.set_len(spare.len() + n) };
        }
        self.buf = spare;
        res
    }

    /// Fills `dest` from the buffer, then from the transport, until it is
    /// full or the body ends; returns the number of bytes written.
    pub fn read_into(
        &mut self,
        t: &mut dyn Transport,
        dest: &mut [MaybeUninit<u8>],
    ) -> Result<usize, String> {
        let mut n = self.take_buffered(dest);
        while n < dest.len() {
            match self.pull(t, &mut dest[n..])? {
                0 => break,
                got => n += got,
            }
        }
        Ok(n)
    }

    /// read(size) when the result size is not known in advance.
    pub fn read(&mut self, t: &mut dyn Transport, size: i64) -> Result<Vec<u8>, String> {
        let limit = if size < 0 { usize::MAX } else { size as usize };
        while self.buffered().len() < limit && !self.eof {
            self.fill(t)?;
        }
        let n = self.buffered().len().min(limit);
        Ok(self.consume(n))
    }

    /// readline(size): up to and including the next newline, at most `size`
    /// bytes (all of the line if negative); empty only at the end.
    pub fn readline(&mut self, t: &mut dyn Transport, size: i64) -> Result<Vec<u8>, String> {
        let limit = if size < 0 { usize::MAX } else { size as usize };
        let mut scanned = 0;
        loop {
            let avail = self.buffered();
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(self.consume((scanned + i + 1).min(limit)));
            }
            scanned = avail.len();
            if scanned >= limit || self.eof {
                return Ok(self.consume(scanned.min(limit)));
            }
            self.fill(t)?;
        }
    }
}

/// The transport, or the error for a request that is over.
fn lent(inner: &mut Inner) -> Result<(&mut dyn Transport, &mut InputBuffer), String> {
    match inner.parts() {
        (Some(t), input, _) => Ok((t, input)),
        (None, ..) => Err(format!("{ERR_PREFIX}request has already completed")),
    }
}

/// read(size) straight into a bytes object of the largest possible result:
/// first what has already arrived, with the GIL held (no hand-off), then,
/// if more must be waited for, the rest with the GIL released.
fn read_sized<'py>(py: Python<'py>, ex: &Exchange, cap: usize) -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: the writer owns a fresh, unshared bytes buffer of `cap` bytes;
    // it is filled by this thread only (nothing else can reach it, with or
    // without the GIL), then finished or discarded with the GIL held.
    unsafe {
        let w = ffi::compat::PyBytesWriter_Create(cap as ffi::Py_ssize_t);
        if w.is_null() {
            return Err(PyErr::fetch(py));
        }
        let dest = std::slice::from_raw_parts_mut(
            ffi::compat::PyBytesWriter_GetData(w).cast::<MaybeUninit<u8>>(),
            cap,
        );
        let ready = {
            let mut inner = ex.lock_py(py);
            lent(&mut inner).and_then(|(t, input)| input.read_into_ready(t, dest))
        };
        let res = match ready {
            Ok((n, true)) => Ok(n),
            Ok((n, false)) => py
                .detach(|| {
                    let mut inner = ex.lock();
                    lent(&mut inner).and_then(|(t, input)| input.read_into(t, &mut dest[n..]))
                })
                .map(|m| n + m),
            Err(e) => Err(e),
        };
        match res {
            Ok(n) => Bound::from_owned_ptr_or_err(
                py,
                ffi::compat::PyBytesWriter_FinishWithSize(w, n as ffi::Py_ssize_t),
            )
            .map(|b| b.cast_into_unchecked()),
            Err(e) => {
                ffi::compat::PyBytesWriter_Discard(w);
                Err(PyOSError::new_err(e))
            }
        }
    }
}

fn buffered_op<'py>(
    py: Python<'py>,
    ex: &Exchange,
    op: impl FnOnce(&mut InputBuffer, &mut dyn Transport) -> Result<Vec<u8>, String> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    let res = py.detach(|| {
        let mut inner = ex.lock();
        lent(&mut inner).and_then(|(t, input)| op(input, t))
    });
    match res {
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
    crate::python::guard::catch(|| {
        let ex = Exchange::from_capsule(ctx)?;
        if size == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let start = std::time::Instant::now();
        let bound = ex.lock_py(py).input.bound(size);
        let data = match bound {
            Some(cap) => read_sized(py, &ex, cap),
            None => buffered_op(py, &ex, move |i, t| i.read(t, size)),
        }?;
        count(&ex, &data, start);
        Ok(data)
    })
}

#[pyfunction]
pub fn _rs_input_readline<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    size: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    crate::python::guard::catch(|| {
        let ex = Exchange::from_capsule(ctx)?;
        if size == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let start = std::time::Instant::now();
        let data = buffered_op(py, &ex, move |i, t| i.readline(t, size))?;
        count(&ex, &data, start);
        Ok(data)
    })
}

/// Counts a read for the request_finished event.
fn count(ex: &Exchange, data: &Bound<'_, PyBytes>, start: std::time::Instant) {
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    ex.count_input(data.as_bytes().len(), micros);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsgi::output::tests::FakeTransport;

    fn body(chunks: &[&[u8]]) -> FakeTransport {
        FakeTransport {
            body_in: chunks.iter().map(|c| c.to_vec()).collect(),
            ..Default::default()
        }
    }

    fn read_into(i: &mut InputBuffer, t: &mut dyn Transport, n: usize) -> Vec<u8> {
        let mut dest = vec![MaybeUninit::uninit(); n];
        let got = i.read_into(t, &mut dest).unwrap();
        dest[..got]
            .iter()
            // SAFETY: read_into initialised the first `got` bytes.
            .map(|b| unsafe { b.assume_init() })
            .collect()
    }

    #[test]
    fn sized_reads_span_transport_reads() {
        let mut t = body(&[b"abc", b"defg", b"h"]);
        let mut i = InputBuffer::new(Some(8));
        assert_eq!(i.bound(100), Some(8));
        assert_eq!(read_into(&mut i, &mut t, 5), b"abcde");
        assert_eq!(i.bound(100), Some(3));
        assert_eq!(read_into(&mut i, &mut t, 10), b"fgh");
        assert_eq!(read_into(&mut i, &mut t, 10), b"");
    }

    #[test]
    fn readline_limits_and_lines() {
        let mut t = body(&[b"one\ntw", b"o\nthree"]);
        let mut i = InputBuffer::new(None);
        assert_eq!(i.readline(&mut t, -1).unwrap(), b"one\n");
        assert_eq!(i.readline(&mut t, 2).unwrap(), b"tw");
        assert_eq!(i.readline(&mut t, -1).unwrap(), b"o\n");
        // A sized read after readline takes the buffered bytes first.
        assert_eq!(read_into(&mut i, &mut t, 3), b"thr");
        assert_eq!(i.readline(&mut t, -1).unwrap(), b"ee");
        assert_eq!(i.readline(&mut t, -1).unwrap(), b"");
    }

    #[test]
    fn unsized_reads() {
        let mut t = body(&[b"ab", b"cd", b"ef"]);
        let mut i = InputBuffer::new(None);
        assert_eq!(i.bound(-1), None);
        assert_eq!(i.bound(10), Some(10));
        assert_eq!(i.bound(1 << 30), None);
        assert_eq!(i.read(&mut t, 3).unwrap(), b"abc");
        assert_eq!(i.read(&mut t, -1).unwrap(), b"def");
        assert_eq!(i.read(&mut t, -1).unwrap(), b"");
    }

    #[test]
    fn ready_reads_stop_where_waiting_would_begin() {
        // The fake has no read_ready: nothing is "available", so only the
        // buffered bytes come back and the read is not complete.
        let mut t = body(&[b"one\ntwo"]);
        let mut i = InputBuffer::new(None);
        assert_eq!(i.readline(&mut t, -1).unwrap(), b"one\n");
        let mut dest = vec![MaybeUninit::uninit(); 5];
        assert_eq!(i.read_into_ready(&mut t, &mut dest).unwrap(), (3, false));
        let mut dest: Vec<MaybeUninit<u8>> = Vec::new();
        assert_eq!(i.read_into_ready(&mut t, &mut dest).unwrap(), (0, true));
    }

    #[test]
    fn an_error_sticks() {
        let mut t = body(&[b"ab"]);
        t.read_error = Some("client gone".into());
        let mut i = InputBuffer::new(None);
        let e = i.read(&mut t, -1).unwrap_err();
        assert!(
            e.starts_with(ERR_PREFIX) && e.ends_with("client gone"),
            "{e}"
        );
        let e = i.readline(&mut t, -1).unwrap_err();
        assert!(e.contains("already in error state"), "{e}");
    }
}
