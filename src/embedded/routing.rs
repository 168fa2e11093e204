//! Which script, callable and groups a request gets from WSGIHandlerScript
//! and WSGIDispatchScript, noted on the request as a WSGIScriptAlias's
//! options are (the handler reads the notes before the configuration).
use super::handler::{
    decide, expand_group, set_note, NOTE_APPLICATION_GROUP, NOTE_CALLABLE, NOTE_PASS_AUTH,
    NOTE_PROCESS_GROUP,
};
use super::request;
use crate::apache::{log, sys};
use crate::config::handler_script::{DispatchScript, HandlerScript};
use crate::config::{DirConfig, GroupSpec};

/// The WSGIHandlerScript registered for this request's handler name (in
/// the merged per-directory configuration), or None for `wsgi-script`.
/// Err(DECLINED): not a handler of ours.
pub(super) fn handler_script<'a>(
    handler: &[u8],
    dir: &'a DirConfig,
) -> Result<Option<&'a HandlerScript>, i32> {
    if handler == b"wsgi-script" || handler == b"application/x-httpd-wsgi" {
        return Ok(None);
    }
    let name = std::str::from_utf8(handler).map_err(|_| sys::DECLINED)?;
    dir.scripts.handler(name).map(Some).ok_or(sys::DECLINED)
}

/// A handler script's options, noted as an alias's are; its callable is
/// always `handle_request`.
pub(super) unsafe fn note_handler_script(r: *mut sys::request_rec, h: &HandlerScript) {
    // SAFETY: r is live (caller).
    unsafe {
        set_note(r, NOTE_CALLABLE, "handle_request");
        if let Some(g) = &h.process_group {
            set_note(r, NOTE_PROCESS_GROUP, g);
        }
        if let Some(g) = &h.application_group {
            set_note(r, NOTE_APPLICATION_GROUP, &g.describe());
        }
        if let Some(p) = h.pass_authorization {
            set_note(r, NOTE_PASS_AUTH, if p { "1" } else { "0" });
        }
    }
}

/// WSGIDispatchScript: its hooks' choices are noted, replacing the
/// configured values. Err is the handler's status.
pub(super) unsafe fn dispatch(
    r: *mut sys::request_rec,
    dir: &DirConfig,
    d: &DispatchScript,
    script: &str,
    resource: Option<&str>,
) -> Result<(), i32> {
    // SAFETY: r is live (caller).
    unsafe {
        let decided = decide(r, dir, script, resource);
        let spec = d.application_group.as_ref().unwrap_or(&GroupSpec::Global);
        let group = expand_group(r, spec, &decided.script_name);
        let mut head = request::head(r, decided);
        if dir.scripts.pass_apache_request() {
            head.request_rec = r as usize;
        }
        let choice = super::dispatch::run(d, &group, &head, dir.script_reloading())
            .inspect_err(|why| why.lines().for_each(|l| log::rerror(r, log::ERR, l)))
            .map_err(|_| sys::HTTP_INTERNAL_SERVER_ERROR)?;
        if let Some(g) = &choice.process_group {
            set_note(r, NOTE_PROCESS_GROUP, g);
        }
        if let Some(g) = &choice.application_group {
            set_note(r, NOTE_APPLICATION_GROUP, g);
        }
        if let Some(c) = &choice.callable_object {
            set_note(r, NOTE_CALLABLE, c);
        }
    }
    Ok(())
}
