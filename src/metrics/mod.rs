//! Server-wide metrics: counters and histograms in memory shared by the
//! Apache parent, its children and the daemon processes (shm.rs), updated
//! with relaxed atomic adds (record.rs), served in Prometheus' text format
//! by the `wsgi-rs-metrics` handler (prometheus.rs) and shown by mod_status
//! (status.rs).
pub mod entry;
pub mod prometheus;
pub mod python;
pub mod record;
pub mod shm;
pub mod snapshot;
pub mod status;

use crate::apache::{self, sys, table};
use std::ffi::{c_void, CStr};

const AREA_KEY: &CStr = c"mod_wsgi_rs.metrics_area";
const NOTE: &CStr = c"mod_wsgi_rs.metrics";

/// post_config (second pass, in the parent, before anything forks): maps
/// the area, or takes the one of the previous generation from the process
/// pool (which outlives restarts), and forgets the previous generation's
/// daemon processes. `groups` are this generation's daemon groups.
///
/// # Safety
/// `s` is the live main server.
pub unsafe fn init(s: *mut sys::server_rec, groups: &[String]) -> Result<(), String> {
    // SAFETY: s and its process record are live for Apache's life.
    let pool = unsafe { (*(*s).process).pool };
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: a lookup in the live process pool.
    unsafe { sys::apr_pool_userdata_get(&mut data, AREA_KEY.as_ptr(), pool) };
    // SAFETY: NULL, or what an earlier generation stored below.
    let area = match unsafe { shm::Area::adopt(data as *const shm::Area) } {
        Some(a) => a,
        None => {
            let a = shm::Area::map()?;
            // SAFETY: the key is static and the mapping is never unmapped.
            unsafe {
                sys::apr_pool_userdata_setn(
                    a as *const shm::Area as *const c_void,
                    AREA_KEY.as_ptr(),
                    None,
                    pool,
                )
            };
            a
        }
    };
    area.reset_procs();
    for g in groups {
        area.group(g);
    }
    record::set_area(area);
    *CURRENT_GROUPS.write().unwrap_or_else(|e| e.into_inner()) = groups.to_vec();
    Ok(())
}

static CURRENT_GROUPS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

pub fn current_groups() -> Vec<String> {
    CURRENT_GROUPS.read().map(|g| g.clone()).unwrap_or_default()
}

/// The WSGI handler took the request for this label set: counted when it
/// is logged (log_transaction), with its final status and sizes.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn tag(r: *mut sys::request_rec, process_group: &str, application_group: &str) {
    if let Some(i) = record::label(process_group, application_group) {
        // SAFETY: r and its notes are live; APR copies the strings.
        unsafe {
            table::add(
                (*r).notes,
                (*r).pool,
                NOTE.to_bytes(),
                i.to_string().as_bytes(),
                table::Mode::Set,
            )
        };
    }
}

/// log_transaction: counts a request tagged by the WSGI handler.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn log_transaction(r: *mut sys::request_rec) {
    // SAFETY: r and the requests it chains to are live while it is logged.
    unsafe {
        let mut last = r;
        while !(*last).next.is_null() {
            last = (*last).next;
        }
        let Some(i) = table::get((*last).notes, NOTE)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
        else {
            return;
        };
        let took = (record::now_us() - (*r).request_time).max(0) as u64;
        record::request(
            i,
            (*last).status,
            took,
            (*last).read_length.max(0) as u64,
            (*last).bytes_sent.max(0) as u64,
        );
    }
}

/// The `wsgi-rs-metrics` content handler.
///
/// # Safety
/// `r` is a live request.
pub unsafe fn handler(r: *mut sys::request_rec) -> i32 {
    // SAFETY: r is live.
    let handler = unsafe { apache::cbytes((*r).handler) }.unwrap_or(b"");
    if handler != b"wsgi-rs-metrics" {
        return sys::DECLINED;
    }
    let text = match record::area() {
        Some(a) => prometheus::render(a, &current_groups(), snapshot::apache_workers()),
        None => String::new(),
    };
    // SAFETY: r is live; Apache copies the content type into its pool.
    unsafe {
        let ct = apache::pstrdup((*r).pool, prometheus::CONTENT_TYPE.as_bytes());
        sys::ap_set_content_type(r, ct);
        if sys::wsgi_rs_is_head(r) == 0 {
            write(r, text.as_bytes());
        }
    }
    sys::OK
}

/// Writes `b` to the response.
///
/// # Safety
/// `r` is a live request in its handler.
pub unsafe fn write(r: *mut sys::request_rec, b: &[u8]) {
    // SAFETY: b is valid for its length; ap_rwrite copies it.
    unsafe { sys::ap_rwrite(b.as_ptr().cast(), b.len() as i32, r) };
}
