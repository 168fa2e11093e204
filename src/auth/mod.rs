//! mod_wsgi's auth hooks: Python scripts that decide who gets in.
//!
//! access: WSGIAccessScript (the access_checker hook); authn:
//! WSGIAuthUserScript (the `wsgi` authn provider of mod_auth_basic and
//! mod_auth_digest); authz: WSGIAuthGroupScript (`Require wsgi-group`);
//! environ: what the scripts see; request and ssl: the request as their
//! Python objects reach it.
//!
//! Scripts always run in the Apache child's own interpreters (application-
//! group=, by default %{GLOBAL}), never in a daemon process, even when the
//! content goes to one or WSGIRestrictEmbedded is On: Python is started in
//! the child on first use. They are loaded as mod_wsgi loads WSGI scripts
//! (`_mod_wsgi_<md5>` modules, reloaded when the file changes).

pub(crate) mod access;
pub(crate) mod authn;
pub(crate) mod authz;
pub(crate) mod environ;
pub(crate) mod request;
pub(crate) mod ssl;

use crate::apache::{self, log, sys};
use crate::config::{AuthScript, DirConfig, GroupFacts, ServerConfig};
use crate::python::logging;
use crate::wsgi::app::log_exception;
use crate::wsgi::exchange::Exchange;
use crate::wsgi::head::RequestHead;
use crate::wsgi::transport::Level;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use request::{LogOnly, RequestRef};
use std::sync::Arc;

/// The request's merged per-directory configuration.
///
/// # Safety
/// `r` must be a live request.
unsafe fn dir_config<'r>(r: *mut sys::request_rec) -> &'r DirConfig {
    // SAFETY: our per-directory record, immutable once merged, lives with r.
    unsafe { &*(sys::wsgi_rs_dir_config(r) as *const DirConfig) }
}

/// What a script's result came to: a value for the hook, or a message
/// saying why it was refused (logged; the hook fails closed).
pub type Verdict<T> = Result<T, String>;

/// One call of a script's function.
pub struct Call<'a> {
    pub script: &'a AuthScript,
    /// The function's name (allow_access, check_password...).
    pub function: &'static str,
    /// The error-log line when the script has no such function.
    pub missing: String,
    /// The arguments after the environ, as Latin-1 str (None: None).
    pub args: &'a [Option<&'a [u8]>],
}

/// Runs `call` for request `r` and reads its result with `read`. None when
/// anything failed (already logged with the request's context).
///
/// # Safety
/// `r` must be the live request whose hook is running, on this thread.
pub unsafe fn run<T>(
    r: *mut sys::request_rec,
    call: &Call<'_>,
    read: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<Verdict<T>>,
) -> Option<T> {
    // SAFETY: r is live (caller).
    let (group, reload, head) = unsafe {
        (
            application_group(r, call.script),
            dir_config(r).script_reloading(),
            environ::head(r),
        )
    };
    let interp = match crate::embedded::child::embedded_interp(&group) {
        Ok(i) => i,
        Err(why) => {
            let msg = format!(
                "Unable to acquire the interpreter of application group '{group}' for auth script '{}': {why}",
                call.script.path
            );
            // SAFETY: r is live.
            unsafe { log::rerror(r, log::ERR, &msg) };
            return None;
        }
    };
    // Stat without the GIL, as the content handler does.
    let mtime = crate::embedded::child::mtime_of(&call.script.path);
    // SAFETY: `req` is ended below, before this hook returns.
    let req = unsafe { RequestRef::new(r) };
    let mut transport = LogOnly(req.clone());
    let ex = Exchange::new(interp, &call.script.path, None);
    let out = ex.lend(&mut transport, || {
        interp.run(|py| {
            logging::set_current(py, Some(ex.clone()));
            let script = Script {
                call,
                ex: &ex,
                req: &req,
                head: &head,
                group: &group,
                mtime,
                reload,
            };
            let out = script.run(py, read);
            logging::set_current(py, None);
            out
        })
    });
    req.end();
    out.flatten()
}

/// A call in progress, with the GIL held.
struct Script<'a> {
    call: &'a Call<'a>,
    ex: &'a Arc<Exchange>,
    req: &'a Arc<RequestRef>,
    head: &'a RequestHead,
    group: &'a str,
    mtime: i64,
    reload: bool,
}

impl Script<'_> {
    fn run<T>(
        &self,
        py: Python<'_>,
        read: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<Verdict<T>>,
    ) -> Option<T> {
        let path = &self.call.script.path;
        let interp = self.ex.interp;
        let objs = interp.objects();
        let module = match crate::wsgi::script::module(py, objs, path, self.mtime, self.reload) {
            Ok(m) => m,
            Err(e) => {
                let first = format!("Failed to exec Python script file '{path}'.");
                log_exception(py, interp, path, &e, &[first]);
                return None;
            }
        };
        let function = match module.getattr_opt(self.call.function) {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.ex
                    .log_lines(py, Level::Error, &[self.call.missing.as_str()]);
                return None;
            }
            Err(e) => {
                log_exception(py, interp, path, &e, &[]);
                return None;
            }
        };
        let errors = match self
            .ex
            .capsule(py)
            .and_then(|capsule| objs.log_stream.bind(py).call1((capsule, 0u8, "<log>")))
        {
            Ok(e) => e,
            Err(e) => {
                log_exception(py, interp, path, &e, &[]);
                return None;
            }
        };
        let called = || -> PyResult<Verdict<T>> {
            let env = environ::build(py, objs, self.head, self.group, errors.clone(), self.req)?;
            let mut args = vec![env.into_any()];
            for a in self.call.args {
                args.push(match a {
                    Some(b) => crate::python::text::str_from_latin1(py, b)?.into_any(),
                    None => py.None().into_bound(py),
                });
            }
            read(&function.call1(PyTuple::new(py, args)?)?)
        };
        let out = match called() {
            Ok(Ok(v)) => Some(v),
            Ok(Err(msg)) => {
                self.ex.log_lines(py, Level::Error, &[msg.as_str()]);
                None
            }
            Err(e) => {
                log_exception(py, interp, path, &e, &[]);
                None
            }
        };
        // What the script left unterminated in wsgi.errors goes out now.
        if let Err(e) = errors.call_method0("flush") {
            log_exception(py, interp, path, &e, &[]);
        }
        out
    }
}

/// The interpreter a script runs in: application-group= expanded for
/// this request (%{GLOBAL}, the main interpreter, by default).
///
/// # Safety
/// `r` must be a live request.
unsafe fn application_group(r: *mut sys::request_rec, script: &AuthScript) -> String {
    let spec = &script.application_group;
    if let crate::config::GroupSpec::Global | crate::config::GroupSpec::Literal(_) = spec {
        return spec.expand_static();
    }
    // SAFETY: r, its server and strings are live.
    unsafe {
        let server_name = apache::cstring_lossy((*(*r).server).server_hostname).unwrap_or_default();
        let host = apache::cstring_lossy((*r).hostname);
        let (script_name, _) = environ::script_name(r);
        let script_name = String::from_utf8_lossy(&script_name);
        let env = |name: &str| crate::embedded::request::env_value(r, name);
        let main = &*(sys::wsgi_rs_server_config((*r).server) as *const ServerConfig);
        spec.expand(&GroupFacts {
            server_name: &server_name,
            host: host.as_deref(),
            port: sys::ap_get_server_port(r),
            script_name: &script_name,
            case_sensitive: main.python.case_sensitive(),
            env: &env,
        })
    }
}

/// The request's file (or URI), for messages.
///
/// # Safety
/// `r` must be a live request.
unsafe fn target(r: *mut sys::request_rec) -> String {
    // SAFETY: r's strings are NUL-terminated or NULL.
    unsafe { apache::cstring_lossy((*r).filename).or_else(|| apache::cstring_lossy((*r).uri)) }
        .unwrap_or_default()
}

/// The user name Apache authenticated, if any.
///
/// # Safety
/// `r` must be a live request.
unsafe fn user<'r>(r: *mut sys::request_rec) -> Option<&'r [u8]> {
    // SAFETY: r->user is NULL or a NUL-terminated pool string.
    unsafe { apache::cbytes((*r).user) }
}
