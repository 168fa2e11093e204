//! Error-log output. Request messages carry the client address (ap_log_rerror).
use super::sys;
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::wsgi::transport::Level;

pub use sys::{APLOG_CRIT as CRIT, APLOG_ERR as ERR, APLOG_INFO as INFO, APLOG_WARNING as WARNING};

/// Apache's level for a core log level.
pub fn level(level: Level) -> i32 {
    match level {
        Level::Error => ERR,
        Level::Warning => WARNING,
        Level::Info => INFO,
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
        error(s, level(lvl), msg)
    }
}

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
