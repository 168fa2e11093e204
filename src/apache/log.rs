//! Error-log output. Request messages carry the client address (ap_log_rerror).
use super::sys;
use std::ffi::CString;

pub use sys::{
    APLOG_DEBUG as DEBUG, APLOG_ERR as ERR, APLOG_INFO as INFO, APLOG_WARNING as WARNING,
};

fn c(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs replaced")
}

/// Logs against a request (`[client ip:port]` prefix).
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn rerror(r: *const sys::request_rec, level: i32, msg: &str) {
    let m = c(msg);
    // SAFETY: r is live; the shim formats with "%s".
    unsafe { sys::wsgi_rs_log_rerror(r, level, 0, m.as_ptr()) }
}

/// Logs against a server (no request context). NULL means the main server.
///
/// # Safety
/// `s` must be NULL or a live server record.
pub unsafe fn error(s: *const sys::server_rec, level: i32, msg: &str) {
    let m = c(msg);
    // SAFETY: ap_log_error accepts a NULL server (main server's log).
    unsafe { sys::wsgi_rs_log_error(s, level, 0, m.as_ptr()) }
}

/// Logs every line of `text` separately (tracebacks), like mod_wsgi.
///
/// # Safety
/// `r` must be NULL or a live request.
pub unsafe fn lines(r: *const sys::request_rec, level: i32, text: &str) {
    for line in text.trim_end_matches('\n').split('\n') {
        // SAFETY: forwarded contract.
        unsafe {
            if r.is_null() {
                error(std::ptr::null(), level, line)
            } else {
                rerror(r, level, line)
            }
        }
    }
}
