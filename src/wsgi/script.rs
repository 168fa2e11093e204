//! WSGI script files: executed once as `_mod_wsgi_<md5(path)>` modules and
//! re-executed when the file changes (WSGIScriptReloading On).
use crate::python::objects::{InterpObjects, Script};
use crate::wsgi::request::lock;
use pyo3::prelude::*;

/// The script's module, loading or reloading it as needed.
pub fn module<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    path: &str,
    mtime: i64,
    reload: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if let Some(s) = lock(&objs.scripts).get(path) {
        if !reload || s.mtime == mtime {
            return Ok(s.module.bind(py).clone());
        }
    }
    // Slow path: the Python side serialises loading under its own lock.
    let m = objs.load_script.bind(py).call1((path, mtime, reload))?;
    let old = lock(&objs.scripts).insert(
        path.to_string(),
        Script {
            module: m.clone().unbind(),
            mtime,
        },
    );
    drop(old); // decref with the GIL held
    Ok(m)
}
