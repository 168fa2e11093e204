//! wsgi.file_wrapper fast path: a regular file returned through the wrapper
//! is handed to the transport as a descriptor and a range (Apache sends it
//! with sendfile), from the file's current position.
use super::exchange::Exchange;
use super::output::SendError;
use pyo3::prelude::*;
use std::os::fd::{FromRawFd, OwnedFd};

/// The (descriptor, offset, length) to send if `filelike` is a regular file.
/// The descriptor is a duplicate the caller owns: the transport may still be
/// sending the file after the application closed its file object.
fn file_range(filelike: &Bound<'_, PyAny>) -> Option<(OwnedFd, u64, u64)> {
    let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
    let pos: i64 = filelike.call_method0("tell").ok()?.extract().ok()?;
    // SAFETY: F_DUPFD_CLOEXEC on any integer is safe: a bad descriptor fails
    // with EBADF; a good one yields a new descriptor that we own.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return None;
    }
    // SAFETY: `dup` is a fresh descriptor owned by nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(dup) };
    // SAFETY: fstat only writes into `st`, which a zeroed stat may be.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above, on a descriptor we own.
    if unsafe { libc::fstat(dup, &mut st) } != 0
        || (st.st_mode & libc::S_IFMT) != libc::S_IFREG
        || pos < 0
    {
        return None;
    }
    let len = (st.st_size - pos).max(0) as u64;
    Some((owned, pos as u64, len))
}

/// Sends `wrapper.filelike` as a file range plus the end of the response.
/// None: not a regular file (or write() already sent part of the response);
/// the caller iterates instead.
pub fn try_send(
    py: Python<'_>,
    ex: &Exchange,
    wrapper: &Bound<'_, PyAny>,
) -> Option<Result<(), SendError>> {
    if ex.lock_py(py).output.headers_sent() {
        return None;
    }
    let filelike = wrapper.getattr("filelike").ok()?;
    let (fd, offset, len) = file_range(&filelike)?;
    Some(py.detach(move || {
        ex.wait_queue()?;
        let mut inner = ex.lock();
        let (t, output) = inner.output()?;
        output.send_file(t, fd, offset, len)
    }))
}
