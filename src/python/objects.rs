//! The Python objects one interpreter keeps for serving requests: the helper
//! module (also importable as `mod_wsgi`), the constant part of the environ,
//! interned environ keys and the cache of loaded WSGI scripts.
use crate::wsgi::{input, response};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString, PyTuple};
use std::collections::HashMap;
use std::sync::Mutex;

/// Process facts that the environ and the `mod_wsgi` module report.
pub struct ProcessInfo {
    pub multithread: bool,
    pub multiprocess: bool,
    pub max_processes: i32,
    pub threads_per_process: i32,
    /// SERVER_SOFTWARE: Apache's banner (ServerTokens applies).
    pub server_software: String,
    /// Apache's full description, the MPM's name and the build date, for the
    /// `apache` module.
    pub server_description: String,
    pub mpm_name: String,
    pub build_date: String,
}

macro_rules! keys {
    ($($field:ident = $name:literal),* $(,)?) => {
        /// Interned environ keys of one interpreter.
        pub struct Keys { $(pub $field: Py<PyString>,)* }
        impl Keys {
            fn new(py: Python<'_>) -> Keys {
                Keys { $($field: PyString::intern(py, $name).unbind(),)* }
            }
        }
    };
}

keys! {
    request_method = "REQUEST_METHOD",
    script_name = "SCRIPT_NAME",
    path_info = "PATH_INFO",
    query_string = "QUERY_STRING",
    content_type = "CONTENT_TYPE",
    content_length = "CONTENT_LENGTH",
    server_name = "SERVER_NAME",
    server_port = "SERVER_PORT",
    server_addr = "SERVER_ADDR",
    server_admin = "SERVER_ADMIN",
    server_protocol = "SERVER_PROTOCOL",
    remote_addr = "REMOTE_ADDR",
    remote_port = "REMOTE_PORT",
    remote_user = "REMOTE_USER",
    auth_type = "AUTH_TYPE",
    request_uri = "REQUEST_URI",
    request_scheme = "REQUEST_SCHEME",
    document_root = "DOCUMENT_ROOT",
    context_prefix = "CONTEXT_PREFIX",
    context_document_root = "CONTEXT_DOCUMENT_ROOT",
    script_filename = "SCRIPT_FILENAME",
    redirect_url = "REDIRECT_URL",
    redirect_query_string = "REDIRECT_QUERY_STRING",
    url_scheme = "wsgi.url_scheme",
    input = "wsgi.input",
    callable_object = "mod_wsgi.callable_object",
    request_handler = "mod_wsgi.request_handler",
    script_reloading = "mod_wsgi.script_reloading",
    listener_host = "mod_wsgi.listener_host",
    listener_port = "mod_wsgi.listener_port",
    request_start = "mod_wsgi.request_start",
    script_start = "mod_wsgi.script_start",
    mw_script_name = "mod_wsgi.script_name",
    mw_path_info = "mod_wsgi.path_info",
    request_id = "mod_wsgi.request_id",
    connection_id = "mod_wsgi.connection_id",
    thread_id = "mod_wsgi.thread_id",
    thread_requests = "mod_wsgi.thread_requests",
    total_requests = "mod_wsgi.total_requests",
    http = "http",
    https = "https",
    empty = "",
}

/// A loaded WSGI script module and the file mtime it was loaded from.
pub struct Script {
    pub module: Py<PyAny>,
    pub mtime: i64,
}

pub struct InterpObjects {
    pub module: Py<PyModule>,
    pub input_type: Py<PyAny>,
    pub file_wrapper: Py<PyAny>,
    pub start_response: Py<PyAny>,
    pub partial: Py<PyAny>,
    pub load_script: Py<PyAny>,
    pub format_exception: Py<PyAny>,
    pub base_environ: Py<PyDict>,
    pub keys: Keys,
    /// Script path → module. Only used with this interpreter's GIL held.
    pub scripts: Mutex<HashMap<String, Script>>,
    /// Raw request header name → "HTTP_..." key, bounded in size.
    pub header_keys: Mutex<HashMap<Box<[u8]>, Py<PyString>>>,
}

const HELPERS: &std::ffi::CStr =
    match std::ffi::CStr::from_bytes_with_nul(concat!(include_str!("helpers.py"), "\0").as_bytes())
    {
        Ok(s) => s,
        Err(_) => panic!("helpers.py contains a NUL byte"),
    };

/// Version reported as `mod_wsgi_rs.version`.
pub fn own_version() -> (u32, u32, u32) {
    let mut it = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// (major, minor, patch) of the httpd headers the module was built with, as
/// mod_wsgi reports it.
fn apache_version(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    use crate::apache::sys;
    PyTuple::new(
        py,
        [
            sys::AP_SERVER_MAJORVERSION_NUMBER,
            sys::AP_SERVER_MINORVERSION_NUMBER,
            sys::AP_SERVER_PATCHLEVEL_NUMBER,
        ],
    )
}

/// The `apache` module mod_wsgi provides next to `mod_wsgi`.
fn apache_module<'py>(py: Python<'py>, info: &ProcessInfo) -> PyResult<Bound<'py, PyModule>> {
    let m = PyModule::new(py, "apache")?;
    m.setattr("version", apache_version(py)?)?;
    m.setattr("description", &info.server_description)?;
    m.setattr("mpm_name", &info.mpm_name)?;
    m.setattr("build_date", &info.build_date)?;
    m.setattr("maximum_processes", info.max_processes)?;
    m.setattr("threads_per_process", info.threads_per_process)?;
    Ok(m)
}

impl InterpObjects {
    /// Builds the helper module in the current interpreter and registers it as
    /// `mod_wsgi` and `mod_wsgi_rs` in `sys.modules`.
    pub fn new(py: Python<'_>, group: &str, info: &ProcessInfo) -> PyResult<InterpObjects> {
        let module = PyModule::from_code(py, HELPERS, c"<mod_wsgi_rs helpers>", c"mod_wsgi_rs")?;
        module.add_function(wrap_pyfunction!(input::_rs_input_read, &module)?)?;
        module.add_function(wrap_pyfunction!(input::_rs_input_readline, &module)?)?;
        module.add_function(wrap_pyfunction!(super::logging::_rs_log_write, &module)?)?;
        module.add_function(wrap_pyfunction!(super::logging::_rs_log_flush, &module)?)?;
        module.add_function(wrap_pyfunction!(super::logging::_rs_log_info, &module)?)?;
        let start_response = wrap_pyfunction!(response::_rs_start_response, &module)?;
        module.add_function(wrap_pyfunction!(response::_rs_write, &module)?)?;
        module.setattr("application_group", group)?;
        module.setattr("maximum_processes", info.max_processes)?;
        module.setattr("threads_per_process", info.threads_per_process)?;
        module.setattr("mod_wsgi_rs_version", own_version())?;
        let sys_modules = py.import("sys")?.getattr("modules")?;
        sys_modules.set_item("mod_wsgi", &module)?;
        sys_modules.set_item("apache", apache_module(py, info)?)?;

        let errors = module.getattr("Log")?.call1((0u8, "<wsgi.errors>"))?;
        let file_wrapper = module.getattr("FileWrapper")?;
        let base = PyDict::new(py);
        base.set_item("wsgi.version", (1, 0))?;
        base.set_item("wsgi.multithread", info.multithread)?;
        base.set_item("wsgi.multiprocess", info.multiprocess)?;
        base.set_item("wsgi.run_once", false)?;
        base.set_item("wsgi.input_terminated", true)?;
        base.set_item("wsgi.errors", &errors)?;
        base.set_item("wsgi.file_wrapper", &file_wrapper)?;
        base.set_item("GATEWAY_INTERFACE", "CGI/1.1")?;
        base.set_item("SERVER_SOFTWARE", &info.server_software)?;
        base.set_item("mod_wsgi.version", module.getattr("version")?)?;
        base.set_item("mod_wsgi.process_group", "")?;
        base.set_item("mod_wsgi.application_group", group)?;
        base.set_item("mod_wsgi.handler_script", "")?;
        base.set_item("mod_wsgi.enable_sendfile", "0")?;
        base.set_item("mod_wsgi.ignore_activity", "0")?;
        base.set_item("apache.version", apache_version(py)?)?;

        Ok(InterpObjects {
            input_type: module.getattr("Input")?.unbind(),
            file_wrapper: file_wrapper.unbind(),
            start_response: start_response.into_any().unbind(),
            partial: py.import("functools")?.getattr("partial")?.unbind(),
            load_script: module.getattr("load_script")?.unbind(),
            format_exception: module.getattr("format_exception")?.unbind(),
            base_environ: base.unbind(),
            keys: Keys::new(py),
            scripts: Mutex::new(HashMap::new()),
            header_keys: Mutex::new(HashMap::new()),
            module: module.unbind(),
        })
    }

    /// The text of an exception with its traceback, for the error log.
    pub fn format(&self, py: Python<'_>, err: &PyErr) -> String {
        self.format_exception
            .bind(py)
            .call1((err.value(py), err.traceback(py)))
            .and_then(|s| s.extract::<String>())
            .unwrap_or_else(|_| format!("{err}"))
    }
}
