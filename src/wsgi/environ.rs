//! The WSGI environ of one request: a copy of the interpreter's constant base
//! dict, then the head's variables in order (a later value replaces an
//! earlier one), then what this process adds (wsgi.input, wsgi.errors and the
//! per-thread mod_wsgi.* counters).
use super::head::{Key, RequestHead, Text, VarName};
use crate::python::objects::InterpObjects;
use crate::python::text::{str_from_fs, str_from_latin1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_THREAD_ID: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static THREAD_ID: u32 = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
}

/// This request thread's `mod_wsgi.thread_id`.
pub fn thread_id() -> u32 {
    THREAD_ID.with(|t| *t)
}

/// Variables the head carries for our own use that mod_wsgi 6 keeps out of
/// the environ (its `mod_wsgi.x-*` carriers); request_start is shown as a
/// float by `build`.
fn hidden(k: Key) -> bool {
    matches!(
        k,
        Key::RequestStart | Key::ScriptReloading | Key::EnableSendfile | Key::IgnoreActivity
    )
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
            VarName::Known(k) if hidden(k) => {}
            VarName::Known(k) => env.set_item(objs.key(py, k), value)?,
            VarName::Other(n) => env.set_item(objs.other_key(py, n)?, value)?,
        }
    }
    Ok(())
}

/// Builds the environ (the GIL is held; nothing here blocks). The request's
/// instants are floats in seconds since the epoch, as in mod_wsgi 6
/// (queue_start and daemon_start are 0.0 in embedded mode).
pub fn build<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    head: &RequestHead,
    input: Bound<'py, PyAny>,
    errors: Bound<'py, PyAny>,
    application_start: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let env = variables(py, objs, head)?;
    let seconds = |us: i64| us as f64 / 1e6;
    let request_start = head
        .get(Key::RequestStart)
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        .unwrap_or(0);
    env.set_item(objs.key(py, Key::Input), input)?;
    env.set_item(objs.key(py, Key::Errors), errors)?;
    env.set_item(objs.key(py, Key::RequestStart), seconds(request_start))?;
    let queue_start = seconds(head.hand_off.queue_start);
    env.set_item(objs.key(py, Key::QueueStart), queue_start)?;
    let daemon_start = seconds(head.hand_off.daemon_start);
    env.set_item(objs.key(py, Key::DaemonStart), daemon_start)?;
    env.set_item(objs.key(py, Key::ApplicationStart), application_start)?;
    env.set_item(objs.key(py, Key::ThreadId), THREAD_ID.with(|t| *t))?;
    Ok(env)
}
