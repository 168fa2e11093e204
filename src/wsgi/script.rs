//! WSGI script files: executed once as `_mod_wsgi_<md5(path)>` modules and
//! re-executed when the file changes (WSGIScriptReloading On).
use crate::python::objects::{InterpObjects, Script};
use crate::wsgi::request::lock;
use pyo3::prelude::*;
use std::fmt::Write;

/// `_mod_wsgi_<md5 hex of the path>`, the module name mod_wsgi gives a script.
/// APR's MD5, not Python's hashlib: importing hashlib maps OpenSSL's
/// libcrypto into every child (about 4 MB more RSS each).
fn module_name(path: &str) -> String {
    let mut digest = [0u8; 16];
    // SAFETY: apr_md5 reads `path.len()` bytes and writes 16 into `digest`.
    unsafe { crate::apache::sys::apr_md5(digest.as_mut_ptr(), path.as_ptr().cast(), path.len()) };
    digest.iter().fold(String::from("_mod_wsgi_"), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

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
    let m = objs
        .load_script
        .bind(py)
        .call1((module_name(path), path, mtime, reload))?;
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
