//! The Apache request as a WSGI transport: the body through the input
//! filters, the response through the output filters (bucket brigades).
use crate::apache::brigade::{Brigade, Then};
use crate::apache::{self, log, sys, table};
use crate::wsgi::transport::{ClientGone, Ending, Level, ResponseHead, Transport};
use std::ffi::c_void;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{IntoRawFd, OwnedFd};

pub struct ApacheTransport<'r> {
    r: *mut sys::request_rec,
    bb: Option<Brigade<'r>>,
    /// The end of the response, put aside by `end` until `complete`.
    staged: Option<Brigade<'r>>,
    _request: PhantomData<&'r mut sys::request_rec>,
}

// SAFETY: an Apache request is not tied to a thread: Apache only requires
// that one thread at a time use it, its pool and its connection's bucket
// allocator. The WSGI core calls a transport only under its exchange's mutex
// (and the handler thread only before and after lending it), so that holds.
unsafe impl Send for ApacheTransport<'_> {}

extern "C" fn close_fd(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: registered with a descriptor this request owns, closed once.
    unsafe { libc::close(data as usize as i32) };
    sys::APR_SUCCESS as sys::apr_status_t
}

impl<'r> ApacheTransport<'r> {
    /// # Safety
    /// `r` must be the live request being handled, for all of `'r`.
    pub unsafe fn new(r: *mut sys::request_rec) -> ApacheTransport<'r> {
        ApacheTransport {
            r,
            bb: None,
            staged: None,
            _request: PhantomData,
        }
    }

    fn brigade(&mut self) -> &mut Brigade<'r> {
        let r = self.r;
        // SAFETY: r is live for 'r (constructor's contract).
        self.bb.get_or_insert_with(|| unsafe { Brigade::new(r) })
    }

    /// Passes the staged end of the response (call without the GIL). False
    /// if the client went away meanwhile.
    pub fn complete(&mut self) -> bool {
        self.staged.take().is_none_or(|mut bb| bb.pass())
    }

    fn enable_sendfile(&self) -> bool {
        // SAFETY: r is live; the shim reads the core module's directory config.
        unsafe { sys::wsgi_rs_core_enable_sendfile(self.r) == sys::ENABLE_SENDFILE_ON as u32 }
    }
}

impl Transport for ApacheTransport<'_> {
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
        // SAFETY: r is live and set up for reading (ap_setup_client_block);
        // Apache writes at most buf.len() bytes into buf.
        let n = unsafe { sys::ap_get_client_block(self.r, buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| "the client closed the connection or timed out".to_string())
    }

    fn head_only(&self) -> bool {
        // SAFETY: r is live.
        unsafe { (*self.r).header_only != 0 }
    }

    fn start(&mut self, head: &ResponseHead) {
        let r = self.r;
        // SAFETY: r is live; strings are copied into r->pool.
        unsafe {
            (*r).status = i32::from(head.code);
            (*r).status_line = apache::pstrdup((*r).pool, &head.status);
            for (k, v) in &head.headers {
                if k.eq_ignore_ascii_case(b"content-type") {
                    sys::ap_set_content_type(r, apache::pstrdup((*r).pool, v));
                } else if k.eq_ignore_ascii_case(b"content-length") {
                    sys::ap_set_content_length(r, head.content_length.unwrap_or(0) as i64);
                } else if k.eq_ignore_ascii_case(b"www-authenticate") {
                    // Kept on error responses too (ErrorDocument), as mod_wsgi does.
                    table::add((*r).err_headers_out, (*r).pool, k, v, table::Mode::Add);
                } else {
                    table::add((*r).headers_out, (*r).pool, k, v, table::Mode::Add);
                }
            }
        }
    }

    fn send(&mut self, chunks: &[&[u8]]) -> Result<(), ClientGone> {
        self.brigade()
            .pass_transient(chunks, Then::Flush)
            .then_some(())
            .ok_or(ClientGone)
    }

    fn send_file(&mut self, file: OwnedFd, offset: u64, len: u64) -> Result<(), ClientGone> {
        let mut flags = sys::APR_FOPEN_READ;
        if self.enable_sendfile() {
            flags |= sys::APR_FOPEN_SENDFILE_ENABLED;
        }
        let r = self.r;
        let mut fd = file.into_raw_fd();
        let mut apr_file: *mut sys::apr_file_t = std::ptr::null_mut();
        // SAFETY: r->pool is live; the pool's cleanup owns and closes `fd`
        // (registered before anything can fail), after the response is sent.
        unsafe {
            sys::apr_pool_cleanup_register(
                (*r).pool,
                fd as usize as *mut c_void,
                Some(close_fd),
                Some(sys::apr_pool_cleanup_null),
            );
            if sys::apr_os_file_put(&mut apr_file, &mut fd, flags, (*r).pool) != sys::APR_SUCCESS {
                return Err(ClientGone);
            }
        }
        let bb = self.brigade();
        // SAFETY: the file stays open until r->pool's cleanup runs.
        unsafe { bb.file(apr_file, offset, len) };
        bb.eos();
        bb.pass().then_some(()).ok_or(ClientGone)
    }

    fn end(&mut self, chunks: &[&[u8]], how: Ending) -> Result<(), ClientGone> {
        if how == Ending::Now {
            return self
                .brigade()
                .pass_transient(chunks, Then::Eos)
                .then_some(())
                .ok_or(ClientGone);
        }
        let mut bb = self.bb.take().unwrap_or_else(|| {
            // SAFETY: r is live for 'r.
            unsafe { Brigade::new(self.r) }
        });
        chunks.iter().for_each(|c| bb.copy(c));
        bb.eos();
        self.staged = Some(bb);
        Ok(())
    }

    fn close_connection(&mut self) {
        // SAFETY: r and its connection are live.
        unsafe { (*(*self.r).connection).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE };
    }

    fn abort(&mut self) {
        if let Some(mut bb) = self.staged.take() {
            bb.discard();
        }
        // SAFETY: r and its connection are live.
        unsafe {
            let c = (*self.r).connection;
            (*c).aborted = 1;
            (*c).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE;
        }
    }

    fn log(&mut self, level: Level, msg: &str) {
        // SAFETY: r is live.
        unsafe { log::rerror(self.r, log::level(level), msg) }
    }
}
