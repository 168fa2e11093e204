//! Thin, safe-ish wrappers over httpd and APR. Everything that touches a raw
//! `request_rec`/`server_rec` field lives here or in the modules below.

pub mod brigade;
pub mod log;
pub mod table;

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unnecessary_transmutes,
    clippy::all
)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/httpd_sys.rs"));
}

use std::ffi::{c_char, CStr};

/// The bytes of a NUL-terminated C string, or None for NULL.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives `'a`.
#[inline(always)]
pub unsafe fn cbytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// Like [`cbytes`] but decoded lossily to an owned `String`.
///
/// # Safety
/// As for [`cbytes`].
pub unsafe fn cstring_lossy(p: *const c_char) -> Option<String> {
    // SAFETY: forwarded contract.
    unsafe { cbytes(p) }.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Copies `s` into `pool`, NUL-terminated, for APIs that keep the pointer.
///
/// # Safety
/// `pool` must be a live APR pool.
pub unsafe fn pstrdup(pool: *mut sys::apr_pool_t, s: &[u8]) -> *mut c_char {
    // SAFETY: apr_pstrmemdup copies `len` bytes and appends a NUL.
    unsafe { sys::apr_pstrmemdup(pool, s.as_ptr().cast(), s.len()) }
}

/// Splits a directive's or a Require line's raw arguments with Apache's own
/// quoting rules (ap_getword_conf). An empty quoted argument (`""`) is an
/// argument. NULL gives no words.
///
/// # Safety
/// `pool` must be live; `args` NUL-terminated or NULL.
pub unsafe fn conf_words(pool: *mut sys::apr_pool_t, args: *const c_char) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if args.is_null() {
        return out;
    }
    let mut line = args;
    // SAFETY: `line` walks a NUL-terminated string: ap_getword_conf advances
    // it past one word and never beyond the NUL.
    unsafe {
        loop {
            while (*line as u8).is_ascii_whitespace() {
                line = line.add(1);
            }
            if *line == 0 {
                break;
            }
            let w = sys::ap_getword_conf(pool, &mut line);
            out.push(cbytes(w).unwrap_or(b"").to_vec());
        }
    }
    out
}
