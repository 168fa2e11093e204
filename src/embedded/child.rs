//! Embedded mode: Python inside Apache's own children, started in child_init.
use crate::apache::{log, sys};
use crate::config::{alias::Matcher, ServerConfig};
use crate::python::interp::Interp;
use crate::python::objects::ProcessInfo;
use crate::python::runtime;
use std::ffi::c_void;

fn mpm_query(code: i32) -> i32 {
    let mut v = 0;
    // SAFETY: ap_mpm_query writes one int for these codes.
    unsafe { sys::ap_mpm_query(code, &mut v) };
    v
}

extern "C" fn child_exit(_: *mut c_void) -> sys::apr_status_t {
    crate::daemon::proxy::child_exiting();
    let _ = std::panic::catch_unwind(runtime::shutdown);
    sys::APR_SUCCESS as sys::apr_status_t
}

/// What the interpreter reports about Apache: its MPM's limits and the
/// server's banner and build.
pub fn server_info() -> ProcessInfo {
    let threads = mpm_query(sys::AP_MPMQ_MAX_THREADS).max(1);
    let daemons = mpm_query(sys::AP_MPMQ_MAX_DAEMONS).max(1);
    // SAFETY: these return static strings (or NULL).
    let text =
        |p: *const std::ffi::c_char| unsafe { crate::apache::cstring_lossy(p) }.unwrap_or_default();
    // SAFETY: plain getters of Apache's static server information.
    unsafe {
        ProcessInfo {
            process_group: String::new(),
            multithread: threads != 1,
            multiprocess: daemons != 1,
            max_processes: daemons,
            threads_per_process: threads,
            group_processes: daemons,
            group_threads: threads,
            server_software: text(sys::ap_get_server_banner()),
            server_description: text(sys::ap_get_server_description()),
            mpm_name: text(sys::ap_show_mpm()),
            build_date: text(sys::ap_get_server_built()),
        }
    }
}

/// Python is started in child_init, unless daemon process groups exist:
/// then only when the first request runs embedded (never, when every
/// application is delegated), and never with WSGIRestrictEmbedded On.
///
/// # Safety
/// Called from Apache's child_init with the live child pool and main server.
pub unsafe fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    let daemons = crate::daemon::supervisor::current();
    if let Some(d) = &daemons {
        d.close_listeners();
    }
    // SAFETY: pchild is live; the cleanup runs when the child exits.
    unsafe {
        sys::apr_pool_cleanup_register(
            pchild,
            std::ptr::null(),
            Some(child_exit),
            Some(sys::apr_pool_cleanup_null),
        )
    };
    // Python starts now if a script must be imported here (WSGIImportScript
    // process-group=%{GLOBAL}), else when a request first runs embedded.
    let imports_here = daemons
        .as_ref()
        .is_some_and(|d| d.imports.iter().any(|i| i.process_group.is_empty()));
    if daemons.is_some_and(|d| (!d.groups.is_empty() || d.restrict_embedded) && !imports_here) {
        return;
    }
    let _once = INIT.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: s is the live main server.
    unsafe { start_python(s) };
}

static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The interpreter for embedded requests, started now if it was deferred.
pub fn embedded_interp() -> Option<&'static Interp> {
    if let Some(i) = Interp::main() {
        return Some(i);
    }
    let _once = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if Interp::main().is_none() && runtime::init_error().is_none() {
        // SAFETY: ap_server_conf is this generation's live main server.
        unsafe { start_python(sys::ap_server_conf) };
    }
    Interp::main()
}

/// Starts Python in this child and preloads scripts whose alias names both
/// groups (as mod_wsgi does), so the first request does not pay for them.
unsafe fn start_python(s: *mut sys::server_rec) {
    // SAFETY: s is the live main server; its module config holds our record.
    let cfg = unsafe { &*(sys::wsgi_rs_server_config(s) as *const ServerConfig) };
    // SAFETY: s is live.
    unsafe {
        log::error(
            s,
            log::INFO,
            &format!(
                "mod_wsgi_rs (pid={}): Initializing Python {}.",
                std::process::id(),
                env!("WSGI_RS_PY_VERSION")
            ),
        )
    };
    match runtime::initialize(&cfg.python, server_info()) {
        Ok(interp) => preload(s, interp, ""),
        // SAFETY: s is live.
        Err(e) => unsafe { log::error(s, log::ERR, &format!("mod_wsgi_rs: {e}")) },
    }
}

/// Loads the scripts of aliases that name both groups literally and whose
/// process group is `process_group` ("" in Apache's children), so the
/// first request does not pay for them.
pub fn preload(s: *mut sys::server_rec, interp: &'static Interp, process_group: &str) {
    let mut server = s;
    while !server.is_null() {
        // SAFETY: the server list and each server's config are live in the child.
        let cfg = unsafe { &*(sys::wsgi_rs_server_config(server) as *const ServerConfig) };
        for alias in &cfg.aliases {
            let o = &alias.options;
            let static_group = o.application_group.as_ref().is_some_and(|g| g.is_static());
            if !(matches!(alias.matcher, Matcher::Prefix(_))
                && o.process_group.as_deref() == Some(process_group)
                && static_group)
            {
                continue;
            }
            let path = alias.target.clone();
            let mtime = mtime_of(&path);
            load_script(interp, &path, mtime);
        }
        // SAFETY: server is live; `next` links the virtual hosts.
        server = unsafe { (*server).next };
    }
    let imports = crate::daemon::supervisor::current().map(|d| d.imports.clone());
    for import in imports.unwrap_or_default() {
        if import.process_group == process_group {
            let mtime = mtime_of(&import.path);
            load_script(interp, &import.path, mtime);
        }
    }
}

/// A file's modification time in microseconds (0 if it cannot be read).
fn mtime_of(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Loads a script as its module (mod_wsgi's `_mod_wsgi_<md5>`), logging a
/// failure with its traceback.
fn load_script(interp: &'static Interp, path: &str, mtime: i64) {
    interp.run(|py| {
        if let Err(e) = crate::wsgi::script::module(py, interp.objects(), path, mtime, true) {
            let text = interp.objects().format(py, &e);
            let first = format!("Failed to exec Python script file '{path}'.");
            crate::python::logging::log_error_text(py, &[first], &text);
        }
    });
}
