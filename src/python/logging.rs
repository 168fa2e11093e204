//! Python output → the error log, one entry per line, always written with
//! the GIL released (a piped or slow ErrorLog must not stall Python).
//!
//! - `wsgi.errors` is one object per request: it logs in the request's
//!   context and raises once the request is over, as mod_wsgi's does.
//! - `sys.stdout`/`sys.stderr` are process-wide: their lines carry the
//!   request's context when written by the thread serving a request.
use crate::apache::log;
use crate::wsgi::exchange::Exchange;
use crate::wsgi::transport::Level;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    /// Partial (not yet newline-terminated) stdout/stderr text of this thread.
    static PENDING: RefCell<[String; 2]> = const { RefCell::new([String::new(), String::new()]) };
    /// The request this thread is serving, if any.
    static CURRENT: RefCell<Option<Arc<Exchange>>> = const { RefCell::new(None) };
}

/// Marks the request this thread serves (None when it is done, after the
/// thread's partial lines were written out in its context).
pub fn set_current(py: Python<'_>, ex: Option<Arc<Exchange>>) {
    if ex.is_none() {
        for s in 0..2 {
            flush_stream(py, s);
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = ex);
}

/// Writes lines in this thread's request context, or the server's.
fn emit(py: Python<'_>, level: Level, lines: &[&str]) {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(ex) => ex.log_lines(py, level, lines),
        None => py.detach(|| lines.iter().for_each(|l| log::server(level, l))),
    }
}

/// Appends `text` to `pending` and returns the complete lines it ended.
fn complete_lines(pending: &mut String, text: &str) -> Option<String> {
    pending.push_str(text);
    let last_nl = pending.rfind('\n')?;
    let rest = pending.split_off(last_nl + 1);
    let mut done = std::mem::replace(pending, rest);
    done.pop();
    Some(done)
}

fn stream_index(stream: u8) -> usize {
    usize::from(stream).min(1)
}

fn flush_stream(py: Python<'_>, stream: u8) {
    if let Some(text) = PENDING.with(|p| take_line(&mut p.borrow_mut()[stream_index(stream)])) {
        emit(py, Level::Error, &[&text]);
    }
}

/// mod_wsgi 6's error for a wsgi.errors used after its request.
fn expired(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{what}() called on wsgi.errors after request completed"
    ))
}

/// Updates the partial line of a stream with `f` and logs the text it
/// returns: the request's wsgi.errors (`ctx` its capsule; raises once the
/// request is over) or this thread's stdout/stderr (`ctx` None).
fn with_pending(
    py: Python<'_>,
    ctx: &Bound<'_, PyAny>,
    stream: u8,
    what: &str,
    f: impl FnOnce(&mut String) -> Option<String>,
) -> PyResult<()> {
    if ctx.is_none() {
        if let Some(done) = PENDING.with(|p| f(&mut p.borrow_mut()[stream_index(stream)])) {
            emit(py, Level::Error, &done.split('\n').collect::<Vec<_>>());
        }
        return Ok(());
    }
    let ex = Exchange::from_capsule(ctx)?;
    let done = {
        let mut inner = ex.lock_py(py);
        if inner.transport().is_none() {
            // Nothing to flush is no error (a wrapper freed after its request).
            if what == "flush" && inner.errors_line.is_empty() {
                return Ok(());
            }
            return Err(expired(what));
        }
        f(&mut inner.errors_line)
    };
    if let Some(done) = done {
        ex.log_lines(py, Level::Error, &done.split('\n').collect::<Vec<_>>());
    }
    Ok(())
}

/// Logs what the request's wsgi.errors left without a newline (at its end,
/// as mod_wsgi's closing of it does).
pub fn flush_errors(py: Python<'_>, ex: &Exchange) {
    let text = take_line(&mut ex.lock_py(py).errors_line);
    if let Some(text) = text {
        ex.log_lines(py, Level::Error, &[&text]);
    }
}

/// The whole partial line, if there is one.
fn take_line(pending: &mut String) -> Option<String> {
    Some(std::mem::take(pending)).filter(|t| !t.is_empty())
}

/// Log.write(): `ctx` is the request's capsule for wsgi.errors, None for
/// sys.stdout (stream 0) and sys.stderr (stream 1); `what` names the
/// method in the error for a request that is over.
#[pyfunction]
#[pyo3(signature = (ctx, stream, text, what=None))]
pub fn _rs_log_write(
    py: Python<'_>,
    ctx: &Bound<'_, PyAny>,
    stream: u8,
    text: &Bound<'_, PyAny>,
    what: Option<&str>,
) -> PyResult<()> {
    super::guard::catch(|| {
        let text = text_arg(text)?;
        let what = if what == Some("writelines") {
            "writelines"
        } else {
            "write"
        };
        with_pending(py, ctx, stream, what, |p| complete_lines(p, &text))
    })
}

/// A str argument as Rust text (TypeError naming the type otherwise).
fn text_arg(text: &Bound<'_, PyAny>) -> PyResult<String> {
    match text.cast::<PyString>() {
        Ok(s) => Ok(s.to_string_lossy().into_owned()),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "str expected, value of type {} found",
            super::guard::type_name(text)
        ))),
    }
}

#[pyfunction]
pub fn _rs_log_flush(py: Python<'_>, ctx: &Bound<'_, PyAny>, stream: u8) -> PyResult<()> {
    super::guard::catch(|| with_pending(py, ctx, stream, "flush", take_line))
}

/// mod_wsgi.LogHandler's Apache level for a Python level (what lies between
/// the standard levels goes down to the next one, as mod_wsgi 6 does).
fn handler_level(levelno: i64) -> Level {
    match levelno {
        50.. => Level::Crit,
        40..=49 => Level::Error,
        30..=39 => Level::Warning,
        20..=29 => Level::Info,
        _ => Level::Debug,
    }
}

/// mod_wsgi.LogHandler.emit(): each line of a formatted record, at the
/// Apache level of `levelno`, with the caller's file and line (%F), in
/// the context of the request this thread serves, if any.
#[pyfunction]
pub fn _rs_log_record(
    py: Python<'_>,
    levelno: i64,
    text: &Bound<'_, PyAny>,
    file: &Bound<'_, PyAny>,
    line: &Bound<'_, PyAny>,
) -> PyResult<()> {
    super::guard::catch(|| {
        let text = text_arg(text)?;
        let file = file
            .cast::<PyString>()
            .ok()
            .map(|f| f.to_string_lossy().into_owned());
        let line = line.extract::<i32>().unwrap_or(0);
        let site = file.as_deref().map(|f| (f, line));
        let lines: Vec<&str> = text.split('\n').collect();
        let level = handler_level(levelno);
        match current() {
            Some(ex) => ex.log_lines_at(py, level, &lines, site),
            None => py.detach(|| lines.iter().for_each(|l| log::server_at(level, l, site))),
        }
        Ok(())
    })
}

/// A message of the module's own at info level (script loading, as mod_wsgi logs it).
#[pyfunction]
pub fn _rs_log_info(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<()> {
    super::guard::catch(|| {
        emit(py, Level::Info, &[&text_arg(text)?]);
        Ok(())
    })
}

/// An error of the module's own with a traceback text (an event callback
/// raised), in the request's context when there is one.
#[pyfunction]
pub fn _rs_log_error(
    py: Python<'_>,
    first: &Bound<'_, PyAny>,
    text: &Bound<'_, PyAny>,
) -> PyResult<()> {
    super::guard::catch(|| {
        log_error_text(py, &[text_arg(first)?], &text_arg(text)?);
        Ok(())
    })
}

/// The request this thread serves, if any.
pub fn current() -> Option<Arc<Exchange>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// A message of the module's own at info level, in the request's context
/// when there is one.
pub fn info(py: Python<'_>, text: &str) {
    emit(py, Level::Info, &[text]);
}

/// Logs a Python error's text (a traceback) line by line, after `first`.
pub fn log_error_text(py: Python<'_>, first: &[String], text: &str) {
    let mut lines: Vec<&str> = first.iter().map(String::as_str).collect();
    lines.extend(text.trim_end_matches('\n').split('\n'));
    emit(py, Level::Error, &lines);
}

#[cfg(test)]
mod tests {
    use super::complete_lines;

    #[test]
    fn lines_are_cut_at_newlines() {
        let mut p = String::new();
        assert_eq!(complete_lines(&mut p, "par"), None);
        assert_eq!(
            complete_lines(&mut p, "tial\nnext\nra").as_deref(),
            Some("partial\nnext")
        );
        assert_eq!(p, "ra");
        assert_eq!(complete_lines(&mut p, "\n").as_deref(), Some("ra"));
        assert_eq!(p, "");
    }
}
