//! WSGIAuthUserScript: the `wsgi` authn provider. mod_auth_basic calls
//! `check_password(environ, user, password)`: True, False, None (no such
//! user) or a str (granted, under that user name). mod_auth_digest calls
//! `get_realm_hash(environ, user, realm)`: the hex MD5 of
//! "user:realm:password", or None (no such user). Anything else, an
//! exception included, is AUTH_GENERAL_ERROR (Apache answers 500).
use super::{dir_config, run, Call, Verdict};
use crate::apache::{self, log, sys};
use crate::wsgi::transport::Level;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};
use std::ffi::c_char;

type Status = sys::authn_status;

/// The result of check_password.
enum Password {
    Granted,
    Denied,
    NotFound,
    /// Granted, with this user name in place of the one given.
    Renamed(Vec<u8>),
}

/// No WSGIAuthUserScript: `id` is WSGI0041 (Basic) or WSGI0044 (Digest).
fn no_script(id: &str) -> Status {
    log::server(
        Level::Error,
        &format!("{id}: Location of WSGI user authentication script not provided."),
    );
    sys::authn_status_AUTH_GENERAL_ERROR
}

/// authn_provider.check_password.
///
/// # Safety
/// Called by Apache with a live request and NUL-terminated strings.
pub unsafe fn check_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> Status {
    // SAFETY: r is live (caller).
    let Some(script) = unsafe { dir_config(r) }.auth.user.as_ref() else {
        return no_script("WSGI0041");
    };
    // SAFETY: NUL-terminated strings from mod_auth_basic (or NULL).
    let (user, password) = unsafe { (apache::cbytes(user), apache::cbytes(password)) };
    let call = Call {
        script,
        function: "check_password",
        missing: format!(
            "WSGI0043: Target WSGI user authentication script '{}' does not provide 'Basic' auth provider.",
            script.path
        ),
        args: &[Some(user.unwrap_or(b"")), Some(password.unwrap_or(b""))],
    };
    // SAFETY: r is the live request of this hook.
    let outcome = unsafe { run(r, &call, read_password) };
    match outcome {
        Some(Password::Granted) => sys::authn_status_AUTH_GRANTED,
        Some(Password::Denied) => sys::authn_status_AUTH_DENIED,
        Some(Password::NotFound) => sys::authn_status_AUTH_USER_NOT_FOUND,
        Some(Password::Renamed(name)) => {
            // SAFETY: r and its pool are live; the copy lives with the request.
            unsafe { (*r).user = apache::pstrdup((*r).pool, &name) };
            sys::authn_status_AUTH_GRANTED
        }
        None => sys::authn_status_AUTH_GENERAL_ERROR,
    }
}

fn read_password(v: &Bound<'_, PyAny>) -> PyResult<Verdict<Password>> {
    if v.is_none() {
        return Ok(Ok(Password::NotFound));
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Ok(if b.is_true() {
            Password::Granted
        } else {
            Password::Denied
        }));
    }
    if let Ok(s) = v.cast::<PyString>() {
        // UTF-8, as mod_wsgi encodes the new name.
        let name = s.to_str()?.as_bytes().to_vec();
        return Ok(match name {
            n if n.is_empty() => {
                Err("WSGI0176: Basic auth provider returned empty user name string.".into())
            }
            n if n.contains(&0) => {
                Err("Basic auth provider returned a user name with a NUL character.".into())
            }
            n => Ok(Password::Renamed(n)),
        });
    }
    Ok(Err(
        "WSGI0177: Basic auth provider must return True, False, None or user name as string."
            .into(),
    ))
}

/// The result of get_realm_hash.
enum RealmHash {
    Found(Vec<u8>),
    NotFound,
}

/// authn_provider.get_realm_hash.
///
/// # Safety
/// Called by Apache with a live request, NUL-terminated strings and a
/// place for the hash.
pub unsafe fn get_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> Status {
    // SAFETY: r is live (caller).
    let Some(script) = unsafe { dir_config(r) }.auth.user.as_ref() else {
        return no_script("WSGI0044");
    };
    // SAFETY: NUL-terminated strings from mod_auth_digest (or NULL).
    let (user, realm) = unsafe { (apache::cbytes(user), apache::cbytes(realm)) };
    let call = Call {
        script,
        function: "get_realm_hash",
        missing: format!(
            "WSGI0046: Target WSGI user authentication script '{}' does not provide 'Digest' auth provider.",
            script.path
        ),
        args: &[Some(user.unwrap_or(b"")), Some(realm.unwrap_or(b""))],
    };
    // SAFETY: r is the live request of this hook.
    match unsafe { run(r, &call, read_hash) } {
        Some(RealmHash::Found(hash)) if !rethash.is_null() => {
            // SAFETY: rethash points to mod_auth_digest's slot; the copy
            // lives with the request.
            unsafe { *rethash = apache::pstrdup((*r).pool, &hash) };
            sys::authn_status_AUTH_USER_FOUND
        }
        Some(RealmHash::NotFound) => sys::authn_status_AUTH_USER_NOT_FOUND,
        _ => sys::authn_status_AUTH_GENERAL_ERROR,
    }
}

fn read_hash(v: &Bound<'_, PyAny>) -> PyResult<Verdict<RealmHash>> {
    if v.is_none() {
        return Ok(Ok(RealmHash::NotFound));
    }
    let hash = if let Ok(b) = v.cast::<PyBytes>() {
        b.as_bytes().to_vec()
    } else if v.is_instance_of::<PyString>() {
        crate::python::text::latin1_bytes(v, "realm hash")?
    } else {
        return Ok(Err(
            "WSGI0179: Digest auth provider must return None or string object.".into(),
        ));
    };
    Ok(match hash {
        h if h.is_empty() => {
            Err("WSGI0178: Digest auth provider returned empty realm hash.".into())
        }
        h if h.contains(&0) => {
            Err("Digest auth provider returned a realm hash with a NUL character.".into())
        }
        h => Ok(RealmHash::Found(h)),
    })
}
