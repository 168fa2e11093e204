//! Embedded mode: Python inside Apache's own children, started in child_init.
use crate::apache::{log, sys};
use crate::config::{alias::Matcher, GroupSpec, ServerConfig};
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

/// How long an exiting child waits for the applications' non-daemon
/// threads and requests before it runs their atexit callbacks anyway.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

extern "C" fn child_exit(_: *mut c_void) -> sys::apr_status_t {
    crate::daemon::proxy::child_exiting();
    crate::telemetry::stopping("shutdown");
    crate::telemetry::stopped();
    let deadline = std::time::Instant::now() + EXIT_WAIT;
    let _ = std::panic::catch_unwind(|| runtime::shutdown(deadline, ""));
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

/// Apache's version as mod_wsgi reports it ("Apache/2.4.62").
pub fn apache_version() -> String {
    format!(
        "Apache/{}.{}.{}",
        sys::AP_SERVER_MAJORVERSION_NUMBER,
        sys::AP_SERVER_MINORVERSION_NUMBER,
        sys::AP_SERVER_PATCHLEVEL_NUMBER
    )
}

/// Python is started in child_init, unless daemon process groups exist:
/// then only when the first request runs embedded (never, when every
/// application is delegated), and never with WSGIRestrictEmbedded On.
///
/// # Safety
/// Called from Apache's child_init with the live child pool and main server.
pub unsafe fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    crate::wsgi::metrics_api::process_started(false);
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

/// The interpreter of application group `group` for an embedded request,
/// with Python started now if it was deferred.
pub fn embedded_interp(group: &str) -> Result<&'static Interp, String> {
    if Interp::by_name("").is_none() {
        let _once = INIT.lock().unwrap_or_else(|e| e.into_inner());
        if Interp::main().is_none() && runtime::init_error().is_none() {
            // SAFETY: ap_server_conf is this generation's live main server.
            unsafe { start_python(sys::ap_server_conf) };
        }
    }
    runtime::interpreter(group)
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
            "Initializing Python runtime in embedded mode.",
        )
    };
    let info = server_info();
    let identity = crate::telemetry::Identity {
        process_group: String::new(),
        daemon: false,
        threads: info.threads_per_process.max(1) as usize,
        mpm_name: info.mpm_name.clone(),
        apache_version: apache_version(),
    };
    match runtime::initialize(&cfg.python, info, None) {
        Ok(_) => {
            crate::telemetry::start(identity);
            preload(s, "")
        }
        // Our reason, then mod_wsgi 6's line. SAFETY: s is live.
        Err(e) => unsafe {
            log::error(s, log::ERR, &format!("mod_wsgi_rs: {e}"));
            log::error(
                s,
                log::CRIT,
                "WSGI0001: Python initialisation failed in Apache child process; Python based handlers will not be available.",
            );
        },
    }
}

/// Loads the scripts of aliases that name both groups literally and whose
/// process group is `process_group` ("" in Apache's children), and the
/// WSGIImportScript files of that group, each in its application group's
/// interpreter, so the first request does not pay for them.
pub fn preload(s: *mut sys::server_rec, process_group: &str) {
    let mut server = s;
    while !server.is_null() {
        // SAFETY: the server list and each server's config are live in the child.
        let cfg = unsafe { &*(sys::wsgi_rs_server_config(server) as *const ServerConfig) };
        for alias in &cfg.aliases {
            let o = &alias.options;
            let group = match &o.application_group {
                Some(GroupSpec::Global) => "",
                Some(GroupSpec::Literal(name)) => name.as_str(),
                _ => continue,
            };
            if matches!(alias.matcher, Matcher::Prefix(_))
                && o.process_group.as_deref() == Some(process_group)
            {
                load_script(group, &alias.target);
            }
        }
        // SAFETY: server is live; `next` links the virtual hosts.
        server = unsafe { (*server).next };
    }
    let imports = crate::daemon::supervisor::current().map(|d| d.imports.clone());
    for import in imports.unwrap_or_default() {
        if import.process_group == process_group {
            load_script(&import.application_group, &import.path);
        }
    }
}

/// A file's modification time in microseconds (0 if it cannot be read).
pub(crate) fn mtime_of(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Loads a script as its module (mod_wsgi's `_mod_wsgi_<md5>`) in the
/// interpreter of `group`, logging a failure with its traceback.
fn load_script(group: &str, path: &str) {
    let interp = match runtime::interpreter(group) {
        Ok(i) => i,
        Err(e) => {
            return log::server(
                crate::wsgi::transport::Level::Error,
                &format!("mod_wsgi_rs: {e}"),
            )
        }
    };
    let mtime = mtime_of(path);
    interp.run(|py| {
        if let Err(e) = crate::wsgi::script::module(py, interp, path, mtime, true) {
            e.log(py, interp, None, path);
        }
    });
}
