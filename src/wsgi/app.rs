//! One request through the WSGI application, on any transport: load the
//! script, build the environ, call the application, send its iterable and
//! always call close(). Runs with the GIL held; every blocking step releases
//! it.
use super::environ;
use super::events;
use super::exchange::Exchange;
use super::filewrapper;
use super::head::{Key, RequestHead};
use super::output::SendError;
use super::recording;
use super::script;
use super::slow;
use super::start_response::send_blocks;
use super::transport::{Ending, Level, ResponseHead};
use crate::python::context;
use crate::python::interp::Interp;
use crate::python::logging;
use crate::python::objects::InterpObjects;
use crate::python::text::type_name;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::sync::Arc;

/// Lists and tuples up to this size are copied and ended without releasing
/// the GIL (the transport finishes sending once the GIL is released for
/// good); larger ones are sent without copying, with the GIL released.
const STAGE_MAX: usize = 256 * 1024;

/// What the transport answers when the application produced no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoResponse {
    /// The script has no such callable (mod_wsgi's WSGI0089).
    NotFound,
    /// The script or the application failed before its response started.
    Error,
}

/// Why the body could not be completed normally.
enum Failure {
    /// Python raised (the app, its iterable, or our checks).
    Error(PyErr),
    ClientGone,
    /// Output started with headers that fail then (a bad Content-Length).
    InvalidHead,
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Error(e)
    }
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotStarted => Failure::Error(PyRuntimeError::new_err(
                "start_response() must be called before response content is produced",
            )),
            SendError::ClientGone | SendError::Finished => Failure::ClientGone,
            SendError::InvalidHead => Failure::InvalidHead,
        }
    }
}

/// Serves the request that `ex` carries. Ok: a response was produced (maybe
/// staged in the transport, or cut short by an error after it started).
pub fn serve(py: Python<'_>, ex: &Arc<Exchange>, head: &RequestHead) -> Result<(), NoResponse> {
    logging::set_current(py, Some(ex.clone()));
    let result = run(py, ex, head);
    // Streamed blocks the writer has not sent yet go out before the request
    // ends (and before its staged end).
    let pending = ex.queue().scheduled;
    if pending && py.detach(|| ex.wait_queue()) == Err(SendError::ClientGone) {
        ex.log_lines(py, Level::Info, &[&client_gone(&head.target.script)]);
    }
    logging::set_current(py, None);
    result
}

/// script::reload_required, its log lines in the request's context (the
/// caller reloads the script or restarts the process).
pub fn must_reload(py: Python<'_>, ex: &Arc<Exchange>, head: &RequestHead) -> bool {
    script::reload_required(py, ex.interp, &head.target, |ask| {
        logging::set_current(py, Some(ex.clone()));
        let reload = ask();
        logging::set_current(py, None);
        reload
    })
}

/// The info line for a client that went away mid-response.
pub fn client_gone(script: &str) -> String {
    format!("Client closed the connection while WSGI script '{script}' was responding.")
}

/// Logs an exception with its traceback, after `first` lines, under
/// mod_wsgi 6's header line (WSGI0174, or WSGI0175 for SystemExit) for
/// WSGI script `script`, tagged with the request's file when there is a
/// request. An extension module that refuses this sub-interpreter gets a
/// line of its own that says what to do.
pub fn log_exception(
    py: Python<'_>,
    interp: &Interp,
    request_file: Option<&str>,
    script: &str,
    err: &PyErr,
    first: &[String],
) {
    let objs = interp.objects();
    let mut lines = first.to_vec();
    lines.push(context::exception_header(
        py,
        err,
        request_file,
        script,
        interp.name(),
    ));
    if let Some(hint) = refusal_hint(py, interp, err) {
        lines.push(hint);
    }
    logging::log_error_text(py, &lines, &objs.format(py, err));
}

/// The advice for an ImportError raised by an extension module that cannot
/// live in this sub-interpreter.
fn refusal_hint(py: Python<'_>, interp: &Interp, err: &PyErr) -> Option<String> {
    if interp.name().is_empty() {
        return None;
    }
    let found = interp
        .objects()
        .module
        .bind(py)
        .call_method1("refused_extension", (err.value(py),))
        .ok()?;
    let (module, reason): (String, String) = found.extract().ok()?;
    let gil = if interp.own_gil() {
        " (it has its own GIL: WSGIPerInterpreterGIL On)"
    } else {
        ""
    };
    Some(format!(
        "Extension module '{module}' cannot be loaded in the sub-interpreter of application group '{}'{gil}: {reason}. Add 'WSGIApplicationGroup %{{GLOBAL}}' (or application-group=%{{GLOBAL}}) so that this application runs in the main interpreter.",
        interp.name()
    ))
}

fn run(py: Python<'_>, ex: &Arc<Exchange>, head: &RequestHead) -> Result<(), NoResponse> {
    let objs = ex.interp.objects();
    let target = &head.target;
    let module = script::module(
        py,
        ex.interp,
        &target.script,
        target.mtime,
        target.script_reloading,
    )
    .map_err(|e| {
        e.log(py, ex.interp, Some(target.request_file()), &target.script);
        NoResponse::Error
    })?;
    let Ok(app) = module.getattr(target.callable.as_str()) else {
        ex.log_lines(
            py,
            Level::Error,
            &[&format!(
                "[script {}] WSGI0089: Target WSGI script '{}' does not contain WSGI application '{}'.",
                target.request_file(),
                target.script,
                target.callable
            )],
        );
        return Err(NoResponse::NotFound);
    };
    let application_start = events::now();
    let prepare = || -> PyResult<_> {
        let capsule = ex.capsule(py)?;
        let input = objs.input_type.bind(py).call1((&capsule,))?;
        let errors = objs.errors_stream.bind(py).call1((&capsule,))?;
        let environ = environ::build(py, objs, head, input, errors, application_start)?;
        if head.request_rec != 0 {
            let cap = super::request_rec::capsule(py, head.request_rec)?;
            environ.set_item(super::request_rec::KEY, cap)?;
        }
        let start_response = objs
            .partial
            .bind(py)
            .call1((objs.start_response.bind(py), &capsule))?;
        Ok((environ, start_response))
    };
    let (environ, start_response) = match prepare() {
        Ok(prepared) => prepared,
        Err(e) => return fail(py, ex, Failure::Error(e)),
    };
    recording::begin();
    let inflight = crate::telemetry::request_begin(head, request_start(head, application_start));
    events::begin(py, ex, objs, &environ);
    let app = events::request_started(py, ex, objs, &environ, app, head, application_start);
    let result = respond(py, ex, objs, &app, &environ, start_response);
    crate::python::logging::flush_errors(py, ex);
    events::end(
        py,
        ex,
        objs,
        &environ,
        application_start,
        result == Err(NoResponse::Error),
    );
    if recording::enabled() || slow::active() {
        finished(
            py,
            ex,
            head,
            application_start,
            result == Err(NoResponse::Error),
            inflight,
        );
    }
    result
}

/// When Apache read the request (µs since the epoch), else when the
/// application was called.
fn request_start(head: &RequestHead, application_start: f64) -> i64 {
    head.get(Key::RequestStart)
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or((application_start * 1e6) as i64)
}

/// Adds the finished request to `start_recording_metrics()`'s figures and
/// logs it if it was slow (WSGISlowRequests).
fn finished(
    py: Python<'_>,
    ex: &Exchange,
    head: &RequestHead,
    application_start: f64,
    failed: bool,
    inflight: Option<crate::telemetry::slow::InFlight>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let micros = |key| {
        head.get(key)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let (status, (output_bytes, output_writes)) = {
        let inner = ex.lock_py(py);
        (inner.output.status_code(), inner.output.output_counts())
    };
    let f = recording::Finished {
        request_start: micros(Key::RequestStart),
        queue_start: head.hand_off.queue_start,
        daemon_start: head.hand_off.daemon_start,
        application_start: (application_start * 1e6) as i64,
        application_finish: recording::now_us(),
        status: if failed { 500 } else { status.unwrap_or(500) },
        input_bytes: ex.input_bytes.load(Relaxed),
        input_reads: ex.input_reads.load(Relaxed),
        input_read_us: ex.input_micros.load(Relaxed),
        output_bytes,
        output_writes,
    };
    recording::finish(&f);
    let from = if f.request_start > 0 {
        f.request_start
    } else {
        f.application_start
    };
    let elapsed = f.application_finish - from;
    let application = f.application_finish - f.application_start;
    if let Some(request) = inflight {
        let outcome = crate::telemetry::slow::Outcome {
            status: f.status,
            server_us: (f.application_start - from).max(0),
            application_us: application,
            input_bytes: f.input_bytes,
            input_reads: f.input_reads,
            output_bytes: f.output_bytes,
            output_writes: f.output_writes,
        };
        crate::telemetry::request_end(request, elapsed, outcome);
    }
    if let Some(line) = slow::report(head, f.status, elapsed, application) {
        ex.log_lines(py, Level::Warning, &[&line]);
    }
}

/// Calls the application and sends its response.
fn respond(
    py: Python<'_>,
    ex: &Arc<Exchange>,
    objs: &InterpObjects,
    app: &Bound<'_, PyAny>,
    environ: &Bound<'_, PyDict>,
    start_response: Bound<'_, PyAny>,
) -> Result<(), NoResponse> {
    let result = match app.call1((environ, start_response)) {
        Ok(result) => result,
        Err(e) => return fail(py, ex, Failure::Error(e)),
    };
    let body = send_body(py, ex, objs, &result);
    // close() is always called: on success, on errors and on disconnects.
    let closed = match result.getattr_opt("close") {
        Ok(Some(close)) => close.call0().map(drop),
        Ok(None) => Ok(()),
        Err(e) => {
            let script = ex.lock_py(py).output.script().to_string();
            let line = format!("[script {script}] WSGI0194: Lookup of 'close' attribute on WSGI response iterable raised an exception.");
            ex.log_lines(py, Level::Error, &[&line]);
            Err(e)
        }
    };
    // A RequestTimeout out of close() is dropped silently, as in mod_wsgi 6.
    let closed = closed.or_else(|e| match is_timeout(py, objs, &e) {
        true => Ok(()),
        false => Err(e),
    });
    match (body, closed) {
        (Ok(ended), Ok(())) => finish(py, ex, ended),
        // The whole body went out: complete the response, log the error.
        (Ok(ended), Err(e)) => {
            app_exception(py, ex, &e);
            finish(py, ex, ended)
        }
        (Err(f), closed) => {
            if let Err(e) = closed {
                app_exception(py, ex, &e);
            }
            fail(py, ex, f)
        }
    }
}

/// Logs an exception the application raised and publishes request_exception.
fn app_exception(py: Python<'_>, ex: &Arc<Exchange>, e: &PyErr) {
    let script = ex.lock_py(py).output.script().to_string();
    log_exception(py, ex.interp, Some(&script), &script, e, &[]);
    events::request_exception(py, ex, e);
}

/// Ends the response after the iterable was exhausted.
fn finish(py: Python<'_>, ex: &Arc<Exchange>, ended: bool) -> Result<(), NoResponse> {
    if ended {
        return Ok(());
    }
    end_staged(py, ex, &[])
        .map_err(Failure::from)
        .or_else(|f| fail(py, ex, f))
}

/// The last chunks and the end of the response, staged by the transport
/// without blocking, so the GIL stays held.
fn end_staged(py: Python<'_>, ex: &Exchange, chunks: &[&[u8]]) -> Result<(), SendError> {
    let mut inner = ex.lock_py(py);
    let (t, output) = inner.output()?;
    output.end(t, chunks, Ending::Staged)
}

/// Turns a failure into the answer: a 500 if nothing went out yet, else a
/// cut connection (the client must not mistake it for a full response).
fn fail(py: Python<'_>, ex: &Arc<Exchange>, f: Failure) -> Result<(), NoResponse> {
    let script = ex.lock_py(py).output.script().to_string();
    match f {
        Failure::ClientGone => {
            ex.log_lines(py, Level::Info, &[&client_gone(&script)]);
            Ok(())
        }
        Failure::InvalidHead => {
            let e = super::start_response::invalid_head(py, ex);
            fail(py, ex, Failure::Error(e))
        }
        Failure::Error(e) if is_timeout(py, ex.interp.objects(), &e) => timed_out(py, ex),
        Failure::Error(e) => {
            log_exception(py, ex.interp, Some(&script), &script, &e, &[]);
            events::request_exception(py, ex, &e);
            // What the application produced before the error goes out first.
            let pending = ex.queue().scheduled;
            if pending {
                let _ = py.detach(|| ex.wait_queue());
            }
            let mut inner = ex.lock_py(py);
            match inner.parts() {
                (Some(t), _, output) if output.headers_sent() => {
                    output.abort(t);
                    Ok(())
                }
                (None, ..) => Ok(()),
                _ => Err(NoResponse::Error),
            }
        }
    }
}

fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "response iterable must yield bytes, not {}",
        type_name(item)
    ))
}

/// Sends the response iterable. Ok(true) if the response was ended already.
fn send_body(
    py: Python<'_>,
    ex: &Arc<Exchange>,
    objs: &InterpObjects,
    result: &Bound<'_, PyAny>,
) -> Result<bool, Failure> {
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        send_sequence(py, ex, result)?;
        return Ok(true);
    }
    if result.get_type().is(objs.file_wrapper.bind(py)) {
        if let Some(res) = filewrapper::try_send(py, ex, result) {
            res?;
            return Ok(true);
        }
    }
    for item in result.try_iter()? {
        let item = item?;
        let bytes = item.cast::<PyBytes>().map_err(|_| not_bytes(&item))?;
        if !bytes.as_bytes().is_empty() {
            send_blocks(py, ex, &[bytes.as_bytes()])?;
        }
    }
    Ok(false)
}

/// Lists and tuples: everything at once and the end, so the transport can
/// give the response a Content-Length and keep the connection alive.
fn send_sequence(
    py: Python<'_>,
    ex: &Arc<Exchange>,
    result: &Bound<'_, PyAny>,
) -> Result<(), Failure> {
    let items: Vec<Bound<'_, PyBytes>> = result
        .try_iter()?
        .map(|i| {
            i.and_then(|i| {
                i.cast_into::<PyBytes>()
                    .map_err(|e| not_bytes(e.into_inner().as_any()))
            })
        })
        .collect::<PyResult<_>>()?;
    let chunks: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
    // close() of a list is a no-op, so ending the response before it is safe.
    if chunks.iter().map(|c| c.len()).sum::<usize>() <= STAGE_MAX {
        return Ok(end_staged(py, ex, &chunks)?);
    }
    let sent = py.detach(|| {
        ex.wait_queue()?;
        let mut inner = ex.lock();
        let (t, output) = inner.output()?;
        output.end(t, &chunks, Ending::Now)
    });
    Ok(sent?)
}

/// Whether `e` is the interpreter's mod_wsgi.RequestTimeout (raised by the
/// application or injected by interrupt-timeout).
fn is_timeout(py: Python<'_>, objs: &InterpObjects, e: &PyErr) -> bool {
    e.is_instance(py, objs.request_timeout.bind(py))
}

/// A RequestTimeout reached us: no traceback and no request_exception, as
/// in mod_wsgi 6. Before the headers went out the client gets an empty 504
/// (whatever start_response() recorded); after, the response is cut. The
/// thread serves on either way.
fn timed_out(py: Python<'_>, ex: &Arc<Exchange>) -> Result<(), NoResponse> {
    if ex.queue().scheduled {
        let _ = py.detach(|| ex.wait_queue());
    }
    let sent = ex.lock_py(py).output.headers_sent();
    let line = if sent {
        "Request interrupted by RequestTimeout after headers sent; response truncated."
    } else {
        "Request interrupted by RequestTimeout; thread recovered."
    };
    ex.log_lines(py, Level::Info, &[line]);
    let mut inner = ex.lock_py(py);
    match inner.parts() {
        (Some(t), _, output) if sent => {
            output.abort(t);
            Ok(())
        }
        (Some(_), _, output) => {
            output.replace_head(ResponseHead {
                code: 504,
                status: b"504 Gateway Timeout".to_vec(),
                ..Default::default()
            });
            drop(inner);
            // A client already gone is no error of the application's.
            let _ = end_staged(py, ex, &[]);
            Ok(())
        }
        (None, ..) => Ok(()),
    }
}
