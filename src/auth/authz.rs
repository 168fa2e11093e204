//! WSGIAuthGroupScript: the `wsgi-group` authz provider. `Require
//! wsgi-group g1 g2` grants an authenticated user whom
//! `groups_for_user(environ, user)` (an iterable of str or bytes) puts in
//! one of the groups. Like mod_wsgi, names compare without regard to ASCII
//! case (they were kept in an APR table) and any failure denies.
use super::{dir_config, run, user, Call, Verdict};
use crate::apache::{self, log, sys};
use crate::wsgi::transport::Level;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::ffi::c_char;

type Status = sys::authz_status;

/// authz_provider.check_authorization.
///
/// # Safety
/// Called by Apache with a live request and the Require line's arguments.
pub unsafe fn check(r: *mut sys::request_rec, require_args: *const c_char) -> Status {
    // SAFETY: r is live (caller).
    let Some(name) = (unsafe { user(r) }) else {
        return sys::authz_status_AUTHZ_DENIED_NO_USER;
    };
    // SAFETY: r is live (caller).
    let Some(script) = unsafe { dir_config(r) }.auth.group.as_ref() else {
        log::server(
            Level::Error,
            "WSGI0058: Location of WSGI group authorization script not provided.",
        );
        return sys::authz_status_AUTHZ_DENIED;
    };
    let path = &script.path;
    let call = Call {
        script,
        function: "groups_for_user",
        missing: format!(
            "WSGI0052: Target WSGI group authentication script '{path}' does not provide 'groups_for_user' callable."
        ),
        args: &[Some(name)],
    };
    // SAFETY: r is the live request of this hook.
    let Some(groups) = (unsafe { run(r, &call, |v| read_groups(v, path)) }) else {
        return sys::authz_status_AUTHZ_DENIED;
    };
    // SAFETY: r and its pool are live; require_args is NUL-terminated or NULL.
    let wanted = unsafe { apache::conf_words((*r).pool, require_args) };
    let member = wanted
        .iter()
        .any(|w| groups.iter().any(|g| g.eq_ignore_ascii_case(w)));
    if member {
        return sys::authz_status_AUTHZ_GRANTED;
    }
    let (id, why) = if groups.is_empty() {
        ("WSGI0059", "User is not a member of any groups.")
    } else {
        ("WSGI0060", "User is not a member of designated groups.")
    };
    // SAFETY: r is live.
    unsafe {
        let uri = apache::cstring_lossy((*r).uri).unwrap_or_default();
        let msg = super::tagged(
            r,
            &format!(
                "{id}: Authorization of user '{}' to access '{uri}' failed. {why}",
                String::from_utf8_lossy(name)
            ),
        );
        log::rerror(r, log::ERR, &msg);
    }
    sys::authz_status_AUTHZ_DENIED
}

/// The groups: each item a str (Latin-1) or bytes.
fn read_groups(v: &Bound<'_, PyAny>, path: &str) -> PyResult<Verdict<Vec<Vec<u8>>>> {
    let Ok(items) = v.try_iter() else {
        return Ok(Err(format!("WSGI0051: Result returned from 'groups_for_user' in '{path}' is not iterable; expected an iterable sequence of byte strings.")));
    };
    let mut groups = Vec::new();
    for item in items {
        let item = item?;
        if let Ok(b) = item.cast::<PyBytes>() {
            groups.push(b.as_bytes().to_vec());
        } else if item.is_instance_of::<PyString>() {
            match crate::python::text::latin1_bytes(&item, "group") {
                Ok(b) => groups.push(b),
                Err(_) => return Ok(Err(format!("WSGI0049: Item returned from 'groups_for_user' in '{path}' is a string containing characters that cannot be encoded as latin-1; expected a byte string."))),
            }
        } else {
            return Ok(Err(format!(
                "WSGI0050: Item returned from 'groups_for_user' in '{path}' is not a byte string."
            )));
        }
    }
    Ok(Ok(groups))
}
