//! Output through Apache's bucket brigades, so every output filter applies.
use super::sys;
use std::marker::PhantomData;

/// What follows the data in a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// A FLUSH: everything goes to the client before the pass returns.
    Flush,
    /// The end of the response (EOS).
    Eos,
}

/// One brigade of request `'r`, reused for every pass.
pub struct Brigade<'r> {
    bb: *mut sys::apr_bucket_brigade,
    alloc: *mut sys::apr_bucket_alloc_t,
    r: *mut sys::request_rec,
    _request: PhantomData<&'r mut sys::request_rec>,
}

/// The largest file bucket (APR splits bigger ranges the same way).
const FILE_BUCKET_MAX: u64 = 1 << 30;

impl<'r> Brigade<'r> {
    /// # Safety
    /// `r` must be a live request for all of `'r`; the brigade lives in its pool.
    pub unsafe fn new(r: *mut sys::request_rec) -> Brigade<'r> {
        // SAFETY: r, its pool and its connection's bucket allocator are live.
        unsafe {
            let alloc = (*(*r).connection).bucket_alloc;
            Brigade {
                bb: sys::apr_brigade_create((*r).pool, alloc),
                alloc,
                r,
                _request: PhantomData,
            }
        }
    }

    fn append(&mut self, b: *mut sys::apr_bucket) {
        // SAFETY: bb is live and b a bucket from its allocator.
        unsafe { sys::wsgi_rs_brigade_insert_tail(self.bb, b) }
    }

    /// Passes `chunks` without copying them. They are borrowed for this call
    /// only: a filter that keeps data past its pass sets it aside (copies it),
    /// as APR requires for transient buckets. False if the client is gone.
    pub fn pass_transient(&mut self, chunks: &[&[u8]], then: Then) -> bool {
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            // SAFETY: alloc is live; the bucket points into `c`, which
            // outlives the pass below, after which no bucket refers to it.
            let b =
                unsafe { sys::apr_bucket_transient_create(c.as_ptr().cast(), c.len(), self.alloc) };
            self.append(b);
        }
        match then {
            Then::Flush => self.flush(),
            Then::Eos => self.eos(),
        }
        self.pass()
    }

    /// Appends a copy of `data` (a heap bucket), for output passed later.
    pub fn copy(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: alloc is live; with no free function APR copies `data`.
        let b = unsafe {
            sys::apr_bucket_heap_create(data.as_ptr().cast(), data.len(), None, self.alloc)
        };
        self.append(b);
    }

    pub fn flush(&mut self) {
        // SAFETY: alloc is live.
        let b = unsafe { sys::apr_bucket_flush_create(self.alloc) };
        self.append(b);
    }

    pub fn eos(&mut self) {
        // SAFETY: alloc is live.
        let b = unsafe { sys::apr_bucket_eos_create(self.alloc) };
        self.append(b);
    }

    /// Appends `len` bytes of `file` from `offset` as file buckets (sendfile
    /// when the file was opened with APR_FOPEN_SENDFILE_ENABLED). Never
    /// memory-mapped: a file truncated while it is sent would kill the
    /// process with SIGBUS.
    ///
    /// # Safety
    /// `file` must stay open until the request pool is destroyed.
    pub unsafe fn file(&mut self, file: *mut sys::apr_file_t, offset: u64, len: u64) {
        let (mut offset, mut left) = (offset, len);
        while left > 0 {
            let n = left.min(FILE_BUCKET_MAX);
            // SAFETY: file is open (caller), the pool and allocator are live.
            unsafe {
                let b = sys::apr_bucket_file_create(
                    file,
                    offset as i64,
                    n as usize,
                    (*self.r).pool,
                    self.alloc,
                );
                sys::apr_bucket_file_enable_mmap(b, 0);
                self.append(b);
            }
            offset += n;
            left -= n;
        }
    }

    /// Drops every bucket without sending it.
    pub fn discard(&mut self) {
        // SAFETY: bb is live; cleanup destroys its buckets.
        unsafe { sys::apr_brigade_cleanup(self.bb.cast()) };
    }

    /// Sends the brigade down the output filters and empties it. Blocking
    /// (call it without the GIL). False if the client is gone.
    pub fn pass(&mut self) -> bool {
        // SAFETY: r and bb are live; the filters consume or set aside the
        // buckets, and apr_brigade_cleanup destroys whatever is left.
        unsafe {
            let rv = sys::ap_pass_brigade((*self.r).output_filters, self.bb);
            sys::apr_brigade_cleanup(self.bb.cast());
            rv == sys::APR_SUCCESS && (*(*self.r).connection).aborted == 0
        }
    }
}
