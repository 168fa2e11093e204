//! The Apache request as a WSGI transport: the body through the input
//! filters, the response through the output filters (bucket brigades).
use crate::apache::brigade::{Brigade, Then};
use crate::apache::{self, log, sys, table};
use crate::config::DirConfig;
use crate::wsgi::transport::{ClientGone, Ending, Level, ResponseHead, Transport};
use std::ffi::c_void;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::os::fd::{IntoRawFd, OwnedFd};

/// Output filters that pass every brigade on at once: with only these, a
/// block passed with a FLUSH reaches the socket in that call, and the call
/// cannot block when the socket's send buffer has room for it (`room`).
const PASS_THROUGH_FILTERS: [&[u8]; 8] = [
    b"byterange",
    b"content_length",
    b"http_header",
    b"http_outerror",
    b"chunk",
    b"core",
    b"fixup_headers_out",
    b"fixup_headers_err",
];

/// Room kept free in the send buffer beyond a write (chunk framing, headers).
const ROOM_MARGIN: usize = 4096;

/// The most one write by the writer thread takes.
const ROOM_MAX: usize = 256 * 1024;

/// getsockopt(SOL_SOCKET, SO_MEMINFO): the socket's memory counters (Linux).
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_VARS: usize = 9;

pub struct ApacheTransport<'r> {
    r: *mut sys::request_rec,
    bb: Option<Brigade<'r>>,
    /// The brigade the request body is read into.
    input: *mut sys::apr_bucket_brigade,
    /// Body data kept in its buckets (`read_held`).
    held: *mut sys::apr_bucket_brigade,
    input_ended: bool,
    /// Whether every output filter passes data straight on (see above).
    pass_through: Option<bool>,
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

/// Why the input filters refused to go on, in words for the application.
fn read_failure(rv: sys::apr_status_t) -> &'static str {
    // AP_FILTER_ERROR: a filter already answered the request with an error
    // (HTTP_IN does for a body over LimitRequestBody or a malformed chunk).
    if rv == sys::AP_FILTER_ERROR {
        "Apache's input filters refused the request body (it is larger than LimitRequestBody, or malformed)"
    } else {
        "the client closed the connection or timed out"
    }
}

impl<'r> ApacheTransport<'r> {
    /// # Safety
    /// `r` must be the live request being handled, for all of `'r`.
    pub unsafe fn new(r: *mut sys::request_rec) -> ApacheTransport<'r> {
        ApacheTransport {
            r,
            bb: None,
            input: std::ptr::null_mut(),
            held: std::ptr::null_mut(),
            input_ended: false,
            pass_through: None,
            staged: None,
            _request: PhantomData,
        }
    }

    fn brigade(&mut self) -> &mut Brigade<'r> {
        let r = self.r;
        // SAFETY: r is live for 'r (constructor's contract).
        self.bb.get_or_insert_with(|| unsafe { Brigade::new(r) })
    }

    /// The body's length, known in advance (daemon mode: a list sent
    /// in several frames), unless the application gave one.
    pub fn content_length_hint(&mut self, n: u64) {
        let r = self.r;
        // SAFETY: r is live; the table lookup and ap_set_content_length
        // only touch r's headers.
        unsafe {
            if table::get((*r).headers_out, c"Content-Length").is_none() {
                sys::ap_set_content_length(r, n as i64);
            }
        }
    }

    /// Passes the staged end of the response (call without the GIL). False
    /// if the client went away meanwhile.
    pub fn complete(&mut self) -> bool {
        self.staged.take().is_none_or(|mut bb| bb.pass())
    }

    /// Reads up to `max` body bytes through the input filters into
    /// `self.input`. Ok(None): nothing available now (non-blocking reads
    /// only); otherwise how many bytes the brigade holds (none: it is empty).
    fn get_body(&mut self, max: usize, block: bool) -> Result<Option<usize>, String> {
        if self.input_ended || max == 0 {
            return Ok(Some(0));
        }
        // A blocking read that returned only metadata is read again (a
        // filter that never returns data nor an end is an error).
        for _ in 0..64 {
            match self.get_body_once(max, block)? {
                Some(0) if block && !self.input_ended => continue,
                got => return Ok(got),
            }
        }
        Err("the input filters returned no data".to_string())
    }

    fn get_body_once(&mut self, max: usize, block: bool) -> Result<Option<usize>, String> {
        let r = self.r;
        // SAFETY: r, its pool, connection and input filters are live; on
        // every error path the brigade is emptied before returning.
        unsafe {
            if self.input.is_null() {
                self.input = sys::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc);
            }
            let bb = self.input;
            let mode = if block {
                sys::apr_read_type_e_APR_BLOCK_READ
            } else {
                sys::apr_read_type_e_APR_NONBLOCK_READ
            };
            let rv = sys::ap_get_brigade(
                (*r).input_filters,
                bb,
                sys::ap_input_mode_t_AP_MODE_READBYTES,
                mode,
                max as i64,
            );
            if !block && rv == libc::EAGAIN {
                sys::apr_brigade_cleanup(bb.cast());
                return Ok(None);
            }
            if rv != sys::APR_SUCCESS {
                sys::apr_brigade_cleanup(bb.cast());
                (*(*r).connection).keepalive = sys::ap_conn_keepalive_e_AP_CONN_CLOSE;
                return Err(read_failure(rv).to_string());
            }
            let eos = sys::wsgi_rs_brigade_ends_with_eos(bb) != 0;
            let mut len: sys::apr_off_t = 0;
            if sys::apr_brigade_length(bb, 1, &mut len) != sys::APR_SUCCESS {
                sys::apr_brigade_cleanup(bb.cast());
                return Err("the request body could not be read".to_string());
            }
            (*r).read_length += len;
            if eos {
                self.input_ended = true;
            }
            if len == 0 {
                sys::apr_brigade_cleanup(bb.cast());
            }
            let len = len as usize;
            Ok((len > 0 || eos || block).then_some(len))
        }
    }

    /// Reads up to `buf.len()` body bytes through the input filters.
    /// Ok(None): nothing available now (non-blocking reads only).
    fn read_filtered(
        &mut self,
        buf: &mut [MaybeUninit<u8>],
        block: bool,
    ) -> Result<Option<usize>, String> {
        let got = self.get_body(buf.len(), block)?;
        if got.unwrap_or(0) == 0 {
            return Ok(got);
        }
        let bb = self.input;
        let mut len = buf.len();
        // SAFETY: get_body filled bb with at most buf.len() bytes; flatten
        // writes at most `len` bytes into buf; the brigade is emptied.
        let rv = unsafe {
            let rv = sys::apr_brigade_flatten(bb, buf.as_mut_ptr().cast(), &mut len);
            sys::apr_brigade_cleanup(bb.cast());
            rv
        };
        if rv != sys::APR_SUCCESS {
            return Err("the request body could not be read".to_string());
        }
        Ok(Some(len))
    }

    /// Like `read`/`read_ready`, but the bytes stay in the buckets they
    /// arrived in, held until `release_held`: daemon mode writes them to
    /// the daemon's socket from there, without copying them first.
    pub fn read_held(&mut self, max: usize, block: bool) -> Result<Option<usize>, String> {
        let got = self.get_body(max, block)?;
        if got.unwrap_or(0) > 0 {
            // Set aside, then moved to `held`: a filter may hand out
            // transient buckets over a buffer it reuses on the next read
            // (mod_ssl does); setting them aside copies those only.
            let r = self.r;
            // SAFETY: r, its input filters and pool are live; both
            // brigades belong to r (save_brigade creates `held` if null).
            let rv = unsafe {
                sys::ap_save_brigade(
                    (*r).input_filters,
                    &mut self.held,
                    &mut self.input,
                    (*r).pool,
                )
            };
            if rv != sys::APR_SUCCESS {
                return Err("the request body could not be read".to_string());
            }
        }
        Ok(got)
    }

    /// The bytes `read_held` holds, in order; they stay valid until
    /// `release_held`.
    pub fn held(&self) -> Vec<&[u8]> {
        let mut out = Vec::new();
        if self.held.is_null() {
            return out;
        }
        // SAFETY: held is a live brigade; its buckets' data stays in place
        // until the brigade is cleaned up, which needs `&mut self`.
        unsafe {
            let mut b = sys::wsgi_rs_brigade_next(self.held, std::ptr::null_mut());
            while !b.is_null() {
                let mut data: *const libc::c_char = std::ptr::null();
                let mut len: sys::apr_size_t = 0;
                if sys::wsgi_rs_bucket_read(b, &mut data, &mut len) == sys::APR_SUCCESS && len > 0 {
                    out.push(std::slice::from_raw_parts(data.cast::<u8>(), len));
                }
                b = sys::wsgi_rs_brigade_next(self.held, b);
            }
        }
        out
    }

    /// Frees what `read_held` held.
    pub fn release_held(&mut self) {
        if !self.held.is_null() {
            // SAFETY: held is a live brigade of this request.
            unsafe { sys::apr_brigade_cleanup(self.held.cast()) };
        }
    }

    /// Whether blocks may go out without a FLUSH (see PASS_THROUGH_FILTERS).
    fn pass_through(&mut self) -> bool {
        if let Some(p) = self.pass_through {
            return p;
        }
        let mut ok = true;
        // SAFETY: r's output filter chain is live and not modified meanwhile.
        unsafe {
            let mut f = (*self.r).output_filters;
            while !f.is_null() {
                let name = if (*f).frec.is_null() {
                    None
                } else {
                    apache::cbytes((*(*f).frec).name)
                };
                ok &= name.is_some_and(|n| {
                    PASS_THROUGH_FILTERS
                        .iter()
                        .any(|p| n.eq_ignore_ascii_case(p))
                });
                f = (*f).next;
            }
        }
        self.pass_through = Some(ok);
        ok
    }

    /// The client connection's socket descriptor.
    fn socket_fd(&self) -> Option<std::os::fd::RawFd> {
        // SAFETY: the connection and its socket are live; apr_os_sock_get
        // only writes the descriptor.
        unsafe {
            let sock = sys::ap_get_conn_socket((*self.r).connection);
            let mut fd: sys::apr_os_sock_t = -1;
            (!sock.is_null() && sys::apr_os_sock_get(&mut fd, sock) == sys::APR_SUCCESS)
                .then_some(fd)
        }
    }

    /// Bytes the client socket takes now without blocking, with margins
    /// for chunk framing and the kernel's per-buffer overhead. A write blocks
    /// once the kernel's queued memory (payload plus overhead) reaches the
    /// send buffer size, so this counts in that currency (SO_MEMINFO) and
    /// takes half of what is free as payload.
    fn socket_room(&self) -> usize {
        let Some(fd) = self.socket_fd() else {
            return 0;
        };
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info` and
        // fails harmlessly on a bad descriptor.
        let rv = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rv != 0 {
            return 0;
        }
        let sndbuf = info[libc::SK_MEMINFO_SNDBUF as usize] as usize;
        let queued = info[libc::SK_MEMINFO_WMEM_QUEUED as usize] as usize;
        (sndbuf.saturating_sub(queued) / 2)
            .saturating_sub(ROOM_MARGIN)
            .min(ROOM_MAX)
    }

    /// Whether a file_wrapper file may go out with sendfile: only with
    /// WSGIEnableSendfile On (default Off, as mod_wsgi), and not where
    /// Apache's EnableSendfile is explicitly Off (e.g. for a network file
    /// system). mod_wsgi ignores EnableSendfile; honouring an explicit Off
    /// keeps Apache's one switch for "sendfile is unsafe here" working,
    /// while Apache's default (unset) leaves WSGIEnableSendfile On effective.
    /// Daemon mode comes through here too: the daemon passes the descriptor
    /// and the Apache child sends it, under the request's configuration.
    fn enable_sendfile(&self) -> bool {
        // SAFETY: r is live; our directory record is immutable once merged;
        // the shim reads the core module's directory config.
        unsafe {
            let dir = &*(sys::wsgi_rs_dir_config(self.r) as *const DirConfig);
            dir.enable_sendfile() && sys::wsgi_rs_core_sendfile_off(self.r) == 0
        }
    }
}

impl Transport for ApacheTransport<'_> {
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
        // A blocking read always has an answer (get_body retries).
        self.read_filtered(buf, true).map(Option::unwrap_or_default)
    }

    fn read_ready(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<Option<usize>, String> {
        self.read_filtered(buf, false)
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

    fn can_queue(&mut self) -> bool {
        self.pass_through()
    }

    fn room(&mut self) -> usize {
        self.socket_room()
    }

    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        self.socket_fd()
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

    fn log_at(&mut self, level: Level, msg: &str, site: crate::wsgi::transport::Site<'_>) {
        // SAFETY: r is live.
        unsafe { log::rerror_at(self.r, level, msg, site) }
    }
}
