//! WSGI script files: executed once as `_mod_wsgi_<md5(path)>` modules and
//! re-executed when the file changes (WSGIScriptReloading On).
use super::head::Target;
use crate::python::context;
use crate::python::interp::Interp;
use crate::python::objects::InterpObjects;
use crate::python::text::str_from_fs;
use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;
use pyo3::types::PyModule;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// WSGICaseSensitivity of this process (set before Python starts).
static CASE_SENSITIVE: AtomicBool = AtomicBool::new(true);

/// Sets WSGICaseSensitivity for this process's module names.
pub fn set_case_sensitive(on: bool) {
    CASE_SENSITIVE.store(on, Ordering::Relaxed);
}

/// `_mod_wsgi_<md5 hex of the path>`, the module name mod_wsgi gives a script.
/// A pure-Rust MD5, not Python's hashlib: importing hashlib maps OpenSSL's
/// libcrypto into every process (about 4 MB more RSS each).
pub fn module_name(path: &str) -> String {
    name_for(path, CASE_SENSITIVE.load(Ordering::Relaxed))
}

/// The module name of `path`; with WSGICaseSensitivity Off, that of the
/// path in lower case (ASCII, as mod_wsgi's ap_str_tolower), so that one
/// file reached with different cases is one module.
fn name_for(path: &str, case_sensitive: bool) -> String {
    let lowered;
    let path = if case_sensitive {
        path
    } else {
        lowered = path.to_ascii_lowercase();
        &lowered
    };
    let digest = md5::compute(path.as_bytes());
    digest
        .0
        .iter()
        .fold(String::from("_mod_wsgi_"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Why a script could not be loaded: reading or compiling it failed
/// (`compile`), or running its module body raised.
pub struct LoadError {
    pub compile: bool,
    pub err: PyErr,
}

impl From<PyErr> for LoadError {
    fn from(err: PyErr) -> Self {
        LoadError {
            compile: false,
            err,
        }
    }
}

impl LoadError {
    /// Logs the failure as mod_wsgi 6 does: what failed (WSGI0105/0107/0109
    /// against a request for `request_file`, WSGI0106/0108/0110 outside
    /// one), then the exception's header line and traceback.
    pub fn log(&self, py: Python<'_>, interp: &Interp, request_file: Option<&str>, path: &str) {
        let tag = context::script_tag(request_file);
        let context = context::interp(interp.name());
        let system_exit = self.err.is_instance_of::<PySystemExit>(py);
        let first = match (self.compile, system_exit, request_file.is_some()) {
            (true, _, true) => format!(
                "{tag}WSGI0105: Could not read or compile WSGI script '{path}' for {context}."
            ),
            (true, _, false) => {
                format!("WSGI0106: Could not read or compile WSGI script '{path}' for {context}.")
            }
            (false, true, true) => format!(
                "{tag}WSGI0107: SystemExit exception raised when doing exec of Python script file '{path}'."
            ),
            (false, true, false) => format!(
                "WSGI0108: SystemExit exception raised when doing exec of Python script file '{path}'."
            ),
            (false, false, true) => {
                format!("{tag}WSGI0109: Unable to execute Python script file '{path}'.")
            }
            (false, false, false) => {
                format!("WSGI0110: Unable to execute Python script file '{path}'.")
            }
        };
        super::app::log_exception(py, interp, request_file, path, &self.err, &[first]);
    }
}

/// The script's module, loading or reloading it as needed.
pub fn module<'py>(
    py: Python<'py>,
    interp: &Interp,
    path: &str,
    mtime: i64,
    reload: bool,
) -> Result<Bound<'py, PyAny>, LoadError> {
    let objs = interp.objects();
    if let Some(m) = objs.cached_script(py, path, reload.then_some(mtime)) {
        return Ok(m);
    }
    // Slow path: the Python side serialises loading under its own lock.
    let loaded = objs.load_script.bind(py).call1((
        module_name(path),
        path,
        mtime,
        reload,
        context::interp(interp.name()),
    ))?;
    let (m, failed): (Bound<'py, PyAny>, Option<(String, Bound<'py, PyAny>)>) = loaded.extract()?;
    if let Some((phase, exc)) = failed {
        return Err(LoadError {
            compile: phase == "compile",
            err: PyErr::from_value(exc),
        });
    }
    objs.cache_script(path, m.clone().unbind(), mtime);
    Ok(m)
}

/// Whether a loaded, unchanged script must be executed again (daemon mode:
/// the process restarts), asked as mod_wsgi 6 asks it with reloading on:
/// yes if the module's `__mtime__` is gone or differs from the file's, else
/// the script's optional `reload_required(resource)` decides (`resource`:
/// a handler script's requested file, else the script's own path). An
/// exception from it is logged and means no reload (mod_wsgi 6: a failing
/// hook must not restart a daemon on every request). `in_request` runs the
/// hook with the request's logging context set.
pub fn reload_required(
    py: Python<'_>,
    interp: &Interp,
    target: &Target,
    in_request: impl FnOnce(&dyn Fn() -> bool) -> bool,
) -> bool {
    if !target.script_reloading {
        return false;
    }
    let objs = interp.objects();
    let Some(module) = objs.cached_script(py, &target.script, Some(target.mtime)) else {
        return false;
    };
    // Looked up in the module's dict, as mod_wsgi does (a module-level
    // __getattr__ is not asked).
    let Ok(dict) = module.cast::<PyModule>().map(|m| m.dict()) else {
        return false;
    };
    let mtime = dict.get_item("__mtime__").ok().flatten();
    if mtime.and_then(|m| m.extract::<i64>().ok()) != Some(target.mtime) {
        return true;
    }
    let Ok(Some(hook)) = dict.get_item("reload_required") else {
        return false;
    };
    let resource = target.resource.as_deref().unwrap_or(&target.script);
    // Only a script with a hook pays for the request's logging context.
    in_request(&|| {
        let asked = str_from_fs(py, resource.as_bytes())
            .and_then(|path| hook.call1((path,)))
            .and_then(|answer| answer.is_truthy());
        asked.unwrap_or_else(|e| {
            super::app::log_exception(
                py,
                interp,
                Some(target.request_file()),
                &target.script,
                &e,
                &[],
            );
            false
        })
    })
}

/// Makes the next `module` call execute the script again (embedded mode's
/// answer to reload_required).
pub fn forget(py: Python<'_>, objs: &InterpObjects, path: &str) {
    if let Some(m) = objs.cached_script(py, path, None) {
        // load_script re-executes a module whose __mtime__ differs.
        let _ = m.setattr("__mtime__", py.None());
    }
    objs.forget_script(path);
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_names_are_mod_wsgis() {
        // mod_wsgi names a script's module after the MD5 of its path.
        assert_eq!(
            super::module_name("/srv/app.wsgi"),
            format!("_mod_wsgi_{:x}", md5::compute(b"/srv/app.wsgi"))
        );
        assert_eq!(super::module_name("").len(), "_mod_wsgi_".len() + 32);
        assert_eq!(
            super::module_name(""),
            "_mod_wsgi_d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    #[test]
    fn case_insensitive_names_use_the_lower_case_path() {
        assert_eq!(
            super::name_for("/Srv/App.wsgi", false),
            super::name_for("/srv/app.wsgi", true)
        );
        assert_ne!(
            super::name_for("/Srv/App.wsgi", true),
            super::name_for("/srv/app.wsgi", true)
        );
    }
}
