//! mod_wsgi's events (`mod_wsgi.subscribe_events`) and per-request data
//! (`mod_wsgi.request_data()`, `mod_wsgi.active_requests`). The payloads are
//! built by the helper module (helpers.py), which is called only when the
//! interpreter's `event_callbacks` list is not empty: without subscribers a
//! request costs one dict, one insertion into `active_requests` and its
//! removal.
use super::exchange::{Exchange, RequestPy};
use super::head::{Key, RequestHead};
use crate::python::logging;
use crate::python::objects::InterpObjects;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::Ordering;

/// Seconds since the epoch, as the events report times.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Logs an error of the event machinery itself (a helper failed).
fn log_failure(py: Python<'_>, objs: &InterpObjects, event: &str, err: &PyErr) {
    let first = format!("Unable to publish the '{event}' event.");
    logging::log_error_text(py, &[first], &objs.format(py, err));
}

/// Calls the helper `name` when the interpreter has subscribers.
fn publish<'py>(
    py: Python<'py>,
    objs: &InterpObjects,
    event: &str,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> Option<Bound<'py, PyAny>> {
    let res = objs
        .module
        .bind(py)
        .getattr(name)
        .and_then(|f| f.call1(args));
    res.map_err(|e| log_failure(py, objs, event, &e)).ok()
}

/// The request starts: its data dict, registered in `active_requests`
/// under its id.
pub fn begin(py: Python<'_>, ex: &Exchange, objs: &InterpObjects, environ: &Bound<'_, PyDict>) {
    let data = PyDict::new(py);
    let id = environ
        .get_item(objs.key(py, Key::RequestId))
        .ok()
        .flatten();
    if let Some(id) = &id {
        if let Err(e) = objs.active_requests.bind(py).set_item(id, &data) {
            log_failure(py, objs, "request_started", &e);
        }
    }
    let old = ex.set_request_py(
        py,
        Some(RequestPy {
            id: id.map(Bound::unbind),
            data: data.unbind(),
        }),
    );
    drop(old);
}

/// request_started: returns the application to call (a callback may
/// replace it).
pub fn request_started<'py>(
    py: Python<'py>,
    ex: &Exchange,
    objs: &InterpObjects,
    environ: &Bound<'py, PyDict>,
    app: Bound<'py, PyAny>,
    head: &RequestHead,
    application_start: f64,
) -> Bound<'py, PyAny> {
    if !objs.subscribed(py) {
        return app;
    }
    let Some((id, data)) = ex.request_py(py) else {
        return app;
    };
    // Daemon mode: the Apache child's pid, its connects and restarts, and
    // when the request was queued and taken (seconds).
    let hand_off = &head.hand_off;
    let hand_off = (hand_off.server_pid != 0).then_some((
        hand_off.server_pid,
        hand_off.connects,
        hand_off.restarts,
        hand_off.queue_start as f64 / 1e6,
        hand_off.daemon_start as f64 / 1e6,
    ));
    let args = (
        id,
        data,
        environ,
        &app,
        head.target.callable.as_str(),
        application_start,
        hand_off,
    );
    publish(py, objs, "request_started", "_request_started", args).unwrap_or(app)
}

/// response_started, from start_response().
pub fn response_started(
    py: Python<'_>,
    ex: &Exchange,
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    exc_info: Option<&Bound<'_, PyAny>>,
) {
    let objs = ex.interp.objects();
    if !objs.subscribed(py) {
        return;
    }
    let Some((id, data)) = ex.request_py(py) else {
        return;
    };
    let exc_info = exc_info
        .cloned()
        .unwrap_or_else(|| py.None().into_bound(py));
    let args = (id, data, status, headers, exc_info);
    publish(py, objs, "response_started", "_response_started", args);
}

/// request_exception, after the application's exception was logged.
pub fn request_exception(py: Python<'_>, ex: &Exchange, err: &PyErr) {
    let objs = ex.interp.objects();
    if !objs.subscribed(py) {
        return;
    }
    let Some((id, data)) = ex.request_py(py) else {
        return;
    };
    let args = (id, data, err.value(py), err.traceback(py));
    publish(py, objs, "request_exception", "_request_exception", args);
}

/// The request is over: request_finished, then its data leaves
/// `active_requests` and `request_data()`.
pub fn end(
    py: Python<'_>,
    ex: &Exchange,
    objs: &InterpObjects,
    environ: &Bound<'_, PyDict>,
    application_start: f64,
    failed: bool,
) {
    let Some((id, data)) = ex.request_py(py) else {
        return;
    };
    if objs.subscribed(py) {
        let (code, (length, writes)) = {
            let inner = ex.lock_py(py);
            (inner.output.status_code(), inner.output.output_counts())
        };
        let status = if failed { 500 } else { code.unwrap_or(500) };
        let args = (
            &id,
            &data,
            environ,
            application_start,
            status,
            ex.input_reads.load(Ordering::Relaxed),
            ex.input_bytes.load(Ordering::Relaxed),
            ex.input_micros.load(Ordering::Relaxed) as f64 / 1e6,
            length,
            writes,
        );
        publish(py, objs, "request_finished", "_request_finished", args);
    }
    if let Some(id) = &id {
        let active = objs.active_requests.bind(py);
        // Only this request's entry (a callback may have replaced it).
        if active
            .get_item(id)
            .ok()
            .flatten()
            .is_some_and(|d| d.is(&data))
        {
            let _ = active.del_item(id);
        }
    }
    let old = ex.set_request_py(py, None);
    drop(old);
}

/// process_stopping, in one interpreter, with mod_wsgi's reason name.
pub fn process_stopping(py: Python<'_>, objs: &InterpObjects, reason: &str) {
    publish(py, objs, "process_stopping", "_process_stopping", (reason,));
}

/// process_signal (a daemon process got SIGHUP or SIGUSR2), in one
/// interpreter: to subscribe_events, then subscribe_signals callbacks.
pub fn process_signal(py: Python<'_>, objs: &InterpObjects, signum: i32, signame: &str) {
    publish(
        py,
        objs,
        "process_signal",
        "_process_signal",
        (signum, signame),
    );
}

/// mod_wsgi.request_data(): the dict of the request this thread serves.
#[pyfunction]
pub fn request_data<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    crate::python::guard::catch(|| {
        logging::current()
            .and_then(|ex| ex.request_py(py))
            .map(|(_, data)| data)
            .ok_or_else(|| PyRuntimeError::new_err("no active request for thread"))
    })
}
