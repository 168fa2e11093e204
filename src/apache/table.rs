//! Iteration over `apr_table_t` (whose entries are an `apr_array_header_t`).
use super::sys;
use std::ffi::c_char;

/// Calls `f(key, value)` for each entry, skipping NULL keys.
///
/// # Safety
/// `t` must be a live table that is not modified during the iteration.
pub unsafe fn for_each(t: *const sys::apr_table_t, mut f: impl FnMut(&[u8], &[u8])) {
    if t.is_null() {
        return;
    }
    // SAFETY: apr_table_elts(t) is a cast of the table to its entry array
    // header (the table struct starts with it); entries are apr_table_entry_t.
    unsafe {
        let arr = t as *const sys::apr_array_header_t;
        let n = (*arr).nelts as usize;
        let elts = (*arr).elts as *const sys::apr_table_entry_t;
        for i in 0..n {
            let e = &*elts.add(i);
            if let Some(k) = super::cbytes(e.key) {
                let v = super::cbytes(e.val).unwrap_or(b"");
                f(k, v);
            }
        }
    }
}

/// `apr_table_get` with a Rust key.
///
/// # Safety
/// `t` must be a live table.
pub unsafe fn get<'a>(t: *const sys::apr_table_t, key: &'static CStrLit) -> Option<&'a [u8]> {
    // SAFETY: key is NUL-terminated; the returned value lives as long as the table.
    unsafe { super::cbytes(sys::apr_table_get(t, key.as_ptr())) }
}

/// Static C string literal type (`c"..."`).
pub type CStrLit = std::ffi::CStr;

/// Whether a value joins or replaces the key's existing ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `apr_table_add`: another entry with the same key.
    Add,
    /// `apr_table_set`: replaces every entry with the key.
    Set,
}

/// `apr_table_add` / `apr_table_set` with Rust byte strings (APR copies them).
///
/// # Safety
/// `t` must be a live table; `pool` the pool for temporary NUL-terminated copies.
pub unsafe fn add(
    t: *mut sys::apr_table_t,
    pool: *mut sys::apr_pool_t,
    k: &[u8],
    v: &[u8],
    mode: Mode,
) {
    // SAFETY: both copies are NUL-terminated pool strings; APR copies them again.
    unsafe {
        let (kc, vc): (*const c_char, *const c_char) =
            (super::pstrdup(pool, k), super::pstrdup(pool, v));
        match mode {
            Mode::Set => sys::apr_table_set(t, kc, vc),
            Mode::Add => sys::apr_table_add(t, kc, vc),
        }
    }
}
