//! WSGI script files: executed once as `_mod_wsgi_<md5(path)>` modules and
//! re-executed when the file changes (WSGIScriptReloading On).
use crate::python::objects::InterpObjects;
use pyo3::prelude::*;
use std::fmt::Write;

/// `_mod_wsgi_<md5 hex of the path>`, the module name mod_wsgi gives a script.
/// A pure-Rust MD5, not Python's hashlib: importing hashlib maps OpenSSL's
/// libcrypto into every process (about 4 MB more RSS each).
pub fn module_name(path: &str) -> String {
    let digest = md5::compute(path.as_bytes());
    digest
        .0
        .iter()
        .fold(String::from("_mod_wsgi_"), |mut s, b| {
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
    if let Some(m) = objs.cached_script(py, path, reload.then_some(mtime)) {
        return Ok(m);
    }
    // Slow path: the Python side serialises loading under its own lock.
    let m = objs
        .load_script
        .bind(py)
        .call1((module_name(path), path, mtime, reload))?;
    objs.cache_script(path, m.clone().unbind(), mtime);
    Ok(m)
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
}
