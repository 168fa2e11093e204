//! Apache hooks for embedded mode: WSGIScriptAlias translation and the
//! `wsgi-script` content handler, which runs the WSGI core over an
//! `ApacheTransport`.
use super::request::{self, Decided};
use super::routing;
use super::transport::ApacheTransport;
use crate::apache::{self, log, sys, table};
use crate::config::{DirConfig, GroupFacts, GroupSpec, MapHead, ServerConfig};
use crate::python::context;
use crate::wsgi::app::{self, NoResponse};
use crate::wsgi::exchange::Exchange;
use crate::wsgi::head::Target;
use crate::wsgi::script;
use std::ffi::CStr;

const HANDLER: &CStr = c"wsgi-script";
const NOTE_ALIASED: &CStr = c"alias-forced-type";
pub(super) const NOTE_CALLABLE: &CStr = c"mod_wsgi.callable_object";
pub(super) const NOTE_PASS_AUTH: &CStr = c"mod_wsgi.pass_authorization";
pub(super) const NOTE_PROCESS_GROUP: &CStr = c"mod_wsgi.process_group";
pub(super) const NOTE_APPLICATION_GROUP: &CStr = c"mod_wsgi.application_group";

pub(super) unsafe fn set_note(r: *mut sys::request_rec, key: &CStr, value: &str) {
    // SAFETY: r is live; APR copies both strings.
    unsafe {
        table::add(
            (*r).notes,
            (*r).pool,
            key.to_bytes(),
            value.as_bytes(),
            table::Mode::Set,
        )
    }
}

/// translate_name: maps URLs under a WSGIScriptAlias to the script file (plus
/// the remaining path, which Apache's directory walk turns into PATH_INFO).
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe fn translate(r: *mut sys::request_rec) -> i32 {
    // SAFETY: our server config lives in r->server's module config and is
    // immutable once the configuration is read.
    let srv = unsafe { &*(sys::wsgi_rs_server_config((*r).server) as *const ServerConfig) };
    if srv.aliases.is_empty() {
        return sys::DECLINED;
    }
    // SAFETY: r->uri is NUL-terminated or NULL.
    let Some(uri) = (unsafe { apache::cbytes((*r).uri) }) else {
        return sys::DECLINED;
    };
    if !uri.is_empty() && uri[0] != b'/' {
        return sys::DECLINED;
    }
    for alias in &srv.aliases {
        // SAFETY: r->pool is live.
        let Some(filename) = (unsafe { alias.translate(uri, (*r).pool) }) else {
            continue;
        };
        // SAFETY: r is live; strings are copied into r->pool.
        unsafe {
            (*r).filename = apache::pstrdup((*r).pool, &filename);
            (*r).handler = HANDLER.as_ptr();
            set_note(r, NOTE_ALIASED, "wsgi-script");
            let o = &alias.options;
            if let Some(c) = &o.callable_object {
                set_note(r, NOTE_CALLABLE, c);
            }
            if let Some(g) = &o.process_group {
                set_note(r, NOTE_PROCESS_GROUP, g);
            }
            if let Some(g) = &o.application_group {
                set_note(r, NOTE_APPLICATION_GROUP, &g.describe());
            }
            if let Some(p) = o.pass_authorization {
                set_note(r, NOTE_PASS_AUTH, if p { "1" } else { "0" });
            }
        }
        return sys::OK;
    }
    sys::DECLINED
}

/// Refuses what must not reach the script: no ExecCGI, no file, a
/// directory, refused PATH_INFO. For a WSGIHandlerScript (`handler`) only
/// the PATH_INFO check applies, as in mod_wsgi: the resource need not
/// exist. Err is the handler's status.
unsafe fn check_target(r: *mut sys::request_rec, handler: bool) -> Result<(), i32> {
    // mod_wsgi 6's lines: "[script <r->filename>] WSGI0134: ...".
    let refuse = |msg: &str, status| {
        // SAFETY: r is live.
        unsafe { log::script_rerror(r, log::ERR, 0, msg) };
        Err(status)
    };
    // SAFETY: r and its notes, finfo and path_info are live.
    unsafe {
        let aliased = table::get((*r).notes, NOTE_ALIASED) == Some(b"wsgi-script");
        if !handler && !aliased && (sys::ap_allow_options(r) & sys::OPT_EXECCGI) == 0 {
            return refuse(
                "WSGI0134: Options ExecCGI is off in this directory.",
                sys::HTTP_FORBIDDEN,
            );
        }
        match (*r).finfo.filetype {
            _ if handler => {}
            t if t == sys::apr_filetype_e_APR_NOFILE => {
                let msg = "WSGI0135: Target WSGI script not found or unable to stat.";
                return refuse(msg, sys::HTTP_NOT_FOUND);
            }
            t if t == sys::apr_filetype_e_APR_DIR => {
                let msg = "WSGI0136: Attempt to invoke directory as WSGI application.";
                return refuse(msg, sys::HTTP_FORBIDDEN);
            }
            _ => {}
        }
        let path_info = apache::cbytes((*r).path_info).unwrap_or(b"");
        if !path_info.is_empty() && (*r).used_path_info == sys::AP_REQ_REJECT_PATH_INFO {
            let msg = "WSGI0137: AcceptPathInfo off disallows user's path.";
            return refuse(msg, sys::HTTP_NOT_FOUND);
        }
    }
    Ok(())
}

/// Request bodies: Transfer-Encoding may only be chunked (501), chunked
/// bodies need WSGIChunkedRequest On (411) and no Content-Length (400);
/// then the body is set up for reading. The checks, their order and their
/// lines are mod_wsgi 6's.
unsafe fn setup_body(r: *mut sys::request_rec, dir: &DirConfig) -> Result<(), i32> {
    let refuse = |msg: &str, status| {
        // SAFETY: r is live.
        unsafe { log::script_rerror(r, log::ERR, 0, msg) };
        Err(status)
    };
    // SAFETY: r and its headers are live.
    unsafe {
        if let Some(te) = table::get((*r).headers_in, c"Transfer-Encoding") {
            if !te.eq_ignore_ascii_case(b"chunked") {
                let msg = format!(
                    "WSGI0138: Unexpected value for Transfer-Encoding of '{}' supplied. Only 'chunked' supported.",
                    String::from_utf8_lossy(te)
                );
                return refuse(&msg, sys::HTTP_NOT_IMPLEMENTED);
            }
            if !dir.chunked_request() {
                let msg = "WSGI0139: Request requires chunked transfer encoding, but support for chunked transfer encoding has not been enabled.";
                return refuse(msg, sys::HTTP_LENGTH_REQUIRED);
            }
            if table::get((*r).headers_in, c"Content-Length").is_some() {
                let msg = "WSGI0140: Unexpected Content-Length header supplied where Transfer-Encoding was specified as 'chunked'.";
                return refuse(msg, sys::HTTP_BAD_REQUEST);
            }
        }
        match sys::ap_setup_client_block(r, sys::REQUEST_CHUNKED_DECHUNK) {
            sys::OK => Ok(()),
            status => Err(status),
        }
    }
}

/// What the handler decided from the configuration and the URL.
pub(super) unsafe fn decide(
    r: *mut sys::request_rec,
    dir: &DirConfig,
    script: &str,
    resource: Option<&str>,
) -> Decided {
    // SAFETY: r and its notes, uri and path_info are live.
    unsafe {
        let callable =
            match apache::cstring_lossy(sys::apr_table_get((*r).notes, NOTE_CALLABLE.as_ptr())) {
                Some(c) => c,
                None => dir.callable_object().to_string(),
            };
        let pass_authorization = match table::get((*r).notes, NOTE_PASS_AUTH) {
            Some(v) => v == b"1",
            None => dir.pass_authorization(),
        };
        let uri = apache::cbytes((*r).uri).unwrap_or(b"");
        let path_info = apache::cbytes((*r).path_info).unwrap_or(b"");
        let cpath = std::ffi::CString::new(path_info).unwrap_or_default();
        let start = sys::ap_find_path_info((*r).uri, cpath.as_ptr()).max(0) as usize;
        let (script_name, path_info) = request::split_script_name(uri, start, path_info);
        let application_group = application_group(r, dir, &script_name);
        Decided {
            target: Target {
                script: script.to_string(),
                // A handler script is not r->filename: stat it.
                mtime: match resource {
                    Some(_) => crate::embedded::child::mtime_of(script),
                    None => (*r).finfo.mtime,
                },
                resource: resource.map(str::to_string),
                callable: request::expand_env(r, &callable),
                script_reloading: dir.script_reloading(),
                application_group,
            },
            script_name,
            path_info,
            pass_authorization,
            head_as_get: head_as_get(r, dir),
            enable_sendfile: dir.enable_sendfile(),
            ignore_activity: dir.ignore_activity(),
            trusted_proxy_headers: dir.trusted_proxy_headers.clone().unwrap_or_default(),
            trusted_proxies: dir.trusted_proxies.clone(),
        }
    }
}

/// WSGIMapHEADToGET: whether this HEAD request reaches the application as
/// GET (Apache still sends no body: r->header_only stays set). On: always.
/// Auto (the default): when an output filter that may change the content
/// or its headers is on the request, so that it sees the body a GET would
/// produce and the HEAD response's headers (Content-Length,
/// Content-Encoding, ETag...) match GET's. mod_wsgi's rule, kept exactly:
/// the first output filter's type is below AP_FTYPE_PROTOCOL (a resource
/// or content-set filter: DEFLATE, INCLUDES, AddOutputFilterByType's
/// mod_filter harness, mod_headers' FIXUP_HEADERS_OUT...); see
/// wsgi_rs_content_filter_present. It is looked at here, in the content
/// handler, as mod_wsgi does: filters from SetOutputFilter,
/// AddOutputFilterByType (mod_filter's harness, which picks its provider
/// later, by content type) and mod_headers are inserted by the
/// insert_filter hook, which runs just before the handler. A filter added
/// only once the response starts (AddOutputFilter by a later handler, a
/// filter inserting another) is not seen. Decided in the Apache child for
/// daemon mode as well: the method travels to the daemon in the request
/// head, so both modes behave the same.
unsafe fn head_as_get(r: *mut sys::request_rec, dir: &DirConfig) -> bool {
    // SAFETY: r and its output filter chain are live (caller).
    unsafe {
        sys::wsgi_rs_is_head(r) != 0
            && match dir.map_head_to_get() {
                MapHead::Off => false,
                MapHead::On => true,
                MapHead::Auto => sys::wsgi_rs_content_filter_present(r) != 0,
            }
    }
}

/// The application group (interpreter) the request runs in: the alias's
/// application-group=, else WSGIApplicationGroup (default %{RESOURCE}),
/// expanded for this request.
unsafe fn application_group(
    r: *mut sys::request_rec,
    dir: &DirConfig,
    script_name: &[u8],
) -> String {
    // SAFETY: r, its notes and server are live.
    unsafe {
        let noted = apache::cstring_lossy(sys::apr_table_get(
            (*r).notes,
            NOTE_APPLICATION_GROUP.as_ptr(),
        ))
        .and_then(|g| GroupSpec::parse(&g).ok());
        expand_group(
            r,
            noted.as_ref().unwrap_or(dir.application_group()),
            script_name,
        )
    }
}

/// An application group as configured, expanded for this request.
pub(super) unsafe fn expand_group(
    r: *mut sys::request_rec,
    spec: &GroupSpec,
    script_name: &[u8],
) -> String {
    // SAFETY: r and its server are live (caller).
    unsafe {
        if let GroupSpec::Global | GroupSpec::Literal(_) = spec {
            return spec.expand_static();
        }
        let server_name = apache::cstring_lossy((*(*r).server).server_hostname).unwrap_or_default();
        let host = apache::cstring_lossy((*r).hostname);
        let script_name = String::from_utf8_lossy(script_name);
        let env = |name: &str| request::env_value(r, name);
        spec.expand(&GroupFacts {
            server_name: &server_name,
            host: host.as_deref(),
            port: sys::ap_get_server_port(r),
            script_name: &script_name,
            // The main server's WSGICaseSensitivity (vhosts inherit it).
            case_sensitive: (*(sys::wsgi_rs_server_config((*r).server) as *const ServerConfig))
                .python
                .case_sensitive(),
            env: &env,
        })
    }
}

/// The daemon process group the request goes to ("" for embedded): the
/// alias's process-group=, else WSGIProcessGroup, with %{ENV:name} expanded.
unsafe fn process_group(r: *mut sys::request_rec, dir: &DirConfig) -> String {
    // SAFETY: r and its notes are live.
    let configured = unsafe {
        apache::cstring_lossy(sys::apr_table_get((*r).notes, NOTE_PROCESS_GROUP.as_ptr()))
    }
    .unwrap_or_else(|| dir.process_group().to_string());
    // SAFETY: r is live.
    let group = unsafe { request::expand_env(r, &configured) };
    if group == "%{GLOBAL}" {
        String::new()
    } else {
        group
    }
}

/// Hands the request to daemon process group `group`, which must be
/// defined globally or in a virtual host with this request's ServerName.
unsafe fn delegate(
    r: *mut sys::request_rec,
    dir: &DirConfig,
    filename: String,
    resource: Option<&str>,
    group: &str,
) -> i32 {
    let daemons = crate::daemon::supervisor::current();
    // SAFETY: r and its server are live.
    let server_name = unsafe { apache::cstring_lossy((*(*r).server).server_hostname) };
    // mod_wsgi's wording and numbering for each refusal (500 for all).
    let refuse = |msg: String| {
        // SAFETY: r is live.
        unsafe { log::script_rerror(r, log::ERR, 0, &msg) };
        sys::HTTP_INTERNAL_SERVER_ERROR
    };
    if !dir.may_use(group) {
        return refuse(format!("WSGI0149: Daemon process called '{group}' cannot be accessed by this WSGI application as not a member of allowed groups."));
    }
    let Some(d) = daemons.filter(|d| !d.groups.is_empty()) else {
        return refuse(format!(
            "WSGI0150: No WSGI daemon process called '{group}' has been configured."
        ));
    };
    let Some(g) = d.group(group).cloned() else {
        return refuse(format!(
            "WSGI0151: No WSGI daemon process called '{group}' has been configured."
        ));
    };
    if g.def.server_name.is_some() && g.def.server_name != server_name {
        return refuse(format!(
            "WSGI0152: Daemon process called '{group}' cannot be accessed by this WSGI application."
        ));
    }
    if let Err(why) = crate::daemon::policy::check_script(&g.def, &filename) {
        // SAFETY: r is live.
        unsafe { log::script_rerror(r, log::ERR, 0, &why) };
        return sys::HTTP_FORBIDDEN;
    }
    // SAFETY: r is live for this call.
    unsafe {
        let head = request::head(r, decide(r, dir, &filename, resource));
        crate::metrics::tag(r, group, &head.target.application_group);
        crate::daemon::proxy::handle(r, &d, &g, &head, dir.error_override())
    }
}

/// The content handler for `wsgi-script` (and `application/x-httpd-wsgi`)
/// and for the names WSGIHandlerScript registers.
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe fn handle(r: *mut sys::request_rec) -> i32 {
    // SAFETY: r is live while Apache runs this handler.
    let handler = unsafe { apache::cbytes((*r).handler) }.unwrap_or(b"");
    // SAFETY: our per-directory record, immutable once merged.
    let dir = unsafe { &*(sys::wsgi_rs_dir_config(r) as *const DirConfig) };
    let handler_script = match routing::handler_script(handler, dir) {
        Ok(h) => h,
        Err(status) => return status,
    };
    // SAFETY: as above.
    let filename = unsafe { apache::cstring_lossy((*r).filename) }.unwrap_or_default();
    // SAFETY: r is live.
    let checked =
        unsafe { check_target(r, handler_script.is_some()).and_then(|()| setup_body(r, dir)) };
    if let Err(status) = checked {
        return status;
    }
    // A handler script runs for the resource r->filename names.
    let (script, resource) = match handler_script {
        Some(h) => {
            // SAFETY: r is live.
            unsafe { routing::note_handler_script(r, h) };
            (h.path.clone(), Some(filename.as_str()))
        }
        None => (filename.clone(), None),
    };
    if let Some(d) = &dir.scripts.dispatch {
        // SAFETY: r is live.
        if let Err(status) = unsafe { routing::dispatch(r, dir, d, &script, resource) } {
            return status;
        }
    }
    // SAFETY: r is live.
    let group = unsafe { process_group(r, dir) };
    if !group.is_empty() {
        // SAFETY: r is live.
        return unsafe { delegate(r, dir, script, resource, &group) };
    }
    if crate::daemon::supervisor::current().is_some_and(|d| d.restrict_embedded) {
        // SAFETY: r is live.
        unsafe {
            log::script_rerror(
                r,
                log::ERR,
                0,
                "WSGI0143: Embedded mode of mod_wsgi disabled by runtime configuration.",
            )
        };
        return sys::HTTP_INTERNAL_SERVER_ERROR;
    }
    // SAFETY: r is live; the transport is used only during this call.
    let (mut head, mut transport) = unsafe {
        (
            request::head(r, decide(r, dir, &script, resource)),
            ApacheTransport::new(r),
        )
    };
    // WSGIPassApacheRequest: valid for this call only (see wsgi::request_rec).
    if dir.scripts.pass_apache_request() {
        head.request_rec = r as usize;
    }
    // SAFETY: r is live.
    unsafe { crate::metrics::tag(r, "", &head.target.application_group) };
    let interp = match crate::embedded::child::embedded_interp(&head.target.application_group) {
        Ok(i) => i,
        Err(why) => {
            // mod_wsgi 6's line, then ours with the reason.
            let msg = if crate::python::runtime::init_error().is_some() {
                format!("[script {filename}] WSGI0210: Embedded mode of mod_wsgi cannot be used as Python was not initialised in this process.")
            } else {
                format!(
                    "[script {filename}] WSGI0087: Unable to acquire {} for WSGI request handler in {}.",
                    context::interp_name(&head.target.application_group),
                    context::process()
                )
            };
            let detail = format!("Cannot serve WSGI script '{}': {why}", head.target.script);
            // SAFETY: r is live.
            unsafe {
                log::rerror(r, log::ERR, &msg);
                log::rerror(r, log::ERR, &detail);
            }
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
    };
    let ex = Exchange::new(interp, &head.target.script, head.body_length);
    let served = ex.lend(&mut transport, || {
        interp.run(|py| {
            // The script must be reloaded (reload_required() said yes, or
            // its __mtime__ is gone): embedded, the module is executed again.
            if app::must_reload(py, &ex, &head) {
                script::forget(py, interp.objects(), &head.target.script);
            }
            app::serve(py, &ex, &head)
        })
    });
    match served {
        Some(Ok(())) => {
            // The GIL is released: pass what the application left staged.
            if !transport.complete() {
                let msg = app::client_gone(&head.target.script);
                // SAFETY: r is live.
                unsafe { log::rerror(r, log::INFO, &msg) };
            }
            sys::OK
        }
        Some(Err(NoResponse::NotFound)) => sys::HTTP_NOT_FOUND,
        Some(Err(NoResponse::Error)) | None => sys::HTTP_INTERNAL_SERVER_ERROR,
    }
}
