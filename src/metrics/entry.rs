//! The metrics' `extern "C"` entry points, registered by the C shim. Each
//! catches panics (crate::guard).
use crate::apache::sys;

/// # Safety
/// Called only by Apache, through the shim, with a live request.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_metrics_handler(r: *mut sys::request_rec) -> i32 {
    // SAFETY: Apache passes a live request.
    crate::guard(
        "metrics handler",
        sys::HTTP_INTERNAL_SERVER_ERROR,
        || unsafe { super::handler(r) },
    )
}

/// # Safety
/// Called only by Apache, through the shim, with a live request.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_log_transaction(r: *mut sys::request_rec) -> i32 {
    // SAFETY: Apache passes a live request.
    crate::guard("log_transaction", (), || unsafe {
        super::log_transaction(r)
    });
    sys::DECLINED
}

/// mod_status' status_hook.
///
/// # Safety
/// Called only by mod_status, through the shim, with a live request.
#[no_mangle]
pub unsafe extern "C" fn wsgi_rs_status_hook(r: *mut sys::request_rec, flags: i32) -> i32 {
    // SAFETY: mod_status passes its live request.
    crate::guard("status hook", sys::OK, || unsafe {
        super::status::hook(r, flags)
    })
}
