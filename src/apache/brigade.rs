//! Output through Apache's bucket brigades, so every output filter applies.
use super::sys;

/// One brigade per request, reused for every pass.
pub struct Brigade {
    bb: *mut sys::apr_bucket_brigade,
    alloc: *mut sys::apr_bucket_alloc_t,
    r: *mut sys::request_rec,
}

// SAFETY: a brigade belongs to one request, which Apache serves on one thread
// at a time; it is only handed to `Python::detach` closures of that request.
unsafe impl Send for Brigade {}

impl Brigade {
    /// # Safety
    /// `r` must be a live request; the brigade lives in `r->pool`.
    pub unsafe fn new(r: *mut sys::request_rec) -> Brigade {
        // SAFETY: r, its pool and its connection's bucket allocator are live.
        unsafe {
            let alloc = (*(*r).connection).bucket_alloc;
            Brigade {
                bb: sys::apr_brigade_create((*r).pool, alloc),
                alloc,
                r,
            }
        }
    }

    /// Appends `data` without copying: the caller keeps `data` alive and
    /// unchanged until [`Brigade::pass`] returns (filters that keep data past
    /// that copy transient buckets when they set them aside).
    pub fn transient(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: bb and alloc are live; APR copies on setaside.
        unsafe {
            let b = sys::apr_bucket_transient_create(data.as_ptr().cast(), data.len(), self.alloc);
            sys::wsgi_rs_brigade_insert_tail(self.bb, b);
        }
    }

    /// Appends a copy of `data` (a heap bucket): for output that is passed
    /// after the caller's buffers are gone (see `Output::stage_final`).
    pub fn copy(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: bb and alloc are live; with no free function APR copies `data`.
        unsafe {
            let b = sys::apr_bucket_heap_create(data.as_ptr().cast(), data.len(), None, self.alloc);
            sys::wsgi_rs_brigade_insert_tail(self.bb, b);
        }
    }

    pub fn flush(&mut self) {
        // SAFETY: bb and alloc are live.
        unsafe {
            sys::wsgi_rs_brigade_insert_tail(self.bb, sys::apr_bucket_flush_create(self.alloc))
        }
    }

    pub fn eos(&mut self) {
        // SAFETY: bb and alloc are live.
        unsafe { sys::wsgi_rs_brigade_insert_tail(self.bb, sys::apr_bucket_eos_create(self.alloc)) }
    }

    /// Appends `len` bytes of `file` from `offset` (file buckets: sendfile/mmap).
    ///
    /// # Safety
    /// `file` must stay open until the request pool is destroyed.
    pub unsafe fn file(&mut self, file: *mut sys::apr_file_t, offset: i64, len: i64) {
        // SAFETY: live brigade and pool; apr_brigade_insert_file splits huge ranges.
        unsafe {
            sys::apr_brigade_insert_file(self.bb, file, offset, len, (*self.r).pool);
        }
    }

    /// Drops every bucket without sending it.
    pub fn discard(&mut self) {
        // SAFETY: bb is live; cleanup destroys its buckets.
        unsafe { sys::apr_brigade_cleanup(self.bb.cast()) };
    }

    /// Sends the brigade down the output filters and empties it. Blocking:
    /// call it with the GIL released. Returns false if the client is gone.
    pub fn pass(&mut self) -> bool {
        // SAFETY: r and bb are live; the filters consume or set aside the buckets,
        // and apr_brigade_cleanup destroys whatever is left.
        unsafe {
            let rv = sys::ap_pass_brigade((*self.r).output_filters, self.bb);
            sys::apr_brigade_cleanup(self.bb.cast());
            rv == sys::APR_SUCCESS && (*(*self.r).connection).aborted == 0
        }
    }
}
