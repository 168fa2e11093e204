//! WSGIAccessScript: `allow_access(environ, host)` in the access_checker
//! hook, before (and independent of) authentication. True allows, None
//! leaves the decision to the other modules, False denies with 403, as
//! does anything that goes wrong (mod_wsgi fails closed here too).
use super::{dir_config, run, target, Call};
use crate::apache::{self, log, sys};
use pyo3::prelude::*;
use pyo3::types::PyBool;

enum Allow {
    Yes,
    No,
    /// None: not this script's decision.
    Pass,
}

/// The access_checker hook.
///
/// # Safety
/// Called by Apache with a live request.
pub unsafe fn check(r: *mut sys::request_rec) -> i32 {
    // SAFETY: r is live (caller).
    let Some(script) = unsafe { dir_config(r) }.auth.access.as_ref() else {
        return sys::DECLINED;
    };
    // The client's host name when HostnameLookups found one, else its address.
    // SAFETY: r and its connection are live.
    let host = unsafe {
        let c = (*r).connection;
        let name = sys::ap_get_remote_host(
            c,
            (*r).per_dir_config.cast(),
            sys::REMOTE_HOST,
            std::ptr::null_mut(),
        );
        apache::cbytes(name).or_else(|| apache::cbytes((*r).useragent_ip))
    };
    let call = Call {
        script,
        function: "allow_access",
        missing: format!(
            "WSGI0056: Target WSGI host access script '{}' does not provide 'allow_access' callable.",
            script.path
        ),
        args: &[host],
    };
    let refused = format!(
        "WSGI0055: Result returned from 'allow_access' in '{}' must be a boolean or None.",
        script.path
    );
    // SAFETY: r is the live request of this hook.
    let allow = unsafe {
        run(r, &call, |v| {
            Ok(if v.is_none() {
                Ok(Allow::Pass)
            } else if let Ok(b) = v.cast::<PyBool>() {
                Ok(if b.is_true() { Allow::Yes } else { Allow::No })
            } else {
                Err(refused)
            })
        })
    };
    match allow.unwrap_or(Allow::No) {
        Allow::Yes => sys::OK,
        Allow::Pass => sys::DECLINED,
        Allow::No => {
            // SAFETY: r is live.
            unsafe {
                let msg = super::tagged(
                    r,
                    &format!(
                        "WSGI0057: Client denied by server configuration: '{}'.",
                        target(r)
                    ),
                );
                log::rerror(r, log::ERR, &msg);
            }
            sys::HTTP_FORBIDDEN
        }
    }
}
