//! The WSGI environ of one request: a copy of the interpreter's constant base
//! dict, then the head's variables in order (a later value replaces an
//! earlier one), then what this process adds (wsgi.input, wsgi.errors and the
//! per-thread mod_wsgi.* counters).
use super::head::{Key, RequestHead, Text, VarName};
use crate::python::objects::InterpObjects;
use crate::python::text::{str_from_fs, str_from_latin1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static NEXT_THREAD_ID: AtomicU32 = AtomicU32::new(1);
/// Requests this process has started serving (mod_wsgi.total_requests).
static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_ID: u32 = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
    static THREAD_REQUESTS: Cell<u64> = const { Cell::new(0) };
}

/// This request thread's `mod_wsgi.thread_id`.
pub fn thread_id() -> u32 {
    THREAD_ID.with(|t| *t)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The interpreter's base dict with the head's variables (the environ
/// without what a running request adds; also a dispatch script's environ).
pub fn variables<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    head: &RequestHead,
) -> PyResult<Bound<'py, PyDict>> {
    let env = objs.base_environ.bind(py).copy()?;
    add_variables(py, objs, head, &env)?;
    Ok(env)
}

/// Sets the head's variables in `env`, in order (a later value replaces an
/// earlier one of the same name).
pub fn add_variables(
    py: Python<'_>,
    objs: &InterpObjects,
    head: &RequestHead,
    env: &Bound<'_, PyDict>,
) -> PyResult<()> {
    for (name, value, text) in head.vars() {
        let value = match text {
            Text::Latin1 => str_from_latin1(py, value)?,
            Text::Path => str_from_fs(py, value)?,
        };
        match name {
            VarName::Known(k) => env.set_item(objs.key(py, k), value)?,
            VarName::Other(n) => env.set_item(objs.other_key(py, n)?, value)?,
        }
    }
    Ok(())
}

/// Builds the environ (the GIL is held; nothing here blocks).
pub fn build<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    head: &RequestHead,
    input: Bound<'py, PyAny>,
    errors: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = variables(py, objs, head)?;
    let int_str = |n: i64| -> PyResult<Bound<'py, PyString>> {
        str_from_latin1(py, itoa::Buffer::new().format(n).as_bytes())
    };
    env.set_item(objs.key(py, Key::Input), input)?;
    env.set_item(objs.key(py, Key::Errors), errors)?;
    env.set_item(objs.key(py, Key::ScriptStart), int_str(now_micros())?)?;
    env.set_item(objs.key(py, Key::ThreadId), THREAD_ID.with(|t| *t))?;
    let n = THREAD_REQUESTS.with(|t| t.replace(t.get() + 1));
    env.set_item(objs.key(py, Key::ThreadRequests), n)?;
    let total = TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed);
    env.set_item(objs.key(py, Key::TotalRequests), total)?;
    Ok(env)
}
