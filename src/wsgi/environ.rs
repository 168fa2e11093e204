//! The WSGI environ: a copy of the interpreter's constant base dict plus the
//! per-request CGI variables, HTTP_* headers and mod_wsgi.* keys. Values are
//! native str decoded as Latin-1 (PEP 3333); file paths use the filesystem
//! encoding.
use crate::apache::{self, sys, table};
use crate::python::objects::InterpObjects;
use crate::wsgi::request::lock;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// What the handler decided about this request before entering Python.
pub struct RequestInfo {
    pub script: String,
    pub script_name: Vec<u8>,
    pub path_info: Vec<u8>,
    pub callable: String,
    pub pass_authorization: bool,
    pub script_reloading: bool,
}

#[inline(always)]
fn latin1<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: decoding Latin-1 accepts any bytes; the result is a new reference.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeLatin1(
                b.as_ptr().cast(),
                b.len() as ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
        .map(|o| o.cast_into_unchecked())
    }
}

fn fsdecode<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the filesystem decoder takes any bytes (surrogateescape).
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeFSDefaultAndSize(b.as_ptr().cast(), b.len() as ffi::Py_ssize_t),
        )
    }
}

fn int_str<'py>(py: Python<'py>, n: impl itoa::Integer) -> PyResult<Bound<'py, PyString>> {
    latin1(py, itoa::Buffer::new().format(n).as_bytes())
}

/// Request header names that may become HTTP_* keys: letters, digits and '-'
/// only (an underscore would collide with a dash after conversion).
pub fn valid_header_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

/// "User-Agent" → "HTTP_USER_AGENT".
pub fn http_key(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 5);
    k.extend_from_slice(b"HTTP_");
    k.extend(name.iter().map(|&b| {
        if b == b'-' {
            b'_'
        } else {
            b.to_ascii_uppercase()
        }
    }));
    k
}

/// The URI part of the request line ("GET /a?b HTTP/1.1" → "/a?b"), as
/// Apache's CGI REQUEST_URI: the original, still-encoded target.
pub fn request_line_uri(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let rest = &line[start..];
    let rest = &rest[rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len())..];
    &rest[..rest
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(rest.len())]
}

const HEADER_KEY_CACHE_MAX: usize = 256;
static NEXT_THREAD_ID: AtomicU32 = AtomicU32::new(1);
/// Requests this process has started serving (mod_wsgi.total_requests).
static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_ID: u32 = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
    static THREAD_REQUESTS: Cell<u64> = const { Cell::new(0) };
}

/// Builds the environ for `r` (the GIL is held; nothing here blocks).
///
/// # Safety
/// `r` must be the live request being served on this thread.
pub unsafe fn build<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    r: *mut sys::request_rec,
    info: &RequestInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let env = objs.base_environ.bind(py).copy()?;
    let k = &objs.keys;
    let set = |key: &Py<PyString>, v: &[u8]| -> PyResult<()> {
        env.set_item(key.bind(py), latin1(py, v)?)
    };
    // SAFETY (whole block): r, its connection, server and tables are live for
    // the duration of the handler, which is running this code.
    unsafe {
        let c = (*r).connection;
        let mut https = false;
        let mut err: Option<PyErr> = None;

        // Variables from SetEnv, SetEnvIf, mod_rewrite [E=], mod_ssl... first,
        // so that the CGI values below take precedence.
        table::for_each((*r).subprocess_env, |name, value| {
            if err.is_some() {
                return;
            }
            if name == b"HTTPS" {
                https = value.eq_ignore_ascii_case(b"on") || value == b"1";
                return;
            }
            if name == b"PATH" {
                return;
            }
            if let Err(e) = latin1(py, name).and_then(|n| env.set_item(n, latin1(py, value)?)) {
                err = Some(e);
            }
        });

        // Request headers.
        {
            let mut cache = lock(&objs.header_keys);
            table::for_each((*r).headers_in, |name, value| {
                if err.is_some() || !valid_header_name(name) {
                    return;
                }
                let res = if name.eq_ignore_ascii_case(b"content-type") {
                    set(&k.content_type, value)
                } else if name.eq_ignore_ascii_case(b"content-length") {
                    set(&k.content_length, value)
                } else if (!info.pass_authorization
                    && (name.eq_ignore_ascii_case(b"authorization")
                        || name.eq_ignore_ascii_case(b"proxy-authorization")))
                    || name.eq_ignore_ascii_case(b"proxy")
                {
                    Ok(())
                } else {
                    let key = match cache.get(name) {
                        Some(key) => key.bind(py).clone(),
                        None => {
                            let key =
                                PyString::intern(py, &String::from_utf8_lossy(&http_key(name)));
                            if cache.len() < HEADER_KEY_CACHE_MAX {
                                cache.insert(name.into(), key.clone().unbind());
                            }
                            key
                        }
                    };
                    // Repeated headers are joined with ", " (Apache merges most already).
                    match env.get_item(&key) {
                        Ok(Some(prev)) => {
                            let joined = format!(
                                "{}, {}",
                                prev.extract::<String>().unwrap_or_default(),
                                String::from_utf8_lossy(value)
                            );
                            env.set_item(key, joined)
                        }
                        _ => latin1(py, value).and_then(|v| env.set_item(key, v)),
                    }
                };
                if let Err(e) = res {
                    err = Some(e);
                }
            });
        }
        if let Some(e) = err {
            return Err(e);
        }

        set(
            &k.request_method,
            apache::cbytes((*r).method).unwrap_or(b"GET"),
        )?;
        set(&k.script_name, &info.script_name)?;
        set(&k.path_info, &info.path_info)?;
        set(&k.query_string, apache::cbytes((*r).args).unwrap_or(b""))?;
        set(
            &k.request_uri,
            request_line_uri(apache::cbytes((*r).the_request).unwrap_or(b"")),
        )?;
        set(
            &k.server_protocol,
            apache::cbytes((*r).protocol).unwrap_or(b"HTTP/1.0"),
        )?;
        set(
            &k.server_name,
            apache::cbytes(sys::ap_get_server_name_for_url(r)).unwrap_or(b""),
        )?;
        env.set_item(
            k.server_port.bind(py),
            int_str(py, sys::ap_get_server_port(r))?,
        )?;
        let local_ip = apache::cbytes((*c).local_ip).unwrap_or(b"");
        set(&k.server_addr, local_ip)?;
        set(&k.listener_host, local_ip)?;
        if !(*c).local_addr.is_null() {
            env.set_item(
                k.listener_port.bind(py),
                int_str(py, (*(*c).local_addr).port)?,
            )?;
        }
        let admin = (*(*r).server).server_admin;
        set(
            &k.server_admin,
            apache::cbytes(admin).unwrap_or(b"[no address given]"),
        )?;
        set(
            &k.remote_addr,
            apache::cbytes((*r).useragent_ip).unwrap_or(b""),
        )?;
        if !(*c).client_addr.is_null() {
            env.set_item(
                k.remote_port.bind(py),
                int_str(py, (*(*c).client_addr).port)?,
            )?;
        }
        if let Some(user) = apache::cbytes((*r).user) {
            set(&k.remote_user, user)?;
        }
        if let Some(auth) = apache::cbytes((*r).ap_auth_type) {
            set(&k.auth_type, auth)?;
        }
        let scheme = apache::cbytes(sys::ap_run_http_scheme(r)).unwrap_or(b"http");
        set(&k.request_scheme, scheme)?;
        let https = https || scheme == b"https";
        env.set_item(
            k.url_scheme.bind(py),
            if https {
                k.https.bind(py)
            } else {
                k.http.bind(py)
            },
        )?;
        env.set_item(
            k.document_root.bind(py),
            fsdecode(py, apache::cbytes(sys::ap_document_root(r)).unwrap_or(b""))?,
        )?;
        set(
            &k.context_prefix,
            apache::cbytes(sys::ap_context_prefix(r)).unwrap_or(b""),
        )?;
        env.set_item(
            k.context_document_root.bind(py),
            fsdecode(
                py,
                apache::cbytes(sys::ap_context_document_root(r)).unwrap_or(b""),
            )?,
        )?;
        env.set_item(
            k.script_filename.bind(py),
            fsdecode(py, info.script.as_bytes())?,
        )?;
        if !(*r).prev.is_null() {
            let prev = (*r).prev;
            set(&k.redirect_url, apache::cbytes((*prev).uri).unwrap_or(b""))?;
            if let Some(q) = apache::cbytes((*prev).args) {
                set(&k.redirect_query_string, q)?;
            }
        }

        // mod_wsgi.* keys applications read.
        env.set_item(k.callable_object.bind(py), &info.callable)?;
        set(
            &k.request_handler,
            apache::cbytes((*r).handler).unwrap_or(b""),
        )?;
        set(
            &k.script_reloading,
            if info.script_reloading { b"1" } else { b"0" },
        )?;
        env.set_item(k.request_start.bind(py), int_str(py, (*r).request_time)?)?;
        env.set_item(k.script_start.bind(py), int_str(py, sys::apr_time_now())?)?;
        set(&k.mw_script_name, &info.script_name)?;
        set(&k.mw_path_info, &info.path_info)?;
        // Apache's request log id (%L), generated now if nothing asked for it yet.
        if (*r).log_id.is_null() {
            sys::ap_run_generate_log_id(c, r, &mut (*r).log_id);
        }
        if let Some(id) = apache::cbytes((*r).log_id) {
            set(&k.request_id, id)?;
        }
        env.set_item(k.connection_id.bind(py), int_str(py, (*c).id)?)?;
        env.set_item(k.thread_id.bind(py), THREAD_ID.with(|t| *t))?;
        let n = THREAD_REQUESTS.with(|t| {
            let n = t.get();
            t.set(n + 1);
            n
        });
        env.set_item(k.thread_requests.bind(py), n)?;
        let total = TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed);
        env.set_item(k.total_requests.bind(py), total)?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        assert!(valid_header_name(b"X-Custom-Header"));
        assert!(!valid_header_name(b"X_Under_Score"));
        assert!(!valid_header_name(b"X.Dot"));
        assert!(!valid_header_name(b""));
        assert_eq!(http_key(b"User-Agent"), b"HTTP_USER_AGENT");
    }

    #[test]
    fn request_uri_from_request_line() {
        assert_eq!(request_line_uri(b"GET /a/b?x=1 HTTP/1.1"), b"/a/b?x=1");
        assert_eq!(
            request_line_uri(b"GET /raw%20path HTTP/1.0"),
            b"/raw%20path"
        );
        assert_eq!(request_line_uri(b"GET /"), b"/");
        assert_eq!(request_line_uri(b""), b"");
    }
}
