//! Python output (wsgi.errors, sys.stdout, sys.stderr) → Apache's error log,
//! one entry per line. While a request is served on this thread, entries go
//! through ap_log_rerror and carry the client address, as with mod_wsgi.
use crate::apache::{log, sys};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::cell::{Cell, RefCell};

thread_local! {
    /// Partial (not yet newline-terminated) output per stream on this thread.
    static PENDING: RefCell<[String; 3]> = const { RefCell::new([String::new(), String::new(), String::new()]) };
    static REQUEST: Cell<*const sys::request_rec> = const { Cell::new(std::ptr::null()) };
}

/// Marks `r` as the request this thread is serving (NULL when done).
pub fn set_request(r: *const sys::request_rec) {
    if r.is_null() {
        flush_all();
    }
    REQUEST.with(|c| c.set(r));
}

fn emit_at(level: i32, line: &str) {
    let r = REQUEST.with(|c| c.get());
    // SAFETY: REQUEST is only non-NULL while the handler for `r` runs on this thread.
    unsafe {
        if r.is_null() {
            log::error(std::ptr::null(), level, line)
        } else {
            log::rerror(r, level, line)
        }
    }
}

fn emit(line: &str) {
    emit_at(log::ERR, line)
}

/// A message of the module's own at info level (script loading, as mod_wsgi logs it).
#[pyfunction]
pub fn _rs_log_info(text: &Bound<'_, PyString>) {
    emit_at(log::INFO, &text.to_string_lossy());
}

fn stream_index(stream: u8) -> usize {
    (stream as usize).min(2)
}

#[pyfunction]
pub fn _rs_log_write(stream: u8, text: &Bound<'_, PyString>) {
    let text = text.to_string_lossy();
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let buf = &mut p[stream_index(stream)];
        buf.push_str(&text);
        if let Some(last_nl) = buf.rfind('\n') {
            let rest = buf.split_off(last_nl + 1);
            for line in buf.trim_end_matches('\n').split('\n') {
                emit(line);
            }
            *buf = rest;
        }
    });
}

#[pyfunction]
pub fn _rs_log_flush(stream: u8) {
    let text = PENDING.with(|p| std::mem::take(&mut p.borrow_mut()[stream_index(stream)]));
    if !text.is_empty() {
        emit(&text);
    }
}

/// Writes out every stream's partial line (end of request, shutdown).
pub fn flush_all() {
    for s in 0..3 {
        _rs_log_flush(s);
    }
}
