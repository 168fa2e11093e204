//! mod_wsgi_rs: an Apache httpd 2.4 module that hosts Python WSGI
//! applications, compatible with mod_wsgi's configuration.
//!
//! This file holds only the `extern "C"` entry points that the C shim
//! (c_shim/mod_wsgi_rs.c) registers with Apache. Each one catches panics, so
//! a bug in Rust becomes a logged 500 instead of a crashed child.

mod apache;
mod auth;
mod config;
mod daemon;
mod embedded;
mod metrics;
mod python;
mod telemetry;
mod wsgi;

use apache::{log, sys};
use config::{DirConfig, ServerConfig};
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic becomes its message.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// Runs `f`, turning a panic into `fallback` (and a log line).
fn guard<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    caught(f).unwrap_or_else(|msg| {
        let msg = format!("mod_wsgi_rs: internal error in {what}: {msg}");
        log::server(wsgi::transport::Level::Error, &msg);
        fallback
    })
}

/// Runs `f`, which must produce a configuration record: Apache dereferences
/// what it gets, so there is no fallback for a panic but stopping the process
/// (at configuration time, with the reason on stderr and in the log).
fn must<T>(what: &str, f: impl FnOnce() -> T) -> T {
    caught(f).unwrap_or_else(|msg| {
        let msg = format!("mod_wsgi_rs: cannot create the configuration ({what}): {msg}");
        eprintln!("{msg}");
        log::server(wsgi::transport::Level::Error, &msg);
        std::process::abort()
    })
}

/// Puts `value` in `pool`, dropped when the pool is cleared.
unsafe fn pool_box<T>(pool: *mut sys::apr_pool_t, value: T) -> *mut c_void {
    extern "C" fn drop_box<T>(p: *mut c_void) -> sys::apr_status_t {
        // SAFETY: registered below with a pointer from Box::into_raw::<T>.
        drop(unsafe { Box::from_raw(p as *mut T) });
        sys::APR_SUCCESS as sys::apr_status_t
    }
    let p = Box::into_raw(Box::new(value)) as *mut c_void;
    // SAFETY: pool is live; the cleanup frees the box exactly once.
    unsafe {
        sys::apr_pool_cleanup_register(
            pool,
            p,
            Some(drop_box::<T>),
            Some(sys::apr_pool_cleanup_null),
        )
    };
    p
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_create_server_config(
    p: *mut sys::apr_pool_t,
    _s: *mut sys::server_rec,
) -> *mut c_void {
    // SAFETY: Apache passes a live configuration pool.
    must("create_server_config", || unsafe {
        pool_box(p, ServerConfig::default())
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_merge_server_config(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    must("merge_server_config", || {
        // SAFETY: both are records from wsgi_rs_create_server_config.
        let merged = unsafe {
            ServerConfig::merge(
                &*(base as *const ServerConfig),
                &*(add as *const ServerConfig),
            )
        };
        // SAFETY: p is the live configuration pool Apache passed in.
        unsafe { pool_box(p, merged) }
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_create_dir_config(
    p: *mut sys::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    // SAFETY: Apache passes a live configuration pool.
    must("create_dir_config", || unsafe {
        pool_box(p, DirConfig::default())
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_merge_dir_config(
    p: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    must("merge_dir_config", || {
        // SAFETY: both are records from wsgi_rs_create_dir_config.
        let merged =
            unsafe { DirConfig::merge(&*(base as *const DirConfig), &*(add as *const DirConfig)) };
        // SAFETY: p is the live configuration pool Apache passed in.
        unsafe { pool_box(p, merged) }
    })
}

/// Every directive. A returned string is Apache's syntax error message.
///
/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_directive(
    cmd: *mut sys::cmd_parms,
    mconfig: *mut c_void,
    args: *const c_char,
) -> *const c_char {
    let result = guard(
        "directive",
        Err("mod_wsgi_rs: internal error".to_string()),
        || {
            // SAFETY: Apache passes a live cmd_parms and our per-directory record.
            unsafe { config::directives::apply(cmd, mconfig, args) }
        },
    );
    match result {
        Ok(()) => std::ptr::null(),
        Err(msg) => {
            let c = CString::new(msg.replace('\0', "")).unwrap_or_default();
            // SAFETY: cmd->pool is live; Apache prints the copy.
            unsafe { sys::apr_pstrdup((*cmd).pool, c.as_ptr()) }
        }
    }
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_post_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> i32 {
    guard("post_config", sys::HTTP_INTERNAL_SERVER_ERROR, || {
        let component = CString::new(format!(
            "mod_wsgi_rs/{} Python/{}",
            env!("CARGO_PKG_VERSION"),
            env!("WSGI_RS_PY_VERSION")
        ))
        .expect("no NUL");
        // SAFETY: pconf is live; Apache copies the string into it.
        unsafe { sys::ap_add_version_component(pconf, component.as_ptr()) };
        // Daemon processes are forked last, so they see the whole banner.
        // SAFETY: Apache passes its live configuration pool and main server.
        if let Err(e) = unsafe { daemon::supervisor::start(pconf, s) } {
            eprintln!("mod_wsgi_rs: {e}");
            log::server(wsgi::transport::Level::Error, &e);
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
        sys::OK
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    // SAFETY: Apache passes the live child pool and the main server.
    guard("child_init", (), || unsafe {
        embedded::child::child_init(pchild, s)
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_translate_name(r: *mut sys::request_rec) -> i32 {
    // SAFETY: Apache passes a live request.
    guard("translate_name", sys::DECLINED, || unsafe {
        embedded::handler::translate(r)
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_handler(r: *mut sys::request_rec) -> i32 {
    // SAFETY: Apache passes a live request.
    guard("handler", sys::HTTP_INTERNAL_SERVER_ERROR, || unsafe {
        embedded::handler::handle(r)
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_access_checker(r: *mut sys::request_rec) -> i32 {
    // SAFETY: Apache passes a live request.
    guard("access_checker", sys::HTTP_FORBIDDEN, || unsafe {
        auth::access::check(r)
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_check_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> sys::authn_status {
    let error = sys::authn_status_AUTH_GENERAL_ERROR;
    // SAFETY: Apache passes a live request and NUL-terminated strings.
    guard("check_password", error, || unsafe {
        auth::authn::check_password(r, user, password)
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_get_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> sys::authn_status {
    let error = sys::authn_status_AUTH_GENERAL_ERROR;
    // SAFETY: Apache passes a live request, NUL-terminated strings and the hash's slot.
    guard("get_realm_hash", error, || unsafe {
        auth::authn::get_realm_hash(r, user, realm, rethash)
    })
}

/// # Safety
/// Called only by Apache, through the shim, with the live records its hook passes.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_check_authorization(
    r: *mut sys::request_rec,
    require_args: *const c_char,
    _parsed: *const c_void,
) -> sys::authz_status {
    let error = sys::authz_status_AUTHZ_GENERAL_ERROR;
    // SAFETY: Apache passes a live request and the Require line's arguments.
    guard("check_authorization", error, || unsafe {
        auth::authz::check(r, require_args)
    })
}
