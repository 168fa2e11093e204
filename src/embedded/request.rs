//! The WSGI core's view of an Apache request: its `RequestHead`, built from
//! `request_rec` as mod_wsgi builds its environ.
use crate::apache::{self, sys, table};
use crate::config::expand::env_name;
use crate::config::{ProxyHeader, Subnet};
use crate::wsgi::head::{valid_header_name, Key, RequestHead, Target, Text};
use crate::wsgi::proxy_headers;

/// What the handler decided about the request before building its head.
pub struct Decided {
    pub target: Target,
    pub script_name: Vec<u8>,
    pub path_info: Vec<u8>,
    pub pass_authorization: bool,
    /// WSGIMapHEADToGET decided to show this HEAD request as GET.
    pub head_as_get: bool,
    /// WSGIEnableSendfile (shown as mod_wsgi.enable_sendfile).
    pub enable_sendfile: bool,
    /// WSGIIgnoreActivity (daemon mode's inactivity-timeout).
    pub ignore_activity: bool,
    /// WSGITrustedProxyHeaders (empty: none).
    pub trusted_proxy_headers: Vec<ProxyHeader>,
    /// WSGITrustedProxies (None: any peer is trusted).
    pub trusted_proxies: Option<Vec<Subnet>>,
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

/// The URI part of the request line ("GET /a?b HTTP/1.1" → "/a?b"), as
/// Apache's CGI REQUEST_URI: the original, still-encoded target.
pub fn request_line_uri(line: &[u8]) -> &[u8] {
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    words.nth(1).unwrap_or(b"")
}

/// `value`, or the variable it names with `%{ENV:name}`: request notes, then
/// the request environment, then the process environment.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn expand_env(r: *const sys::request_rec, value: &str) -> String {
    match env_name(value) {
        // SAFETY: forwarded contract.
        Some(name) => unsafe { env_value(r, name) }.unwrap_or_default(),
        None => value.to_string(),
    }
}

/// The value `%{ENV:name}` stands for: the request's notes, then its
/// environment, then the process's.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn env_value(r: *const sys::request_rec, name: &str) -> Option<String> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: r and its tables are live.
    unsafe {
        for t in [(*r).notes, (*r).subprocess_env] {
            if let Some(v) = apache::cbytes(sys::apr_table_get(t, cname.as_ptr())) {
                return Some(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    std::env::var(name).ok()
}

/// Builds the request head.
///
/// # Safety
/// `r` must be the live request being handled.
pub unsafe fn head(r: *mut sys::request_rec, d: Decided) -> RequestHead {
    let mut h = RequestHead::new(Target::default());
    // SAFETY: r, its connection, server and tables are live (caller).
    unsafe {
        if (*r).read_chunked == 0 {
            h.body_length = u64::try_from((*r).remaining).ok();
        }
        let https = environment(r, &mut h);
        headers(r, &mut h, d.pass_authorization);
        let ssl = cgi_variables(r, &mut h, &d, https);
        mod_wsgi_variables(r, &mut h, &d);
        // Proxy headers come last: mod_wsgi.script_name and .path_info keep
        // Apache's values, as in mod_wsgi.
        let peer = apache::cbytes((*r).useragent_ip).unwrap_or(b"");
        let proxies = d.trusted_proxies.as_deref();
        if let Some(on) = proxy_headers::apply(&mut h, &d.trusted_proxy_headers, proxies, peer) {
            let https = on || ssl;
            h.set(Key::UrlScheme, if https { b"https" } else { b"http" });
        }
    }
    h.target = d.target;
    h
}

/// Variables from SetEnv, SetEnvIf, mod_rewrite [E=], mod_ssl… They come
/// first, so that headers and CGI variables replace them. Returns whether
/// HTTPS is on.
unsafe fn environment(r: *mut sys::request_rec, h: &mut RequestHead) -> bool {
    let mut https = false;
    // SAFETY: r->subprocess_env is live and not modified meanwhile.
    unsafe {
        table::for_each((*r).subprocess_env, |name, value| match name {
            b"HTTPS" => https = value.eq_ignore_ascii_case(b"on") || value == b"1",
            b"PATH" => {}
            _ => h.set_other(name, value),
        })
    };
    https
}

/// Request headers as HTTP_* (CONTENT_TYPE and CONTENT_LENGTH without the
/// prefix); credentials only with WSGIPassAuthorization.
unsafe fn headers(r: *mut sys::request_rec, h: &mut RequestHead, pass_authorization: bool) {
    // SAFETY: r->headers_in is live and not modified meanwhile.
    unsafe {
        table::for_each((*r).headers_in, |name, value| {
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            if !valid_header_name(name) || is(b"proxy") {
            } else if is(b"content-type") {
                h.set(Key::ContentType, value)
            } else if is(b"content-length") {
                h.set(Key::ContentLength, value)
            } else if pass_authorization || !(is(b"authorization") || is(b"proxy-authorization")) {
                h.set_header(name, value)
            }
        })
    };
}

/// Returns whether the connection itself is HTTPS (mod_ssl).
unsafe fn cgi_variables(
    r: *mut sys::request_rec,
    h: &mut RequestHead,
    d: &Decided,
    https: bool,
) -> bool {
    let text = |p| {
        // SAFETY: Apache's strings are NUL-terminated and live with r.
        unsafe { apache::cbytes(p) }.unwrap_or(b"")
    };
    // SAFETY: r, its connection and server are live (caller).
    unsafe {
        let c = (*r).connection;
        let method = match apache::cbytes((*r).method) {
            Some(_) if d.head_as_get => b"GET",
            Some(m) => m,
            None => b"GET",
        };
        h.set(Key::RequestMethod, method);
        h.set(Key::ScriptName, &d.script_name);
        h.set(Key::PathInfo, &d.path_info);
        h.set(Key::QueryString, text((*r).args));
        h.set(Key::RequestUri, request_line_uri(text((*r).the_request)));
        h.set(
            Key::ServerProtocol,
            apache::cbytes((*r).protocol).unwrap_or(b"HTTP/1.0"),
        );
        h.set(Key::ServerName, text(sys::ap_get_server_name_for_url(r)));
        h.set_int(Key::ServerPort, sys::ap_get_server_port(r));
        h.set(Key::ServerAddr, text((*c).local_ip));
        let admin = (*(*r).server).server_admin;
        h.set(
            Key::ServerAdmin,
            apache::cbytes(admin).unwrap_or(b"[no address given]"),
        );
        h.set(Key::RemoteAddr, text((*r).useragent_ip));
        if !(*c).client_addr.is_null() {
            h.set_int(Key::RemotePort, (*(*c).client_addr).port);
        }
        if let Some(user) = apache::cbytes((*r).user) {
            h.set(Key::RemoteUser, user);
        }
        if let Some(auth) = apache::cbytes((*r).ap_auth_type) {
            h.set(Key::AuthType, auth);
        }
        let scheme = apache::cbytes(sys::ap_run_http_scheme(r)).unwrap_or(b"http");
        h.set(Key::RequestScheme, scheme);
        let ssl = scheme == b"https";
        h.set(
            Key::UrlScheme,
            if https || ssl { b"https" } else { b"http" },
        );
        h.set_as(
            Key::DocumentRoot,
            text(sys::ap_document_root(r)),
            Text::Path,
        );
        h.set(Key::ContextPrefix, text(sys::ap_context_prefix(r)));
        h.set_as(
            Key::ContextDocumentRoot,
            text(sys::ap_context_document_root(r)),
            Text::Path,
        );
        // A handler script's SCRIPT_FILENAME is the resource, as mod_wsgi's.
        let filename = d.target.resource.as_deref().unwrap_or(&d.target.script);
        h.set_as(Key::ScriptFilename, filename.as_bytes(), Text::Path);
        if d.target.resource.is_some() {
            h.set_as(Key::HandlerScript, d.target.script.as_bytes(), Text::Path);
        }
        if !(*r).prev.is_null() {
            let prev = (*r).prev;
            h.set(Key::RedirectUrl, text((*prev).uri));
            if let Some(q) = apache::cbytes((*prev).args) {
                h.set(Key::RedirectQueryString, q);
            }
        }
        ssl
    }
}

/// The mod_wsgi.* keys applications read.
unsafe fn mod_wsgi_variables(r: *mut sys::request_rec, h: &mut RequestHead, d: &Decided) {
    // SAFETY: r and its connection are live (caller).
    unsafe {
        let c = (*r).connection;
        h.set(Key::CallableObject, d.target.callable.as_bytes());
        h.set(
            Key::RequestHandler,
            apache::cbytes((*r).handler).unwrap_or(b""),
        );
        h.set(
            Key::IgnoreActivity,
            if d.ignore_activity { b"1" } else { b"0" },
        );
        h.set(
            Key::EnableSendfile,
            if d.enable_sendfile { b"1" } else { b"0" },
        );
        h.set(
            Key::ScriptReloading,
            if d.target.script_reloading {
                b"1"
            } else {
                b"0"
            },
        );
        let local_ip = apache::cbytes((*c).local_ip).unwrap_or(b"");
        h.set(Key::ListenerHost, local_ip);
        if !(*c).local_addr.is_null() {
            h.set_int(Key::ListenerPort, (*(*c).local_addr).port);
        }
        h.set_int(Key::RequestStart, (*r).request_time);
        h.set(Key::MwScriptName, &d.script_name);
        h.set(Key::MwPathInfo, &d.path_info);
        // Apache's request log id (%L), generated now if nothing asked for it yet.
        if (*r).log_id.is_null() {
            sys::ap_run_generate_log_id(c, r, &mut (*r).log_id);
        }
        if let Some(id) = apache::cbytes((*r).log_id) {
            h.set(Key::RequestId, id);
        }
        // Only when something (a log format's %{c}L) gave the connection
        // a log id, as in mod_wsgi 6.
        if let Some(id) = apache::cbytes((*c).log_id) {
            h.set(Key::ConnectionId, id);
        }
        // The Apache child's pid, also in a daemon process (mod_wsgi 6).
        h.set_int(Key::ServerPid, std::process::id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
