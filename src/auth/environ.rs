//! The environ of an auth script: mod_wsgi's cut-down set. Request headers
//! as HTTP_* (never the credentials), the server and client CGI variables,
//! SCRIPT_NAME/PATH_INFO from the URI, wsgi.errors, the versions and
//! groups, and the mod_ssl callables. No wsgi.input: there is no body yet.
use super::request::RequestRef;
use crate::apache::{self, sys};
use crate::embedded::request::{request_line_uri, split_script_name};
use crate::python::objects::InterpObjects;
use crate::wsgi::head::{valid_header_name, Key, RequestHead, Target, Text};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

/// The request's variables, read before Python runs (so that no Python
/// thread can see the request while it is read).
///
/// # Safety
/// `r` must be the live request whose hook is running.
pub unsafe fn head(r: *mut sys::request_rec) -> RequestHead {
    let mut h = RequestHead::new(Target::default());
    let text = |p| {
        // SAFETY: Apache's strings are NUL-terminated and live with r.
        unsafe { apache::cbytes(p) }.unwrap_or(b"")
    };
    // SAFETY: r, its connection, server and tables are live (caller).
    unsafe {
        headers(r, &mut h);
        let c = (*r).connection;
        h.set_other(b"SERVER_SOFTWARE", text(sys::ap_get_server_banner()));
        // The ServerSignature footer ("" when it is Off), as mod_wsgi 6 sets.
        h.set_other(
            b"SERVER_SIGNATURE",
            text(sys::ap_psignature(c"".as_ptr(), r)),
        );
        h.set(Key::ServerName, text(sys::ap_get_server_name_for_url(r)));
        h.set(Key::ServerAddr, text((*c).local_ip));
        h.set_int(Key::ServerPort, sys::ap_get_server_port(r));
        let remote_host = sys::ap_get_remote_host(
            c,
            (*r).per_dir_config.cast(),
            sys::REMOTE_HOST,
            std::ptr::null_mut(),
        );
        if let Some(host) = apache::cbytes(remote_host) {
            h.set_other(b"REMOTE_HOST", host);
        }
        h.set(Key::RemoteAddr, text((*r).useragent_ip));
        h.set_as(
            Key::DocumentRoot,
            text(sys::ap_document_root(r)),
            Text::Path,
        );
        if let Some(admin) = apache::cbytes((*(*r).server).server_admin) {
            h.set(Key::ServerAdmin, admin);
        }
        if !(*c).client_addr.is_null() {
            h.set_int(Key::RemotePort, (*(*c).client_addr).port);
        }
        h.set(Key::ServerProtocol, text((*r).protocol));
        h.set(Key::RequestMethod, text((*r).method));
        h.set(Key::QueryString, text((*r).args));
        h.set(Key::RequestUri, request_line_uri(text((*r).the_request)));
        let (script_name, path_info) = script_name(r);
        h.set(Key::ScriptName, &script_name);
        h.set(Key::PathInfo, &path_info);
    }
    h
}

/// SCRIPT_NAME and PATH_INFO: the URI split where Apache's PATH_INFO
/// begins (the whole URI when there is none).
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn script_name(r: *mut sys::request_rec) -> (Vec<u8>, Vec<u8>) {
    // SAFETY: r's uri and path_info are NUL-terminated or NULL.
    unsafe {
        let uri = apache::cbytes((*r).uri).unwrap_or(b"");
        let path_info = apache::cbytes((*r).path_info).unwrap_or(b"");
        let start = match std::ffi::CString::new(path_info) {
            Ok(cpath) if !path_info.is_empty() => {
                sys::ap_find_path_info((*r).uri, cpath.as_ptr()).max(0) as usize
            }
            _ => uri.len(),
        };
        split_script_name(uri, start, path_info)
    }
}

/// Request headers as HTTP_* (CONTENT_TYPE and CONTENT_LENGTH without the
/// prefix). Authorization and Proxy-Authorization never: the password is
/// the script's argument, as with mod_wsgi.
unsafe fn headers(r: *mut sys::request_rec, h: &mut RequestHead) {
    // SAFETY: r->headers_in is live and not modified meanwhile.
    unsafe {
        crate::apache::table::for_each((*r).headers_in, |name, value| {
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            if !valid_header_name(name)
                || is(b"proxy")
                || is(b"authorization")
                || is(b"proxy-authorization")
            {
            } else if is(b"content-type") {
                h.set(Key::ContentType, value)
            } else if is(b"content-length") {
                h.set(Key::ContentLength, value)
            } else {
                h.set_header(name, value)
            }
        })
    };
}

/// The environ dict (the GIL is held; nothing here blocks).
pub fn build<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    head: &RequestHead,
    application_group: &str,
    errors: Bound<'py, PyAny>,
    req: &Arc<RequestRef>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    crate::wsgi::environ::add_variables(py, objs, head, &env)?;
    let base = objs.base_environ.bind(py);
    for key in ["apache.version", "mod_wsgi.version"] {
        if let Some(v) = base.get_item(key)? {
            env.set_item(key, v)?;
        }
    }
    // Auth scripts always run in Apache's children.
    env.set_item("mod_wsgi.process_group", "")?;
    env.set_item("mod_wsgi.application_group", application_group)?;
    env.set_item(objs.key(py, Key::Errors), errors)?;
    let (is_https, var_lookup) = super::ssl::callables(py, objs, req)?;
    env.set_item("mod_ssl.is_https", is_https)?;
    env.set_item("mod_ssl.var_lookup", var_lookup)?;
    Ok(env)
}
