//! wsgi.file_wrapper fast path: a regular file returned through the wrapper
//! is sent as an APR file bucket (sendfile/mmap in Apache's core output
//! filter), from the file's current position.
use super::request::{lock, RequestCtx};
use super::response::SendError;
use crate::apache::{sys, SendPtr};
use pyo3::prelude::*;
use std::ffi::c_void;
use std::sync::Arc;

extern "C" fn close_fd(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: registered with a descriptor we dup'ed and own.
    unsafe { libc::close(data as usize as i32) };
    sys::APR_SUCCESS as sys::apr_status_t
}

/// The (fd, offset, length) to send if `filelike` is a regular file.
fn file_range(filelike: &Bound<'_, PyAny>) -> Option<(i32, i64, u64)> {
    let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
    let pos: i64 = filelike.call_method0("tell").ok()?.extract().ok()?;
    // SAFETY: fstat on a descriptor the application says it owns; a zeroed
    // stat buffer is valid for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only writes into `st`; a bad fd just fails.
    if unsafe { libc::fstat(fd, &mut st) } != 0
        || (st.st_mode & libc::S_IFMT) != libc::S_IFREG
        || pos < 0
    {
        return None;
    }
    Some((fd, pos, (st.st_size - pos).max(0) as u64))
}

/// Sends `wrapper.filelike` as a file bucket plus EOS. None: not a regular
/// file (or the response already used write()); the caller iterates instead.
pub fn try_send(
    py: Python<'_>,
    ctx: &Arc<RequestCtx>,
    wrapper: &Bound<'_, PyAny>,
) -> Option<Result<(), SendError>> {
    if lock(&ctx.output).write_used {
        return None;
    }
    let filelike = wrapper.getattr("filelike").ok()?;
    let (fd, offset, len) = file_range(&filelike)?;
    let r = lock(&ctx.output).request();
    if r.is_null() {
        return Some(Err(SendError::Finished));
    }
    // A duplicate descriptor, owned by the request pool: Apache may still be
    // writing the file after the application closed its file object.
    // SAFETY: fd is open (fstat succeeded); r->pool is live.
    let file = unsafe {
        let mut dupfd = libc::dup(fd);
        if dupfd < 0 {
            return None;
        }
        let mut file: *mut sys::apr_file_t = std::ptr::null_mut();
        if sys::apr_os_file_put(&mut file, &mut dupfd, sys::APR_FOPEN_READ, (*r).pool)
            != sys::APR_SUCCESS
        {
            libc::close(dupfd);
            return None;
        }
        sys::apr_pool_cleanup_register(
            (*r).pool,
            dupfd as usize as *mut c_void,
            Some(close_fd),
            Some(sys::apr_pool_cleanup_null),
        );
        SendPtr(file)
    };
    let ctx = ctx.clone();
    // SAFETY: the file stays open until r->pool's cleanup runs.
    Some(py.detach(move || {
        let file = file;
        // SAFETY: the file stays open until r->pool's cleanup runs.
        unsafe { lock(&ctx.output).send_file(file.0, offset, len) }
    }))
}
