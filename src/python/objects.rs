//! The Python objects one interpreter keeps for serving requests: the helper
//! module (also importable as `mod_wsgi`), the constant part of the environ,
//! interned environ keys and the cache of loaded WSGI scripts.
use crate::wsgi::head::Key;
use crate::wsgi::{input, start_response};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyString, PyTuple};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Process facts that the environ and the `mod_wsgi` module report.
pub struct ProcessInfo {
    /// The daemon process group ("" in Apache's own children).
    pub process_group: String,
    pub multithread: bool,
    pub multiprocess: bool,
    /// Apache's MPM limits (the `apache` module).
    pub max_processes: i32,
    pub threads_per_process: i32,
    /// Where this process serves requests (`mod_wsgi`): Apache's limits in
    /// its children, the group's processes and threads in a daemon.
    pub group_processes: i32,
    pub group_threads: i32,
    /// SERVER_SOFTWARE: Apache's banner (ServerTokens applies).
    pub server_software: String,
    /// Apache's full description, the MPM's name and the build date, for the
    /// `apache` module.
    pub server_description: String,
    pub mpm_name: String,
    pub build_date: String,
}

/// A loaded WSGI script module and the file mtime it was loaded from.
pub struct Script {
    pub module: Py<PyAny>,
    pub mtime: i64,
}

/// Variable names (`HTTP_*` and others) interned per interpreter, at most.
const OTHER_KEYS_MAX: usize = 256;

/// The objects one interpreter keeps. The mutexes guard plain map operations
/// only: no Python code runs (and the GIL is never released) while one is
/// held, so holding the GIL while waiting for them cannot deadlock.
pub struct InterpObjects {
    pub module: Py<PyModule>,
    pub input_type: Py<PyAny>,
    pub log_stream: Py<PyAny>,
    pub errors_stream: Py<PyAny>,
    pub file_wrapper: Py<PyAny>,
    pub start_response: Py<PyAny>,
    pub write: Py<PyAny>,
    pub partial: Py<PyAny>,
    pub load_script: Py<PyAny>,
    pub format_exception: Py<PyAny>,
    /// The interpreter's own `mod_wsgi.RequestTimeout` (the application may
    /// rebind the module attribute; the class raised by interrupts is this).
    pub request_timeout: Py<PyAny>,
    pub base_environ: Py<PyDict>,
    /// `mod_wsgi.event_callbacks` and `mod_wsgi.active_requests`.
    pub event_callbacks: Py<PyList>,
    pub active_requests: Py<PyDict>,
    /// Interned known keys, indexed by `Key as usize`.
    keys: Vec<Py<PyString>>,
    /// Other variable names seen in requests → interned str, bounded.
    other_keys: Mutex<HashMap<Box<[u8]>, Py<PyString>>>,
    /// Script path → module.
    scripts: Mutex<HashMap<String, Script>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        // setattr, not add_function: that interns `__name__` through a
        // process-wide cache (pyo3's intern!), which sub-interpreters must not share.
        let add = |f: Bound<'_, pyo3::types::PyCFunction>| -> PyResult<()> {
            module.setattr(f.getattr("__name__")?.cast_into::<PyString>()?, f)
        };
        add(wrap_pyfunction!(input::_rs_input_read, &module)?)?;
        add(wrap_pyfunction!(input::_rs_input_readline, &module)?)?;
        add(wrap_pyfunction!(super::logging::_rs_log_write, &module)?)?;
        add(wrap_pyfunction!(super::logging::_rs_log_flush, &module)?)?;
        add(wrap_pyfunction!(super::logging::_rs_log_info, &module)?)?;
        add(wrap_pyfunction!(super::logging::_rs_log_record, &module)?)?;
        add(wrap_pyfunction!(super::logging::_rs_log_error, &module)?)?;
        add(wrap_pyfunction!(
            crate::wsgi::events::request_data,
            &module
        )?)?;
        {
            use crate::wsgi::metrics_api as m;
            add(wrap_pyfunction!(m::start_recording_metrics, &module)?)?;
            add(wrap_pyfunction!(m::request_metrics, &module)?)?;
            add(wrap_pyfunction!(m::process_metrics, &module)?)?;
        }
        add(wrap_pyfunction!(
            crate::metrics::python::server_metrics,
            &module
        )?)?;
        if std::env::var_os("WSGI_RS_TEST_HOOKS").is_some() {
            add(wrap_pyfunction!(super::guard::_rs_test_panic, &module)?)?;
        }
        let start_response = wrap_pyfunction!(start_response::_rs_start_response, &module)?;
        let write = wrap_pyfunction!(start_response::_rs_write, &module)?;
        module.setattr("application_group", group)?;
        module.setattr("process_group", &info.process_group)?;
        module.setattr("maximum_processes", info.group_processes)?;
        module.setattr("threads_per_process", info.group_threads)?;
        module.setattr("mod_wsgi_rs_version", own_version())?;
        let sys_modules = py.import("sys")?.getattr("modules")?;
        sys_modules.set_item("mod_wsgi", &module)?;
        sys_modules.set_item("apache", apache_module(py, info)?)?;

        let file_wrapper = module.getattr("FileWrapper")?;
        let base = PyDict::new(py);
        base.set_item("wsgi.version", (1, 0))?;
        base.set_item("wsgi.multithread", info.multithread)?;
        base.set_item("wsgi.multiprocess", info.multiprocess)?;
        base.set_item("wsgi.run_once", false)?;
        base.set_item("wsgi.input_terminated", true)?;
        base.set_item("wsgi.file_wrapper", &file_wrapper)?;
        base.set_item("SERVER_SOFTWARE", &info.server_software)?;
        base.set_item("mod_wsgi.version", module.getattr("version")?)?;
        base.set_item("mod_wsgi.process_group", &info.process_group)?;
        base.set_item("mod_wsgi.application_group", group)?;
        base.set_item("mod_wsgi.handler_script", "")?;
        base.set_item("apache.version", apache_version(py)?)?;

        let keys = Key::ALL
            .iter()
            .map(|k| PyString::intern(py, k.name()).unbind())
            .collect();
        Ok(InterpObjects {
            input_type: module.getattr("Input")?.unbind(),
            log_stream: module.getattr("log_stream")?.unbind(),
            errors_stream: module.getattr("errors_stream")?.unbind(),
            file_wrapper: file_wrapper.unbind(),
            start_response: start_response.into_any().unbind(),
            write: write.into_any().unbind(),
            partial: py.import("functools")?.getattr("partial")?.unbind(),
            load_script: module.getattr("load_script")?.unbind(),
            format_exception: module.getattr("format_exception")?.unbind(),
            request_timeout: module.getattr("RequestTimeout")?.unbind(),
            base_environ: base.unbind(),
            event_callbacks: module
                .getattr("event_callbacks")?
                .cast_into::<PyList>()?
                .unbind(),
            active_requests: module
                .getattr("active_requests")?
                .cast_into::<PyDict>()?
                .unbind(),
            keys,
            other_keys: Mutex::new(HashMap::new()),
            scripts: Mutex::new(HashMap::new()),
            module: module.unbind(),
        })
    }

    /// The interned str of a known environ key.
    pub fn key<'py>(&self, py: Python<'py>, k: Key) -> &Bound<'py, PyString> {
        self.keys[k as usize].bind(py)
    }

    /// The str for another variable name, interned and cached (bounded).
    pub fn other_key<'py>(&self, py: Python<'py>, name: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if let Some(k) = locked(&self.other_keys).get(name) {
            return Ok(k.bind(py).clone());
        }
        let key = crate::python::text::str_from_latin1(py, name)?;
        // SAFETY: interning in place needs an owned reference to a str,
        // which `key` is; the C call replaces it with the interned one.
        let key = unsafe {
            let mut p = key.into_ptr();
            pyo3::ffi::PyUnicode_InternInPlace(&mut p);
            Bound::from_owned_ptr(py, p).cast_into_unchecked::<PyString>()
        };
        let mut cache = locked(&self.other_keys);
        if cache.len() < OTHER_KEYS_MAX {
            cache.insert(name.into(), key.clone().unbind());
        }
        Ok(key)
    }

    /// A loaded script module, if its mtime is `mtime` (or any, if None).
    pub fn cached_script<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        mtime: Option<i64>,
    ) -> Option<Bound<'py, PyAny>> {
        let scripts = locked(&self.scripts);
        let s = scripts.get(path)?;
        (mtime.is_none() || mtime == Some(s.mtime)).then(|| s.module.bind(py).clone())
    }

    /// Whether any WSGI script has been loaded (no GIL needed).
    pub fn any_script_loaded(&self) -> bool {
        !locked(&self.scripts).is_empty()
    }

    /// The mtime a script was loaded with, if it is loaded (no GIL needed).
    pub fn script_mtime(&self, path: &str) -> Option<i64> {
        locked(&self.scripts).get(path).map(|s| s.mtime)
    }

    /// Forgets a loaded script module (it is executed again on next use).
    pub fn forget_script(&self, path: &str) {
        let old = locked(&self.scripts).remove(path);
        // Dropped after the lock is released: the decref may run Python code.
        drop(old);
    }

    /// Remembers a loaded script module.
    pub fn cache_script(&self, path: &str, module: Py<PyAny>, mtime: i64) {
        let old = locked(&self.scripts).insert(path.to_string(), Script { module, mtime });
        // Dropped after the lock is released: the decref may run Python code.
        drop(old);
    }

    /// Whether a callback subscribed to this interpreter's events.
    pub fn subscribed(&self, py: Python<'_>) -> bool {
        !self.event_callbacks.bind(py).is_empty()
    }

    /// The text of an exception with its traceback, for the error log.
    pub fn format(&self, py: Python<'_>, err: &PyErr) -> String {
        self.format_exception
            .bind(py)
            .call1((err.value(py), err.traceback(py)))
            .and_then(|s| s.extract::<String>())
            .unwrap_or_else(|_| super::guard::describe(py, err))
    }
}
