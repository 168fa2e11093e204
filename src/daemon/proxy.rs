//! An Apache child's side of daemon mode: it hands the request to the
//! group's daemon over its socket and relays the response into Apache's
//! brigades (through the same `ApacheTransport` embedded mode writes to),
//! so output filters, sendfile and logging behave alike.
//!
//! Each step that can fail is named, logged once and mapped to one status:
//! connect → 503, no answer in time → 504, the daemon gone before the
//! headers → 502, bad headers → 500; after the headers, a broken response is
//! cut on the client's side, never ended cleanly.
use super::protocol::{self, set_timeout, FrameReader, Kind, Refusal, END_CLOSE};
use super::shared::{Cause, Reason};
use super::supervisor::{Daemons, Group};
use crate::apache::{log, sys};
use crate::embedded::transport::ApacheTransport;
use crate::metrics::record::Failure;
use crate::wsgi::head::{HandOff, RequestHead};
use crate::wsgi::start_response::{check_header, parse_status};
use crate::wsgi::transport::{Ending, Level, ResponseHead, Transport};
use std::io;
use std::ops::ControlFlow::{self, Break, Continue};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set when this Apache child is torn down: an ungraceful stop destroys
/// its pools from a signal handler while worker threads still relay
/// responses, so a relay that wakes up then must not touch Apache again
/// (nor return into it).
static EXITING: AtomicBool = AtomicBool::new(false);
/// Relays inside an Apache call right now.
static IN_APACHE: AtomicUsize = AtomicUsize::new(0);

/// A relay's permission to call into Apache, for one step.
struct ApacheCall;

impl ApacheCall {
    fn enter() -> ApacheCall {
        IN_APACHE.fetch_add(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            IN_APACHE.fetch_sub(1, Ordering::SeqCst);
            park_forever();
        }
        ApacheCall
    }
}

impl Drop for ApacheCall {
    fn drop(&mut self) {
        IN_APACHE.fetch_sub(1, Ordering::SeqCst);
        if EXITING.load(Ordering::SeqCst) {
            park_forever();
        }
    }
}

/// The process is exiting: this thread ends with it.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The child's pools are about to go: relays stop touching Apache (those
/// inside a call get a moment to leave it).
pub fn child_exiting() {
    EXITING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_millis(500);
    while IN_APACHE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A failure before the response started: the status Apache answers with,
/// the OS error behind it (0 for none) and the line logged.
struct Refused(i32, i32, String);

/// Serves the request through daemon process group `g`.
///
/// # Safety
/// `r` must be the live request being handled.
pub unsafe fn handle(
    r: *mut sys::request_rec,
    d: &Daemons,
    g: &Group,
    head: &RequestHead,
    error_override: bool,
) -> i32 {
    let name = &g.def.name;
    // SAFETY: r is live; the socket's timeout is put back before returning.
    let _client_timeout = unsafe { ClientTimeout::set(r, g.def.response_socket_timeout) };
    // A process restarting for a changed script turns the request away; it
    // is sent again, up to mod_wsgi's 2 × processes + 1 attempts.
    let attempts = 2 * g.def.processes + 1;
    let mut connects = 0;
    for attempt in 1..=attempts {
        let res = connect(g, &mut connects).and_then(|(conn, pid)| {
            let mut payload = Vec::with_capacity(4096);
            // Without a body, the window is moot: no socket options to set.
            let window = match head.body_length {
                Some(0) => 4096,
                _ => body_window(conn.as_raw_fd()),
            };
            payload.extend_from_slice(&window.to_le_bytes());
            let hand_off = HandOff {
                server_pid: std::process::id() as i32,
                connects,
                restarts: attempt - 1,
                queue_start: crate::wsgi::recording::now_us(),
                daemon_start: 0,
            };
            protocol::encode_head(head, &hand_off, &mut payload);
            protocol::write_frame(conn.as_raw_fd(), Kind::Head, &[&payload])
                .map_err(|e| {
                    failure(g, Failure::Send);
                    // mod_wsgi numbers the first attempt's failure and a
                    // retry's apart.
                    let id = if attempt == 1 { "WSGI0121" } else { "WSGI0125" };
                    Refused(
                        sys::HTTP_INTERNAL_SERVER_ERROR,
                        e.raw_os_error().unwrap_or(0),
                        format!(
                            "{id}: Unable to send request details to WSGI daemon process '{name}' on '{}'.",
                            g.socket
                        ),
                    )
                })
                .map(|()| (conn, pid))
        });
        let (conn, pid) = match res {
            Ok(c) => c,
            Err(Refused(status, errno, msg)) => {
                // SAFETY: r is live.
                unsafe { log::script_rerror(r, log::ERR, errno, &msg) };
                return status;
            }
        };
        // SAFETY: r is live for this call; the transport is dropped before it returns.
        let mut t = unsafe { ApacheTransport::new(r) };
        let mut relay = Relay {
            r,
            d,
            g,
            pid,
            script: &head.target.script,
            reader: FrameReader::new(conn.as_raw_fd()),
            fd: conn.as_raw_fd(),
            started: false,
            ended: false,
            body_done: None,
            credit: 0,
            body_sent: false,
            pending: Vec::new(),
            error_override,
        };
        match relay.run(&mut t) {
            Outcome::Done(status) => return status,
            Outcome::Again if attempt < attempts => {
                let msg = format!(
                    "Reconnecting after WSGI daemon process '{name}' restart, attempt #{attempt}."
                );
                // SAFETY: r and its server are live; as in mod_wsgi, a
                // server line (no client, no script).
                unsafe { log::error((*r).server, log::INFO, &msg) };
            }
            Outcome::Again => {}
        }
    }
    let msg = format!(
        "WSGI0124: Maximum number of WSGI daemon process '{name}' restart attempts reached: {attempts}."
    );
    // SAFETY: r is live.
    unsafe { log::script_rerror(r, log::ERR, 0, &msg) };
    failure(g, Failure::RestartLoop);
    sys::HTTP_SERVICE_UNAVAILABLE
}

fn failure(g: &Group, f: Failure) {
    crate::metrics::record::failure(&g.def.name, f);
}

/// One frame's outcome: go on, or end the relay with a status.
type Step = ControlFlow<i32>;

/// `relay`'s status for a request turned away by a restarting daemon.
const RESTARTING: i32 = -1;

/// response-socket-timeout: the client socket's timeout while relaying.
struct ClientTimeout(*mut sys::apr_socket_t, sys::apr_interval_time_t);

impl ClientTimeout {
    /// # Safety
    /// `r` must be live for as long as the returned guard.
    unsafe fn set(r: *mut sys::request_rec, t: Option<Duration>) -> Option<ClientTimeout> {
        let t = t?;
        // SAFETY: the connection and its socket live as long as r.
        unsafe {
            let sock = sys::ap_get_conn_socket((*r).connection);
            if sock.is_null() {
                return None;
            }
            let mut old: sys::apr_interval_time_t = 0;
            sys::apr_socket_timeout_get(sock, &mut old);
            sys::apr_socket_timeout_set(sock, t.as_micros() as sys::apr_interval_time_t);
            Some(ClientTimeout(sock, old))
        }
    }
}

impl Drop for ClientTimeout {
    fn drop(&mut self) {
        // SAFETY: the socket is live (the request still is).
        unsafe { sys::apr_socket_timeout_set(self.0, self.1) };
    }
}

/// How a relay ended.
enum Outcome {
    /// The handler's status.
    Done(i32),
    /// The daemon turned the request away while restarting: send it again.
    Again,
}

/// Connects to the group's socket, retrying while it is refused or its
/// queue is full, until connect-timeout (mod_wsgi's back-off: every
/// 0.125 s, then every second after 2 s). Returns the connection and the
/// daemon process at the other end (when the kernel knows it yet).
fn connect(g: &Group, connects: &mut u32) -> Result<(OwnedFd, i32), Refused> {
    let name = &g.def.name;
    let started = Instant::now();
    let limit = g.def.connect_timeout;
    loop {
        *connects += 1;
        let fd = new_socket().map_err(|e| {
            failure(g, Failure::Send);
            Refused(
                sys::HTTP_INTERNAL_SERVER_ERROR,
                e.raw_os_error().unwrap_or(0),
                format!(
                    "WSGI0115: Unable to create socket to connect to WSGI daemon process '{name}' on '{}'.",
                    g.socket
                ),
            )
        })?;
        match try_connect(fd, &g.socket, limit.saturating_sub(started.elapsed())) {
            Ok(fd) => {
                set_timeout(fd.as_raw_fd(), libc::SO_RCVTIMEO, g.socket_timeout);
                set_timeout(fd.as_raw_fd(), libc::SO_SNDTIMEO, g.socket_timeout);
                return Ok((fd, 0));
            }
            Err(e) => {
                // As mod_wsgi: only a refused connection or a full queue is
                // retried; a missing socket fails at once (WSGI0117).
                let retry = matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED | libc::EAGAIN | libc::EINTR)
                );
                if !retry || started.elapsed() >= limit {
                    let msg = if retry {
                        format!(
                            "WSGI0116: Unable to connect to WSGI daemon process '{name}' on '{}' after multiple attempts as listener backlog limit was exceeded or the socket does not exist.",
                            g.socket
                        )
                    } else {
                        // SAFETY: geteuid is a plain query.
                        let uid = unsafe { libc::geteuid() };
                        format!(
                            "WSGI0117: Unable to connect to WSGI daemon process '{name}' on '{}' as user with uid={uid}.",
                            g.socket
                        )
                    };
                    failure(g, Failure::Connect);
                    return Err(Refused(
                        sys::HTTP_SERVICE_UNAVAILABLE,
                        e.raw_os_error().unwrap_or(0),
                        msg,
                    ));
                }
                let pause = if started.elapsed() < Duration::from_secs(2) {
                    Duration::from_millis(125)
                } else {
                    Duration::from_secs(1)
                };
                std::thread::sleep(pause.min(limit.saturating_sub(started.elapsed())));
            }
        }
    }
}

/// How much request body may be in flight to the daemon: what the
/// connection's send buffer holds, grown towards WINDOW_MAX as far as
/// net.core.wmem_max allows (the kernel reports twice what it grants to
/// data; half of that leaves room for its per-packet overhead).
fn body_window(fd: RawFd) -> u32 {
    let want = protocol::WINDOW_MAX as libc::c_int;
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let int = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: plain socket options on a connection this request owns, with
    // pointers to ints that outlive the calls.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&want as *const libc::c_int).cast(),
            int,
        );
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        );
    }
    (got as usize / 2).clamp(4096, protocol::WINDOW_MAX) as u32
}

/// A new UNIX stream socket (mod_wsgi reports its failure apart).
fn new_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() has no preconditions; the descriptor is owned at once.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Connects `fd` to the socket at `path`; a full queue is waited on for up
/// to `wait` (a blocking connect honours the send timeout).
fn try_connect(fd: OwnedFd, path: &str, wait: Duration) -> io::Result<OwnedFd> {
    // SAFETY: plain socket calls on a descriptor owned by the OwnedFd; the
    // address is a zeroed sockaddr_un holding a bounded path.
    unsafe {
        set_timeout(
            fd.as_raw_fd(),
            libc::SO_SNDTIMEO,
            wait.max(Duration::from_millis(10)),
        );
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let rv = libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        if rv != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

struct Relay<'a> {
    /// The request served (live for the relay's life).
    r: *mut sys::request_rec,
    d: &'a Daemons,
    g: &'a Group,
    /// The daemon process serving the request (0 until known).
    pid: i32,
    script: &'a str,
    reader: FrameReader,
    fd: RawFd,
    started: bool,
    ended: bool,
    /// How the body ended, when that was found ahead of the daemon's asking.
    body_done: Option<Result<(), String>>,
    /// Body bytes the daemon is ready for (its `Read` grants, less what was sent).
    credit: usize,
    /// The body's end (or error) went to the daemon.
    body_sent: bool,
    /// Response data joined from frames that arrived together.
    pending: Vec<u8>,
    /// WSGIErrorOverride: a 4xx/5xx response's body is Apache's error document.
    error_override: bool,
}

impl Relay<'_> {
    fn name(&self) -> &str {
        &self.g.def.name
    }

    /// An error line for the request, as mod_wsgi words it (`errno` 0: none).
    fn log_error(&self, errno: i32, msg: &str) {
        // SAFETY: the request outlives the relay.
        unsafe { log::script_rerror(self.r, log::ERR, errno, msg) };
    }

    /// Whether the daemon went away for `cause`.
    fn cause_is(&mut self, cause: Cause) -> bool {
        self.pid != 0 && self.d.table.cause_of(self.pid, Duration::from_millis(2500)) == Some(cause)
    }

    /// Waits for the daemon to take the request (its first frame). The
    /// socket queues connections for as long as Apache runs, so a request
    /// queued while no process of the group runs would wait for nothing:
    /// after connect-timeout without one, the answer is 503.
    fn await_daemon(&mut self) -> Result<(), Refused> {
        let started = Instant::now();
        let mut none_since: Option<Instant> = None;
        let first = self.d.table.slot_id(self.d, self.g.index, 0);
        let slots = first..first + self.g.def.processes as usize;
        while !self.reader.has_frame() {
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: polls the connection this relay owns.
            if unsafe { libc::poll(&mut pfd, 1, 200) } != 0 {
                return Ok(());
            }
            if self.d.table.any_running(slots.clone()) {
                none_since = None;
            } else if none_since.get_or_insert_with(Instant::now).elapsed()
                >= self.g.def.connect_timeout
            {
                failure(self.g, Failure::NoProcess);
                return Err(Refused(
                    sys::HTTP_SERVICE_UNAVAILABLE,
                    0,
                    format!(
                        "No process of WSGI daemon process group '{}' is running (it keeps failing to start, or is restarting); gave up after connect-timeout ({:.1} s)",
                        self.name(),
                        self.g.def.connect_timeout.as_secs_f64()
                    ),
                ));
            }
            if started.elapsed() >= self.g.socket_timeout {
                return Ok(()); // the read below times out: 504
            }
        }
        Ok(())
    }

    fn run(&mut self, t: &mut ApacheTransport<'_>) -> Outcome {
        match self.relay(t) {
            RESTARTING => Outcome::Again,
            status => Outcome::Done(status),
        }
    }

    fn relay(&mut self, t: &mut ApacheTransport<'_>) -> i32 {
        if let Err(Refused(status, errno, msg)) = self.await_daemon() {
            let _call = ApacheCall::enter();
            self.log_error(errno, &msg);
            return status;
        }
        loop {
            let frame = self.reader.next_at();
            let _call = ApacheCall::enter();
            let step = match frame {
                Ok(Some((Kind::Data, at))) if self.started => self.on_data(t, at),
                Ok(Some((kind, at))) => {
                    let payload = self.reader.payload(at).to_vec();
                    self.on_frame(t, kind, &payload)
                }
                Ok(None) => Break(self.broken(t, io::ErrorKind::UnexpectedEof.into())),
                Err(e) => Break(self.broken(t, e)),
            };
            if let Break(status) = step {
                return status;
            }
        }
    }

    /// Response data: sent straight from the reader's buffer when nothing
    /// else is pending, joined with what follows when more is here.
    fn on_data(&mut self, t: &mut ApacheTransport<'_>, at: std::ops::Range<usize>) -> Step {
        if self.pending.is_empty() && self.reader.next_is(Kind::End) {
            // The last block (a list's body, usually): it goes out with the
            // end of the response, from the reader's buffer, not joined.
            self.ended = true;
            if t.end(&[self.reader.payload(at)], Ending::Now).is_err() {
                return Break(self.client_gone(t));
            }
            return Continue(());
        }
        if self.pending.is_empty() && !self.more_soon() {
            if t.send(&[self.reader.payload(at)]).is_err() {
                return Break(self.client_gone(t));
            }
            return Continue(());
        }
        self.pending.extend_from_slice(self.reader.payload(at));
        if self.pending.len() >= self.g.def.response_buffer_size || !self.more_soon() {
            return self.flush_pending(t);
        }
        Continue(())
    }

    /// Sends the joined response data; false if the client went away.
    fn send_pending(&mut self, t: &mut ApacheTransport<'_>) -> bool {
        let sent = self.pending.is_empty() || t.send(&[&self.pending]).is_ok();
        self.pending.clear();
        sent
    }

    fn flush_pending(&mut self, t: &mut ApacheTransport<'_>) -> Step {
        if self.send_pending(t) {
            Continue(())
        } else {
            Break(self.client_gone(t))
        }
    }

    /// Every frame but response data.
    fn on_frame(&mut self, t: &mut ApacheTransport<'_>, kind: Kind, payload: &[u8]) -> Step {
        match kind {
            Kind::Hello => {
                self.pid = protocol::Cursor::new(payload).u32().unwrap_or(0) as i32;
            }
            Kind::Read => self.on_read(t, payload),
            Kind::Log => {
                let (level, site, msg) = protocol::decode_log(payload);
                t.log_at(level, &msg, site.as_ref().map(|(f, l)| (f.as_str(), *l)));
            }
            Kind::Start if !self.started => match self.start(t, payload) {
                // Apache answers with its ErrorDocument for `code`; the
                // daemon's body is not wanted.
                Ok(code) if self.error_override && code >= 400 => return Break(i32::from(code)),
                Ok(_) => self.started = true,
                Err(msg) => {
                    self.log_error(0, &msg);
                    return Break(sys::HTTP_INTERNAL_SERVER_ERROR);
                }
            },
            Kind::Length if self.started => {
                if let Ok(n) = protocol::Cursor::new(payload).u64() {
                    t.content_length_hint(n);
                }
            }
            Kind::File if self.started => return self.on_file(t, payload),
            Kind::End if self.started => {
                let pending = std::mem::take(&mut self.pending);
                if !self.ended && t.end(&[&pending], Ending::Now).is_err() {
                    return Break(self.client_gone(t));
                }
                if payload.first().is_some_and(|f| f & END_CLOSE != 0) {
                    t.close_connection();
                }
                return Break(sys::OK);
            }
            Kind::Abort if self.started => {
                // What the application produced before it failed still
                // reaches the client; then the connection is cut.
                self.send_pending(t);
                t.abort();
                return Break(sys::OK);
            }
            Kind::NoResponse if !self.started => return Break(self.refused(payload)),
            _ => return Break(self.protocol_error(t, "an unexpected frame")),
        }
        Continue(())
    }

    /// A file range (its descriptor came with the frame), then the end.
    fn on_file(&mut self, t: &mut ApacheTransport<'_>, payload: &[u8]) -> Step {
        self.flush_pending(t)?;
        let mut c = protocol::Cursor::new(payload);
        let (Ok(offset), Ok(len), Some(file)) = (c.u64(), c.u64(), self.reader.take_fd()) else {
            return Break(self.protocol_error(t, "a file without its descriptor"));
        };
        self.ended = true;
        if t.send_file(file, offset, len).is_err() {
            return Break(self.client_gone(t));
        }
        Continue(())
    }

    /// The status for a request the daemon did not answer.
    fn refused(&mut self, payload: &[u8]) -> i32 {
        let (cause, status, why) = match Refusal::from_byte(payload.first().copied().unwrap_or(1)) {
            Refusal::NotFound => return sys::HTTP_NOT_FOUND,
            Refusal::Error => return sys::HTTP_INTERNAL_SERVER_ERROR,
            Refusal::Restarting => return RESTARTING,
            Refusal::Interrupted => (
                Failure::RequestInterrupted,
                sys::HTTP_GATEWAY_TIME_OUT,
                format!(
                    "Request to daemon process '{}' ran past request-timeout ({:.0} s) and was interrupted.",
                    self.name(),
                    self.g.def.request_timeout.unwrap_or_default().as_secs_f64()
                ),
            ),
            Refusal::QueueTimeout => (
                Failure::QueueTimeout,
                sys::HTTP_GATEWAY_TIME_OUT,
                format!(
                    "WSGI0084: Queue timeout expired for WSGI daemon process '{}'.",
                    self.name()
                ),
            ),
        };
        self.log_error(0, &why);
        failure(self.g, cause);
        status
    }

    /// Whether more response data is here, or arrives within
    /// response-flush-delay (then it goes out with what is pending, in one
    /// write, instead of a flush per block).
    fn more_soon(&mut self) -> bool {
        if self.reader.has_frame() {
            return true;
        }
        let delay = self.g.def.response_flush_delay;
        if delay.is_zero() {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls the connection this relay owns.
        unsafe { libc::poll(&mut pfd, 1, delay.as_millis().max(1) as i32) > 0 }
    }

    /// The daemon granted credit for `payload` more body bytes: sends body
    /// frames until it is used up or the body ends. Blocking on the client
    /// here is what the application, which is reading, waits for; and the
    /// writes never block, since the credit fits in the socket's buffer.
    fn on_read(&mut self, t: &mut ApacheTransport<'_>, payload: &[u8]) {
        let more = protocol::Cursor::new(payload).u32().unwrap_or(0) as usize;
        self.credit = self.credit.saturating_add(more);
        while self.credit > 0 && !self.body_sent {
            if let Err(e) = self.send_body(t) {
                // The daemon stopped reading: the rest is not sent.
                self.log_error(
                    0,
                    &format!(
                        "WSGI0129: Request data write error when proxying data to daemon process: {}.",
                        log::os_text(&e)
                    ),
                );
                self.body_sent = true;
            }
        }
    }

    /// One body frame: one blocking read, then what else has arrived (a
    /// frame per Apache read, 8 KB, would cost the daemon a wake-up each),
    /// or the body's end or error. The bytes go from the buckets they
    /// arrived in straight to the socket.
    fn send_body(&mut self, t: &mut ApacheTransport<'_>) -> io::Result<()> {
        let max = self.credit.min(protocol::BODY_FRAME_MAX);
        // The end or an error met while filling the last frame is sent
        // next: the input filters are not asked again (after
        // LimitRequestBody, HTTP_IN would report a clean end).
        let res = match self.body_done.take() {
            Some(Ok(())) => Ok(0),
            Some(Err(e)) => Err(e),
            None => t.read_held(max, true).map(|got| {
                let mut n = got.unwrap_or(0);
                while n > 0 && n < max {
                    match t.read_held(max - n, false) {
                        Ok(Some(0)) => {
                            self.body_done = Some(Ok(()));
                            break;
                        }
                        Ok(Some(k)) => n += k,
                        Ok(None) => break,
                        Err(e) => {
                            self.body_done = Some(Err(e));
                            break;
                        }
                    }
                }
                n
            }),
        };
        let fd = self.fd;
        match res {
            Ok(0) => {
                t.release_held();
                self.body_sent = true;
                protocol::write_frame(fd, Kind::BodyEnd, &[])
            }
            Ok(n) => {
                self.credit -= n;
                let sent = protocol::write_frame(fd, Kind::Body, &t.held());
                t.release_held();
                sent
            }
            Err(why) => {
                t.release_held();
                self.body_sent = true;
                protocol::write_frame(fd, Kind::BodyError, &[why.as_bytes()])
            }
        }
    }

    /// Checks the status and headers again: the daemon runs the
    /// application's code, so what it sends is not trusted further than
    /// what embedded mode accepts from start_response.
    fn start(&mut self, t: &mut ApacheTransport<'_>, payload: &[u8]) -> Result<u16, String> {
        let name = self.name();
        let too_long =
            || format!("WSGI0144: Response header line too long from daemon process '{name}'.");
        let malformed = |line: String| {
            format!(
                "WSGI0148: Malformed header '{line}' found when reading script headers from daemon process '{name}'."
            )
        };
        let bad = |why: String| {
            format!(
                "Invalid response headers from daemon process '{name}' for WSGI script '{}': {why}.",
                self.script
            )
        };
        if payload.len() > self.g.def.header_buffer_size.max(8192) * 4 {
            return Err(too_long());
        }
        let head: ResponseHead =
            protocol::decode_response(payload).map_err(|e| bad(e.to_string()))?;
        let code = parse_status(&head.status)
            .map_err(|_| malformed(format!("Status: {}", String::from_utf8_lossy(&head.status))))?;
        let mut content_length = None;
        for (k, v) in &head.headers {
            if k.len() + v.len() + 2 > self.g.def.header_buffer_size {
                return Err(too_long());
            }
            let line = || {
                format!(
                    "{}: {}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            };
            if let Some(n) = check_header(k, v).map_err(|_| malformed(line()))? {
                content_length = Some(n);
            }
        }
        if code != head.code || content_length != head.content_length {
            return Err(bad("inconsistent status or Content-Length".into()));
        }
        t.start(&head);
        Ok(code)
    }

    /// The connection to the daemon broke (or timed out).
    fn broken(&mut self, t: &mut ApacheTransport<'_>, e: io::Error) -> i32 {
        let timed_out = matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        );
        let eof = e.kind() == io::ErrorKind::UnexpectedEof;
        let name = self.name().to_string();
        if !self.started {
            // mod_wsgi's three ways to lose the headers, with its statuses;
            // a process restarted for request-timeout shows as one of the
            // last two there too.
            let (status, msg) = if timed_out {
                (
                    sys::HTTP_GATEWAY_TIME_OUT,
                    format!("WSGI0145: Timeout when reading response headers from daemon process '{name}'."),
                )
            } else if eof {
                (
                    sys::HTTP_BAD_GATEWAY,
                    format!("WSGI0146: Daemon process '{name}' closed connection before sending complete response headers."),
                )
            } else {
                (
                    sys::HTTP_BAD_GATEWAY,
                    format!("WSGI0147: Error reading response headers from daemon process '{name}' ({}).", log::os_text(&e)),
                )
            };
            let cause = if timed_out {
                Failure::SocketTimeout
            } else if self.cause_is(Cause::Recycled(Reason::RequestTimeout)) {
                Failure::RequestTimeout
            } else {
                Failure::DaemonCrash
            };
            self.log_error(0, &msg);
            failure(self.g, cause);
            return status;
        }
        self.send_pending(t);
        let errno = if timed_out {
            libc::ETIMEDOUT
        } else {
            e.raw_os_error().unwrap_or(0)
        };
        self.log_error(
            errno,
            "WSGI0119: Unable to proxy response from daemon to client.",
        );
        t.abort();
        sys::OK
    }

    fn protocol_error(&mut self, t: &mut ApacheTransport<'_>, what: &str) -> i32 {
        let msg = format!(
            "Protocol error from daemon process '{}': {what}.",
            self.name()
        );
        self.log_error(0, &msg);
        if self.started {
            t.abort();
            sys::OK
        } else {
            sys::HTTP_INTERNAL_SERVER_ERROR
        }
    }

    /// The client went away: the daemon's next write fails when the
    /// connection closes, and the application sees it as embedded would.
    fn client_gone(&mut self, t: &mut ApacheTransport<'_>) -> i32 {
        t.log(Level::Info, &crate::wsgi::app::client_gone(self.script));
        sys::OK
    }
}
