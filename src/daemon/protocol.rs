//! The wire between an Apache child and a daemon process: one UNIX stream
//! connection per request, carrying frames both ways.
//!
//! A frame is a kind byte, a little-endian u32 payload length, and the
//! payload. Unlike mod_wsgi's stream, every part is delimited, so a response
//! cut short by a crash is told apart from a complete one (no `End` frame),
//! and the body flows on demand: once the application reads, the daemon
//! grants the child credit (`Read`) to send body bytes, never more than
//! the child's socket buffer holds (the `window` in `Head`). Neither side
//! buffers a whole body, and a large upload cannot deadlock against a
//! large response: the child's writes never block. `Hello` says
//! which process took the request (SO_PEERCRED would name the process that
//! called listen(), the Apache parent), for the log line if it dies. `Length` says
//! how long a body given all at once (a list) is, so the child can send a
//! Content-Length as embedded mode does, however the data is framed.
//!
//! ```text
//! child → daemon   Head(window, request head)  Body(bytes)* BodyEnd | BodyError(reason)
//! daemon → child   Hello(pid)  Read(credit)*  Log(level, text)*
//!                  Start(status, headers) [Length(n)] Data(bytes)* File(offset, len; fd)*
//!                  End(flags) | Abort | NoResponse(why)
//! ```
pub use super::reader::FrameReader;
use crate::wsgi::head::{HandOff, Key, RequestHead, Target, Text, VarName};
use crate::wsgi::transport::{Level, ResponseHead, Site};
use std::io;
use std::os::fd::RawFd;

/// The most a frame may carry: request heads are capped like mod_wsgi 6's
/// (16 MiB); data frames are written smaller (`DATA_MAX`).
pub const FRAME_MAX: usize = 16 << 20;
/// Body and response data are sent in frames of at most this size.
pub const DATA_MAX: usize = 64 * 1024;
/// Request body frames. The child holds a frame's bytes in the buckets
/// Apache read them into until it is written, and the connection's APR
/// allocator keeps that much for reuse after the connection (up to
/// MaxMemFree). 256 KiB frames made 1 MiB POSTs 23% faster but added
/// 15 MiB PSS across 2 × 64 threads (measured), over mod_wsgi's total.
pub const BODY_FRAME_MAX: usize = 64 * 1024;
/// The most request body a child keeps in flight (`Head`'s window is its
/// socket buffer's capacity, up to this).
pub const WINDOW_MAX: usize = 1 << 20;
pub(super) const HEADER: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Head = b'H',
    Hello = b'P',
    Body = b'B',
    BodyEnd = b'E',
    BodyError = b'X',
    Read = b'R',
    Log = b'L',
    Start = b'S',
    Length = b'C',
    Data = b'D',
    File = b'F',
    End = b'Z',
    Abort = b'A',
    NoResponse = b'N',
}

impl Kind {
    pub(super) fn from_byte(b: u8) -> Option<Kind> {
        use Kind::*;
        [
            Head, Hello, Body, BodyEnd, BodyError, Read, Log, Start, Length, Data, File, End,
            Abort, NoResponse,
        ]
        .into_iter()
        .find(|k| *k as u8 == b)
    }
}

/// Why there is no response (`NoResponse`): the child answers the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    /// The script has no such callable: 404.
    NotFound = 0,
    /// The script or the application failed: 500.
    Error = 1,
    /// The request waited longer than queue-timeout: 504.
    QueueTimeout = 2,
    /// The script changed: this process restarts; the child sends the
    /// request again (to another process, or the new one).
    Restarting = 3,
    /// The request was interrupted for running past request-timeout: 504.
    Interrupted = 4,
}

impl Refusal {
    pub fn from_byte(b: u8) -> Refusal {
        match b {
            0 => Refusal::NotFound,
            2 => Refusal::QueueTimeout,
            3 => Refusal::Restarting,
            4 => Refusal::Interrupted,
            _ => Refusal::Error,
        }
    }
}

/// A `Log` frame: the level's byte (with 0x80 when a site follows), then
/// for a site the line (u32 LE), the file's length (u16 LE) and the file,
/// then the message.
pub fn encode_log(level: Level, msg: &str, site: Site<'_>, out: &mut Vec<u8>) {
    let lvl = match level {
        Level::Error => 0u8,
        Level::Info => 1,
        Level::Crit => 2,
        Level::Warning => 4,
        Level::Debug => 7,
    };
    out.clear();
    match site {
        Some((file, line)) => {
            let file = &file.as_bytes()[..file.len().min(u16::MAX as usize)];
            out.push(lvl | 0x80);
            out.extend_from_slice(&(line as u32).to_le_bytes());
            out.extend_from_slice(&(file.len() as u16).to_le_bytes());
            out.extend_from_slice(file);
        }
        None => out.push(lvl),
    }
    out.extend_from_slice(msg.as_bytes());
}

/// A `Log` frame's level, site and message (as `encode_log` wrote them).
pub fn decode_log(payload: &[u8]) -> (Level, Option<(String, i32)>, String) {
    let lvl = payload.first().copied().unwrap_or(0);
    let level = match lvl & 0x7f {
        1 => Level::Info,
        2 => Level::Crit,
        4 => Level::Warning,
        7 => Level::Debug,
        _ => Level::Error,
    };
    let mut rest = payload.get(1..).unwrap_or(b"");
    let mut site = None;
    if lvl & 0x80 != 0 && rest.len() >= 6 {
        let line = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as i32;
        let n = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
        let file = rest.get(6..6 + n).unwrap_or(b"");
        site = Some((String::from_utf8_lossy(file).into_owned(), line));
        rest = rest.get(6 + n..).unwrap_or(b"");
    }
    (level, site, String::from_utf8_lossy(rest).into_owned())
}

/// `End` flag: the response was shorter than its Content-Length, so the
/// client connection must not be reused.
pub const END_CLOSE: u8 = 1;

pub(super) fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// A frame's 5-byte header.
pub fn header(kind: Kind, len: usize) -> [u8; HEADER] {
    let n = (len as u32).to_le_bytes();
    [kind as u8, n[0], n[1], n[2], n[3]]
}

/// Writes all of `parts` (gathered), retrying short writes and EINTR.
pub fn write_all(fd: RawFd, parts: &[&[u8]]) -> io::Result<()> {
    let mut iov: Vec<libc::iovec> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    let mut first = 0;
    while first < iov.len() {
        let count = (iov.len() - first).min(64) as libc::c_int;
        // SAFETY: every iovec points into a slice borrowed for this call.
        let n = unsafe { libc::writev(fd, iov[first..].as_ptr(), count) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut n = n as usize;
        while n > 0 && first < iov.len() {
            if n >= iov[first].iov_len {
                n -= iov[first].iov_len;
                first += 1;
            } else {
                // SAFETY: advancing within the same slice by n < its length.
                iov[first].iov_base = unsafe { (iov[first].iov_base as *mut u8).add(n) }.cast();
                iov[first].iov_len -= n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Writes one frame whose payload is `parts` concatenated.
pub fn write_frame(fd: RawFd, kind: Kind, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let h = header(kind, len);
    let mut all = Vec::with_capacity(parts.len() + 1);
    all.push(&h[..]);
    all.extend_from_slice(parts);
    write_all(fd, &all)
}

/// Writes a frame with a descriptor attached (SCM_RIGHTS).
pub fn write_frame_with_fd(fd: RawFd, kind: Kind, payload: &[u8], pass: RawFd) -> io::Result<()> {
    let h = header(kind, payload.len());
    let mut msg = h.to_vec();
    msg.extend_from_slice(payload);
    let mut iov = libc::iovec {
        iov_base: msg.as_mut_ptr().cast(),
        iov_len: msg.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain data; every pointer in it refers to a buffer
    // that outlives the sendmsg call, and the control buffer is sized by
    // CMSG_SPACE for exactly one descriptor.
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = control.as_mut_ptr().cast();
        m.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), pass);
        loop {
            let n = libc::sendmsg(fd, &m, libc::MSG_NOSIGNAL);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            // The descriptor went with the first byte; the rest is plain data.
            return if n < msg.len() {
                write_all(fd, &[&msg[n..]])
            } else {
                Ok(())
            };
        }
    }
}

/// Sets a socket's SO_RCVTIMEO or SO_SNDTIMEO (zero: no timeout).
pub fn set_timeout(fd: RawFd, opt: libc::c_int, t: std::time::Duration) {
    if t.is_zero() {
        return;
    }
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setting a timeval option on a socket the caller owns.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

// --- payload encodings -----------------------------------------------------

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    out.push(v.is_some() as u8);
    if let Some(n) = v {
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Reads fields from a payload, failing (not panicking) on short input.
pub struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cursor(b)
    }
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn opt_u64(&mut self) -> io::Result<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.u64().map(Some),
        }
    }
    /// What is left of the payload.
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("invalid UTF-8"))
    }
}

const OTHER: u8 = 255;

/// The request head as a `Head` payload, with the process group and the
/// request's arrival time for the daemon.
pub fn encode_head(h: &RequestHead, hand_off: &HandOff, out: &mut Vec<u8>) {
    let vars: Vec<_> = h.vars().collect();
    out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for (name, value, text) in vars {
        match name {
            VarName::Known(k) => out.push(k as u8),
            VarName::Other(n) => {
                out.push(OTHER);
                put_bytes(out, n);
            }
        }
        out.push(matches!(text, Text::Path) as u8);
        put_bytes(out, value);
    }
    let t = &h.target;
    put_bytes(out, t.script.as_bytes());
    out.extend_from_slice(&t.mtime.to_le_bytes());
    put_bytes(out, t.callable.as_bytes());
    out.push(t.script_reloading as u8);
    put_bytes(out, t.application_group.as_bytes());
    out.push(t.resource.is_some() as u8);
    put_bytes(out, t.resource.as_deref().unwrap_or("").as_bytes());
    put_opt_u64(out, h.body_length);
    out.extend_from_slice(&hand_off.server_pid.to_le_bytes());
    out.extend_from_slice(&hand_off.connects.to_le_bytes());
    out.extend_from_slice(&hand_off.restarts.to_le_bytes());
    out.extend_from_slice(&hand_off.queue_start.to_le_bytes());
}

pub fn decode_head(payload: &[u8]) -> io::Result<RequestHead> {
    let mut c = Cursor::new(payload);
    let n = c.u32()? as usize;
    let mut h = RequestHead::new(Target::default());
    for _ in 0..n.min(payload.len()) {
        let tag = c.u8()?;
        let name = if tag == OTHER { Some(c.bytes()?) } else { None };
        let text = if c.u8()? == 1 {
            Text::Path
        } else {
            Text::Latin1
        };
        let value = c.bytes()?;
        match name {
            Some(n) => h.set_other(n, value),
            None => {
                let key = *Key::ALL
                    .get(tag as usize)
                    .ok_or_else(|| bad("unknown environ key"))?;
                h.set_as(key, value, text);
            }
        }
    }
    h.target = Target {
        script: c.string()?,
        mtime: c.u64()? as i64,
        callable: c.string()?,
        script_reloading: c.u8()? != 0,
        application_group: c.string()?,
        resource: match (c.u8()?, c.string()?) {
            (0, _) => None,
            (_, r) => Some(r),
        },
    };
    h.body_length = c.opt_u64()?;
    h.hand_off = HandOff {
        server_pid: c.u32()? as i32,
        connects: c.u32()?,
        restarts: c.u32()?,
        queue_start: c.u64()? as i64,
        daemon_start: 0,
    };
    Ok(h)
}

pub fn encode_response(h: &ResponseHead, out: &mut Vec<u8>) {
    out.extend_from_slice(&h.code.to_le_bytes());
    put_bytes(out, &h.status);
    out.extend_from_slice(&(h.headers.len() as u32).to_le_bytes());
    for (k, v) in &h.headers {
        put_bytes(out, k);
        put_bytes(out, v);
    }
    put_opt_u64(out, h.content_length);
}

pub fn decode_response(payload: &[u8]) -> io::Result<ResponseHead> {
    let mut c = Cursor::new(payload);
    let code = c.u16()?;
    let status = c.bytes()?.to_vec();
    let n = c.u32()? as usize;
    let mut headers = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        headers.push((c.bytes()?.to_vec(), c.bytes()?.to_vec()));
    }
    let content_length = c.opt_u64()?;
    Ok(ResponseHead {
        code,
        status,
        headers,
        content_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trip() {
        let mut out = Vec::new();
        for level in [
            Level::Crit,
            Level::Error,
            Level::Warning,
            Level::Info,
            Level::Debug,
        ] {
            encode_log(level, "msg", Some(("/app/x.py", 42)), &mut out);
            assert_eq!(
                decode_log(&out),
                (
                    level,
                    Some(("/app/x.py".to_string(), 42)),
                    "msg".to_string()
                )
            );
            encode_log(level, "plain", None, &mut out);
            assert_eq!(decode_log(&out), (level, None, "plain".to_string()));
        }
        // A short or hostile payload decodes to something, never panics.
        assert_eq!(decode_log(&[0x84, 1]).0, Level::Warning);
        assert_eq!(decode_log(&[]), (Level::Error, None, String::new()));
    }

    #[test]
    fn head_round_trip() {
        let mut h = RequestHead::new(Target {
            script: "/srv/app/wsgi.py".into(),
            mtime: 1234567,
            callable: "application".into(),
            script_reloading: true,
            application_group: "localhost:8080|/app".into(),
            resource: Some("/srv/app/page.txt".into()),
        });
        h.set_other(b"HTTP_X_FOO", b"setenv");
        h.set_header(b"X-Foo", b"h\xe9");
        h.set(Key::RequestMethod, b"POST");
        h.set_as(Key::ScriptFilename, b"/srv/app/wsgi.py", Text::Path);
        h.body_length = Some(42);
        let mut wire = Vec::new();
        let hand_off = HandOff {
            server_pid: 4242,
            connects: 2,
            restarts: 1,
            queue_start: 1_795_000_000_000_000,
            daemon_start: 0,
        };
        encode_head(&h, &hand_off, &mut wire);
        let d = decode_head(&wire).unwrap();
        assert_eq!(d.hand_off, hand_off);
        assert_eq!(d.vars().collect::<Vec<_>>(), h.vars().collect::<Vec<_>>());
        assert_eq!(d.target.script, "/srv/app/wsgi.py");
        assert_eq!(d.target.mtime, 1234567);
        assert!(d.target.script_reloading);
        assert_eq!(d.target.resource.as_deref(), Some("/srv/app/page.txt"));
        assert_eq!(d.target.application_group, "localhost:8080|/app");
        assert_eq!(d.body_length, Some(42));
        for cut in 0..wire.len() {
            assert!(decode_head(&wire[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn response_round_trip() {
        let r = ResponseHead {
            code: 201,
            status: b"201 Created".to_vec(),
            headers: vec![(b"X-A".to_vec(), b"1".to_vec())],
            content_length: Some(7),
        };
        let mut wire = Vec::new();
        encode_response(&r, &mut wire);
        assert_eq!(decode_response(&wire).unwrap(), r);
        assert!(decode_response(&wire[..wire.len() - 1]).is_err());
    }
}
