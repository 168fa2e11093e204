//! Error-log output. Request messages carry the client address (ap_log_rerror).
use super::sys;
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::wsgi::transport::Level;

pub use sys::{APLOG_ERR as ERR, APLOG_INFO as INFO, APLOG_WARNING as WARNING};

/// Apache's level for a core log level.
pub fn level(level: Level) -> i32 {
    match level {
        Level::Crit => sys::APLOG_CRIT,
        Level::Error => ERR,
        Level::Warning => WARNING,
        Level::Info => INFO,
        Level::Debug => sys::APLOG_DEBUG,
    }
}

/// The server whose error log takes this process's own lines: the main
/// server, or the virtual host a daemon process group was defined in.
static PROCESS_SERVER: AtomicPtr<sys::server_rec> = AtomicPtr::new(std::ptr::null_mut());

/// Sends this process's own lines to `s`'s error log (a daemon process
/// of a group defined in a virtual host, as mod_wsgi does).
///
/// # Safety
/// `s` must be a server record that lives as long as the process.
pub unsafe fn set_process_server(s: *mut sys::server_rec) {
    PROCESS_SERVER.store(s, Ordering::SeqCst);
}

/// Points this process's standard error at `s`'s own error log, when it
/// has one (a file or a piped logger; not syslog): what C code or Python
/// writes to descriptor 2 lands with the server's other lines, as in
/// mod_wsgi's daemon processes.
///
/// # Safety
/// `s` must be NULL or a server record that outlives the call.
pub unsafe fn redirect_stderr(s: *mut sys::server_rec) {
    // SAFETY: s and ap_server_conf are live server records (contract);
    // apr_os_file_get only reads the file's descriptor, which dup2 copies.
    unsafe {
        if s.is_null() || (*s).error_log.is_null() {
            return;
        }
        let main = sys::ap_server_conf;
        if !main.is_null() && (*main).error_log == (*s).error_log {
            return;
        }
        let mut fd: sys::apr_os_file_t = -1;
        if sys::apr_os_file_get(&mut fd, (*s).error_log) == sys::APR_SUCCESS && fd > 2 {
            libc::dup2(fd, 2);
        }
    }
}

/// Logs to this process's error log (no request context). Thread-safe.
pub fn server(lvl: Level, msg: &str) {
    server_status(lvl, 0, msg)
}

/// As `server`, with an OS error number shown as Apache's `(n)text: `
/// prefix (0: none), as mod_wsgi logs its system call failures.
pub fn server_status(lvl: Level, status: i32, msg: &str) {
    let own = PROCESS_SERVER.load(Ordering::SeqCst);
    // SAFETY: `own` is NULL or a server for the life of the process;
    // ap_server_conf is the main server once the configuration is read
    // (NULL before: Apache then logs to stderr), and outlives callers.
    unsafe {
        let s = if own.is_null() {
            sys::ap_server_conf
        } else {
            own
        };
        let m = c(msg);
        // SAFETY: s is NULL or live (above); the shim formats with "%s".
        sys::wsgi_rs_log_error(s, level(lvl), status.max(0), m.as_ptr())
    }
}

fn c(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs replaced")
}

/// Logs to this process's error log with the Python caller's file and line.
pub fn server_at(lvl: Level, msg: &str, site: crate::wsgi::transport::Site<'_>) {
    let Some((file, line)) = site else {
        return server(lvl, msg);
    };
    let own = PROCESS_SERVER.load(Ordering::SeqCst);
    let (m, f) = (c(msg), c(file));
    // SAFETY: as in `server`; the strings outlive the call.
    unsafe {
        let s = if own.is_null() {
            sys::ap_server_conf
        } else {
            own
        };
        sys::wsgi_rs_log_error_at(f.as_ptr(), line, s, level(lvl), m.as_ptr())
    }
}

/// Logs against a request with the Python caller's file and line.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn rerror_at(
    r: *const sys::request_rec,
    lvl: Level,
    msg: &str,
    site: crate::wsgi::transport::Site<'_>,
) {
    let Some((file, line)) = site else {
        // SAFETY: r is live (the caller's promise).
        return unsafe { rerror(r, level(lvl), msg) };
    };
    let (m, f) = (c(msg), c(file));
    // SAFETY: r is live; the strings outlive the call; the shim formats with "%s".
    unsafe { sys::wsgi_rs_log_rerror_at(f.as_ptr(), line, r, level(lvl), m.as_ptr()) }
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

/// Logs against a request the way mod_wsgi 6 does: `[script <filename>] `
/// before the text when the request has a file name, and `status` (an OS
/// error number, 0 for none) as Apache's `(n)description: ` prefix, so
/// log monitoring written for mod_wsgi matches the line unchanged.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn script_rerror(r: *const sys::request_rec, level: i32, status: i32, msg: &str) {
    // SAFETY: r and its filename are live (contract).
    let m = match unsafe { super::cstring_lossy((*r).filename) } {
        Some(f) => c(&format!("[script {f}] {msg}")),
        None => c(msg),
    };
    // SAFETY: r is live; the shim formats with "%s". APR's status for an OS
    // error on Unix is the errno itself.
    unsafe { sys::wsgi_rs_log_rerror(r, level, status.max(0), m.as_ptr()) }
}

/// An OS error's text as APR gives it ("Connection refused"), without
/// Rust's " (os error N)".
pub fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// An OS error as Apache shows an APR status before a server line's text:
/// `(111)Connection refused` (for lines that carry it in their text).
pub fn os_status(e: &std::io::Error) -> String {
    format!("({}){}", e.raw_os_error().unwrap_or(0), os_text(e))
}
