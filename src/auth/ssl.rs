//! `mod_ssl.is_https()` and `mod_ssl.var_lookup(name)` in an auth script's
//! environ: mod_ssl's optional functions on the request (0 / None when
//! mod_ssl is not loaded). Each is a functools.partial over a capsule of the
//! request's `RequestRef`, so it raises once the hook has returned.
use super::request::RequestRef;
use crate::apache::{self, sys};
use crate::python::guard::{catch, type_name};
use crate::python::objects::InterpObjects;
use crate::python::text::{latin1_bytes, str_from_latin1};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCapsule, PyString};
use std::ffi::{CStr, CString};
use std::sync::Arc;

const CAPSULE_NAME: &CStr = c"mod_wsgi_rs.auth_request";

fn expired() -> PyErr {
    PyRuntimeError::new_err("request object has expired")
}

/// The request behind a capsule made by [`callables`]; anything else
/// (scripts can call these functions with any object) is an error.
fn request(ctx: &Bound<'_, PyAny>) -> PyResult<Arc<RequestRef>> {
    let cap = ctx.cast::<PyCapsule>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a mod_wsgi request context, not {}",
            type_name(ctx)
        ))
    })?;
    let ptr = cap.pointer_checked(Some(CAPSULE_NAME))?;
    // SAFETY: a capsule with this name holds an Arc<RequestRef> (`callables`),
    // alive as long as the capsule, which `ctx` keeps alive.
    Ok(unsafe { ptr.cast::<Arc<RequestRef>>().as_ref() }.clone())
}

#[pyfunction]
fn _rs_ssl_is_https(py: Python<'_>, ctx: &Bound<'_, PyAny>) -> PyResult<i32> {
    catch(|| {
        let req = request(ctx)?;
        // SAFETY: `with_py` hands out the live request, used by one thread at a time.
        req.with_py(py, |r| unsafe {
            sys::wsgi_rs_ssl_is_https((*r).connection)
        })
        .ok_or_else(expired)
    })
}

#[pyfunction]
fn _rs_ssl_var_lookup<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyString>>> {
    catch(|| {
        let req = request(ctx)?;
        let name = if let Ok(b) = name.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else if name.is_instance_of::<PyString>() {
            latin1_bytes(name, "variable name")?
        } else {
            return Err(PyTypeError::new_err(format!(
                "byte string value expected, value of type {} found",
                type_name(name)
            )));
        };
        let name = CString::new(name)
            .map_err(|_| PyValueError::new_err("embedded null character in variable name"))?;
        // SAFETY: `with_py` hands out the live request, used by one thread
        // at a time; mod_ssl only reads the NUL-terminated name and returns
        // a string in the request's pool (or NULL), copied out before the
        // lock is released.
        let value = req
            .with_py(py, |r| unsafe {
                apache::cbytes(sys::wsgi_rs_ssl_var_lookup(r, name.as_ptr().cast_mut()))
                    .map(<[u8]>::to_vec)
            })
            .ok_or_else(expired)?;
        value.map(|v| str_from_latin1(py, &v)).transpose()
    })
}

/// `(is_https, var_lookup)` bound to `req`, for the environ.
pub fn callables<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    req: &Arc<RequestRef>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let ctx = PyCapsule::new_with_value(py, req.clone(), CAPSULE_NAME)?;
    let module = objs.module.bind(py);
    let partial = objs.partial.bind(py);
    let is_https = partial.call1((wrap_pyfunction!(_rs_ssl_is_https, module)?, &ctx))?;
    let var_lookup = partial.call1((wrap_pyfunction!(_rs_ssl_var_lookup, module)?, &ctx))?;
    Ok((is_https, var_lookup))
}
