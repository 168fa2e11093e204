//! One request through the WSGI application (runs with the GIL held; every
//! blocking Apache call inside releases it).
use super::environ::{self, RequestInfo};
use super::filewrapper;
use super::request::{lock, RequestCtx};
use super::response::{send_detached, SendError};
use super::script;
use crate::apache::{brigade::Brigade, log, sys};
use crate::python::interp::Interp;
use crate::python::logging;
use crate::python::objects::InterpObjects;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::sync::Arc;

/// Why the response could not be completed normally.
enum Failure {
    /// Python raised (the app, its iterable, close(), or our validation).
    Error(PyErr),
    ClientGone,
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::Error(e)
    }
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::ClientGone => Failure::ClientGone,
            SendError::NotStarted => Failure::Error(PyRuntimeError::new_err(
                "the application returned a response without calling start_response()",
            )),
            SendError::Finished => Failure::ClientGone,
        }
    }
}

/// Lists and tuples up to this size are copied into the brigade and passed
/// after the GIL is released (one GIL acquisition per request); larger ones
/// are passed without copying, with the GIL released meanwhile.
const STAGE_MAX: usize = 256 * 1024;

/// What Python left to do for a request: the handler status and, maybe, the
/// end of the response, to pass once the GIL is released.
pub struct Served {
    status: i32,
    staged: Option<Brigade>,
}

impl Served {
    /// Passes the staged end of the response (call without the GIL); returns
    /// the handler status.
    ///
    /// # Safety
    /// `r` must be the live request that was served.
    pub unsafe fn complete(self, r: *mut sys::request_rec, script: &str) -> i32 {
        if let Some(mut bb) = self.staged {
            if !bb.pass() {
                // SAFETY: r is live (caller's contract).
                unsafe { log_client_gone(r, script) };
            }
        }
        self.status
    }
}

/// Serves `r` with the application in `info.script`.
///
/// # Safety
/// `r` must be the live request being handled on this thread.
pub unsafe fn serve(
    py: Python<'_>,
    interp: &'static Interp,
    r: *mut sys::request_rec,
    info: &RequestInfo,
    mtime: i64,
) -> Served {
    let objs = interp.objects();
    // SAFETY: r is live until we return; the guard detaches the context.
    let ctx = unsafe { RequestCtx::new(r, &info.script) };
    let guard = Detach(ctx.clone());
    logging::set_request(r);
    // SAFETY: r is live for the whole handler call.
    let status = match unsafe { run(py, objs, &ctx, r, info, mtime) } {
        Ok(()) => sys::OK,
        Err(e) => e,
    };
    let staged = lock(&ctx.output).take_staged();
    drop(guard);
    Served { status, staged }
}

/// Ends a request's link to Apache when dropped, also when a panic unwinds:
/// Python objects the application kept (wsgi.input, write) must never reach
/// a finished request.
struct Detach(Arc<RequestCtx>);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0.finish();
        logging::set_request(std::ptr::null());
    }
}

unsafe fn run(
    py: Python<'_>,
    objs: &InterpObjects,
    ctx: &Arc<RequestCtx>,
    r: *mut sys::request_rec,
    info: &RequestInfo,
    mtime: i64,
) -> Result<(), i32> {
    let log_error = |err: &PyErr, first: Option<&str>| {
        // SAFETY: r is live for the whole request.
        unsafe {
            if let Some(m) = first {
                log::rerror(r, log::ERR, m);
            }
            log::rerror(
                r,
                log::ERR,
                &format!(
                    "Exception occurred processing WSGI script '{}'.",
                    info.script
                ),
            );
            log::lines(r, log::ERR, &objs.format(py, err));
        }
    };

    let module =
        script::module(py, objs, &info.script, mtime, info.script_reloading).map_err(|e| {
            log_error(
                &e,
                Some(&format!(
                    "Failed to exec Python script file '{}'.",
                    info.script
                )),
            );
            sys::HTTP_INTERNAL_SERVER_ERROR
        })?;
    let app = module.getattr(info.callable.as_str()).map_err(|_| {
        // SAFETY: r is live.
        unsafe {
            log::rerror(
                r,
                log::ERR,
                &format!(
                    "Target WSGI script '{}' does not contain WSGI application '{}'.",
                    info.script, info.callable
                ),
            )
        };
        // 404, as mod_wsgi answers (its WSGI0089).
        sys::HTTP_NOT_FOUND
    })?;

    let setup = || -> PyResult<(Bound<'_, PyAny>, Bound<'_, PyAny>)> {
        // SAFETY: r is the live request on this thread.
        let environ = unsafe { environ::build(py, objs, r, info)? };
        let capsule = ctx.capsule(py)?;
        environ.set_item(
            objs.keys.input.bind(py),
            objs.input_type.bind(py).call1((&capsule,))?,
        )?;
        let start_response = objs
            .partial
            .bind(py)
            .call1((objs.start_response.bind(py), &capsule))?;
        Ok((environ.into_any(), start_response))
    };
    let (environ, start_response) = setup().map_err(|e| {
        log_error(&e, None);
        sys::HTTP_INTERNAL_SERVER_ERROR
    })?;

    let result = match app.call1((environ, start_response)) {
        Ok(result) => result,
        Err(e) => return Err(fail(ctx, Failure::Error(e), &log_error)),
    };
    let body = send_body(py, objs, ctx, &result);
    // close() is always called: on success, on errors and on disconnects.
    let closed = match result.getattr_opt("close") {
        Ok(Some(close)) => close.call0().map(drop),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    let outcome = body.and_then(|finished| {
        closed?;
        if !finished {
            lock(&ctx.output).stage_final(&[])?;
        }
        Ok(())
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(f) => Err(fail(ctx, f, &log_error)),
    }
}

/// Turns a failure into the handler's answer: 500 if nothing was sent yet,
/// else a cut connection (the client must not mistake it for a full response).
fn fail(ctx: &Arc<RequestCtx>, f: Failure, log_error: &dyn Fn(&PyErr, Option<&str>)) -> i32 {
    match f {
        Failure::ClientGone => {
            let out = lock(&ctx.output);
            let r = out.request();
            if !r.is_null() {
                // SAFETY: r is live until the handler returns.
                unsafe { log_client_gone(r, &out.script) };
            }
            sys::OK
        }
        Failure::Error(e) => {
            // Formatting the traceback runs Python: not under the output lock.
            log_error(&e, None);
            let mut out = lock(&ctx.output);
            if out.headers_sent {
                out.abort();
                sys::OK
            } else {
                sys::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// # Safety
/// `r` must be a live request.
unsafe fn log_client_gone(r: *mut sys::request_rec, script: &str) {
    // SAFETY: forwarded contract.
    unsafe {
        log::rerror(
            r,
            log::INFO,
            &format!("Client closed the connection while WSGI script '{script}' was responding."),
        )
    };
}

fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    let ty = item
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    PyTypeError::new_err(format!(
        "sequence of byte string values expected, value of type {ty} found"
    ))
}

/// Sends the response iterable. Ok(true) if EOS went out already.
fn send_body(
    py: Python<'_>,
    objs: &InterpObjects,
    ctx: &Arc<RequestCtx>,
    result: &Bound<'_, PyAny>,
) -> Result<bool, Failure> {
    // Lists and tuples: everything in one brigade with EOS, so Apache can set
    // Content-Length itself and keep the connection alive.
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
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
            lock(&ctx.output).stage_final(&chunks)?;
        } else {
            send_detached(py, ctx, &chunks, false, true)?;
        }
        return Ok(true);
    }
    if result.get_type().is(objs.file_wrapper.bind(py)) {
        if let Some(res) = filewrapper::try_send(py, ctx, result) {
            res?;
            return Ok(true);
        }
    }
    for item in result.try_iter()? {
        let item = item?;
        let bytes = item.cast::<PyBytes>().map_err(|_| not_bytes(&item))?;
        let data = bytes.as_bytes();
        if data.is_empty() {
            continue;
        }
        send_detached(py, ctx, &[data], true, false)?;
    }
    Ok(false)
}
