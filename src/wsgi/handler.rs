//! Apache hooks for embedded mode: WSGIScriptAlias translation and the
//! `wsgi-script` content handler.
use super::app;
use super::environ::RequestInfo;
use crate::apache::{self, log, sys, table};
use crate::config::{DirConfig, ServerConfig};
use crate::python::{interp::Interp, runtime};
use std::ffi::CStr;

const HANDLER: &CStr = c"wsgi-script";
const NOTE_ALIASED: &CStr = c"alias-forced-type";
const NOTE_CALLABLE: &CStr = c"mod_wsgi.callable_object";
const NOTE_PASS_AUTH: &CStr = c"mod_wsgi.pass_authorization";

unsafe fn set_note(r: *mut sys::request_rec, key: &CStr, value: &str) {
    // SAFETY: r is live; APR copies both strings.
    unsafe {
        table::add(
            (*r).notes,
            (*r).pool,
            key.to_bytes(),
            value.as_bytes(),
            true,
        )
    }
}

/// translate_name: maps URLs under a WSGIScriptAlias to the script file (plus
/// the remaining path, which Apache's directory walk turns into PATH_INFO).
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe fn translate(r: *mut sys::request_rec) -> i32 {
    // SAFETY: our server config lives in r->server's module config.
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
            if let Some(p) = o.pass_authorization {
                set_note(r, NOTE_PASS_AUTH, if p { "1" } else { "0" });
            }
        }
        return sys::OK;
    }
    sys::DECLINED
}

/// %{ENV:name}: request notes, then the request environment, then the process environment.
unsafe fn expand_env(r: *mut sys::request_rec, value: &str) -> String {
    let Some(name) = value
        .strip_prefix("%{ENV:")
        .and_then(|v| v.strip_suffix('}'))
    else {
        return value.to_string();
    };
    let Ok(cname) = std::ffi::CString::new(name) else {
        return String::new();
    };
    // SAFETY: r and its tables are live.
    unsafe {
        for t in [(*r).notes, (*r).subprocess_env] {
            if let Some(v) = apache::cbytes(sys::apr_table_get(t, cname.as_ptr())) {
                return String::from_utf8_lossy(v).into_owned();
            }
        }
    }
    std::env::var(name).unwrap_or_default()
}

/// SCRIPT_NAME and PATH_INFO: the URI split where PATH_INFO begins (as
/// Apache's CGI support does), with runs of '/' collapsed in both.
pub fn split_script_name(
    uri: &[u8],
    path_info_start: usize,
    path_info: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    fn collapse(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(s.len());
        for &b in s {
            if !(b == b'/' && out.last() == Some(&b'/')) {
                out.push(b);
            }
        }
        out
    }
    let mut script_name = collapse(&uri[..path_info_start.min(uri.len())]);
    if script_name.last() == Some(&b'/') && !path_info.is_empty() {
        script_name.pop();
    }
    (script_name, collapse(path_info))
}

/// The content handler for `wsgi-script` (and `application/x-httpd-wsgi`).
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe fn handle(r: *mut sys::request_rec) -> i32 {
    // SAFETY (whole function): r and everything reachable from it is live
    // while Apache runs this handler on the current thread.
    unsafe {
        let handler = apache::cbytes((*r).handler).unwrap_or(b"");
        if handler != b"wsgi-script" && handler != b"application/x-httpd-wsgi" {
            return sys::DECLINED;
        }
        let filename = apache::cstring_lossy((*r).filename).unwrap_or_default();
        let aliased = table::get((*r).notes, NOTE_ALIASED) == Some(b"wsgi-script");
        if !aliased && (sys::ap_allow_options(r) & sys::OPT_EXECCGI) == 0 {
            log::rerror(
                r,
                log::ERR,
                &format!("Options ExecCGI is off in this directory: {filename}"),
            );
            return sys::HTTP_FORBIDDEN;
        }
        match (*r).finfo.filetype {
            t if t == sys::apr_filetype_e_APR_NOFILE => {
                log::rerror(
                    r,
                    log::ERR,
                    &format!("Target WSGI script not found or unable to stat: {filename}"),
                );
                return sys::HTTP_NOT_FOUND;
            }
            t if t == sys::apr_filetype_e_APR_DIR => {
                log::rerror(
                    r,
                    log::ERR,
                    &format!("Attempt to invoke directory as WSGI application: {filename}"),
                );
                return sys::HTTP_FORBIDDEN;
            }
            _ => {}
        }
        let path_info = apache::cbytes((*r).path_info).unwrap_or(b"");
        if !path_info.is_empty() && (*r).used_path_info == sys::AP_REQ_REJECT_PATH_INFO {
            log::rerror(
                r,
                log::INFO,
                &format!("AcceptPathInfo off disallows user's path: {filename}"),
            );
            return sys::HTTP_NOT_FOUND;
        }

        let dir = &*(sys::wsgi_rs_dir_config(r) as *const DirConfig);
        let callable =
            match apache::cstring_lossy(sys::apr_table_get((*r).notes, NOTE_CALLABLE.as_ptr())) {
                Some(c) => c,
                None => dir.callable_object().to_string(),
            };
        let pass_authorization = match table::get((*r).notes, NOTE_PASS_AUTH) {
            Some(v) => v == b"1",
            None => dir.pass_authorization(),
        };

        // Chunked request bodies need WSGIChunkedRequest On (411 otherwise).
        if let Some(te) = table::get((*r).headers_in, c"Transfer-Encoding") {
            if !dir.chunked_request() && te.eq_ignore_ascii_case(b"chunked") {
                log::rerror(
                    r,
                    log::ERR,
                    &format!("Received request requiring chunked transfer encoding, but optional support for chunked transfer encoding has not been enabled: {filename}"),
                );
                return sys::HTTP_LENGTH_REQUIRED;
            }
        }
        let rv = sys::ap_setup_client_block(r, sys::REQUEST_CHUNKED_DECHUNK);
        if rv != sys::OK {
            return rv;
        }

        let Some(interp) = Interp::for_group("") else {
            let why = runtime::init_error().unwrap_or("Python is not initialised in this process");
            log::rerror(
                r,
                log::ERR,
                &format!("Cannot serve WSGI script '{filename}': {why}"),
            );
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        };

        let uri = apache::cbytes((*r).uri).unwrap_or(b"");
        let cpath = std::ffi::CString::new(path_info).unwrap_or_default();
        let start = sys::ap_find_path_info((*r).uri, cpath.as_ptr()).max(0) as usize;
        let (script_name, path_info) = split_script_name(uri, start, path_info);
        let callable = expand_env(r, &callable);
        let info = RequestInfo {
            script: filename,
            script_name,
            path_info,
            callable,
            pass_authorization,
            script_reloading: dir.script_reloading(),
        };
        let mtime = (*r).finfo.mtime;
        match interp.run(|py| app::serve(py, interp, r, &info, mtime)) {
            // The GIL is released here: pass what the application left staged.
            Some(served) => served.complete(r, &info.script),
            None => sys::HTTP_INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_script_name;

    #[test]
    fn splits_like_mod_wsgi() {
        let s = |uri: &[u8], pi: &[u8]| {
            let start = uri.len() - pi.len();
            let (a, b) = split_script_name(uri, start, pi);
            (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
        };
        assert_eq!(s(b"/daemon", b""), ("/daemon".into(), "".into()));
        assert_eq!(s(b"/daemon/", b"/"), ("/daemon".into(), "/".into()));
        assert_eq!(
            s(b"/daemon/sub/path", b"/sub/path"),
            ("/daemon".into(), "/sub/path".into())
        );
        assert_eq!(s(b"/", b"/"), ("".into(), "/".into()));
        assert_eq!(
            s(b"/embedded//a//b", b"//a//b"),
            ("/embedded".into(), "/a/b".into())
        );
    }
}
