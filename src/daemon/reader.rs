//! Reading frames (see `protocol`) from a stream socket. Frames are
//! buffered whole, except request body data, whose payload the daemon reads
//! straight into the application's bytes object (`peek_header`,
//! `read_payload`): a 1 MiB upload is not copied through this buffer.
use super::protocol::{bad, Kind, FRAME_MAX, HEADER};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Reads frames from a stream socket, keeping descriptors that arrive with
/// them (SCM_RIGHTS) for `File` frames.
pub struct FrameReader {
    fd: RawFd,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: std::collections::VecDeque<OwnedFd>,
}

impl FrameReader {
    pub fn new(fd: RawFd) -> FrameReader {
        FrameReader {
            fd,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            fds: Default::default(),
        }
    }

    /// Whether a whole frame is already buffered (the next `next` will not block).
    pub fn has_frame(&self) -> bool {
        let avail = &self.buf[self.start..self.end];
        avail.len() >= HEADER && avail.len() - HEADER >= frame_len(avail)
    }

    /// Whether the next frame, already buffered whole, is a `kind` (reads nothing).
    pub fn next_is(&self, kind: Kind) -> bool {
        self.has_frame() && self.buf[self.start] == kind as u8
    }

    /// The next frame, or None at a clean end of stream (between frames).
    /// A stream that ends inside a frame is an `UnexpectedEof` error.
    pub fn next(&mut self) -> io::Result<Option<(Kind, &[u8])>> {
        Ok(self.next_at()?.map(|(k, r)| (k, &self.buf[r])))
    }

    /// Like `next`, but the payload is left in the reader: `payload(range)`
    /// gives it until the next call.
    pub fn next_at(&mut self) -> io::Result<Option<(Kind, std::ops::Range<usize>)>> {
        loop {
            let avail = self.end - self.start;
            if avail >= HEADER {
                let len = frame_len(&self.buf[self.start..self.end]);
                if len > FRAME_MAX {
                    return Err(bad("frame too large"));
                }
                if avail - HEADER >= len {
                    let kind = Kind::from_byte(self.buf[self.start])
                        .ok_or_else(|| bad("unknown frame kind"))?;
                    let p = self.start + HEADER;
                    self.start = p + len;
                    return Ok(Some((kind, p..p + len)));
                }
                if HEADER + len > self.buf.len() {
                    // With room for the small frames that usually follow
                    // (a response's End), so that one read takes them too.
                    self.buf.resize(HEADER + len + 4096, 0);
                }
            }
            if self.end == self.start || self.buf.len() - self.end < 4096 {
                self.compact();
            }
            let n = self.fill()?;
            if n == 0 {
                return if self.end == self.start {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// The payload of the frame `next_at` returned last.
    pub fn payload(&self, at: std::ops::Range<usize>) -> &[u8] {
        &self.buf[at]
    }

    /// The next frame's kind and payload length, its header still unread:
    /// None at a clean end of stream. Reads no further than the header, so
    /// that a body frame's payload can go straight to its destination.
    /// Without `wait`, an incomplete header is `WouldBlock`.
    pub fn peek_header(&mut self, wait: bool) -> io::Result<Option<(Kind, usize)>> {
        while self.end - self.start < HEADER {
            self.compact();
            let want = HEADER - self.end;
            let iov = libc::iovec {
                iov_base: self.buf[self.end..].as_mut_ptr().cast(),
                iov_len: want,
            };
            let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
            match self.recv(&mut [iov], flags)? {
                0 if self.end == 0 => return Ok(None),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.end += n,
            }
        }
        let h = &self.buf[self.start..self.end];
        let kind = Kind::from_byte(h[0]).ok_or_else(|| bad("unknown frame kind"))?;
        let len = frame_len(h);
        if len > FRAME_MAX {
            return Err(bad("frame too large"));
        }
        Ok(Some((kind, len)))
    }

    /// Skips the header `peek_header` returned: its payload is read next.
    pub fn skip_header(&mut self) {
        debug_assert!(self.end - self.start >= HEADER);
        self.start += HEADER;
    }

    /// Reads payload bytes into `dest`, which must not reach past the
    /// current frame: what is buffered, else one recv straight into `dest`.
    /// When `dest` ends the frame, the same recv also takes the next
    /// frame's header (one system call per frame, not two). Returns how
    /// many bytes landed in `dest` (0: the stream ended). Without `wait`,
    /// nothing available is `WouldBlock`.
    pub fn read_payload(
        &mut self,
        dest: &mut [MaybeUninit<u8>],
        ends_frame: bool,
        wait: bool,
    ) -> io::Result<usize> {
        let buffered = self.end - self.start;
        if buffered > 0 {
            let n = buffered.min(dest.len());
            for (d, s) in dest.iter_mut().zip(&self.buf[self.start..self.start + n]) {
                d.write(*s);
            }
            self.start += n;
            return Ok(n);
        }
        self.start = 0;
        self.end = 0;
        let mut iov = [
            libc::iovec {
                iov_base: dest.as_mut_ptr().cast(),
                iov_len: dest.len(),
            },
            libc::iovec {
                iov_base: self.buf.as_mut_ptr().cast(),
                iov_len: HEADER,
            },
        ];
        let count = if ends_frame { 2 } else { 1 };
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        let n = self.recv(&mut iov[..count], flags)?;
        if n > dest.len() {
            self.end = n - dest.len();
        }
        Ok(n.min(dest.len()))
    }

    /// Moves the unread bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// A descriptor that came with the frames read so far.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    fn fill(&mut self) -> io::Result<usize> {
        let spare = &mut self.buf[self.end..];
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let n = self.recv(&mut [iov], 0)?;
        self.end += n;
        Ok(n)
    }

    /// One recvmsg into `iov`, keeping descriptors that come with it.
    fn recv(&mut self, iov: &mut [libc::iovec], flags: libc::c_int) -> io::Result<usize> {
        let mut control = [0u64; 8]; // room for a few descriptors, aligned
                                     // SAFETY: msghdr is plain data pointing at buffers that outlive the
                                     // call; descriptors received are taken over (OwnedFd) exactly once.
        unsafe {
            let mut m: libc::msghdr = std::mem::zeroed();
            m.msg_iov = iov.as_mut_ptr();
            m.msg_iovlen = iov.len() as _;
            m.msg_control = control.as_mut_ptr().cast();
            m.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = loop {
                let n = libc::recvmsg(self.fd, &mut m, libc::MSG_CMSG_CLOEXEC | flags);
                if n >= 0 {
                    break n as usize;
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            };
            let mut c = libc::CMSG_FIRSTHDR(&m);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c);
                    let bytes = (*c).cmsg_len as usize - (data as usize - c as usize);
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                        self.fds.push_back(OwnedFd::from_raw_fd(fd));
                    }
                }
                c = libc::CMSG_NXTHDR(&m, c);
            }
            Ok(n)
        }
    }
}

impl AsRawFd for FrameReader {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

fn frame_len(b: &[u8]) -> usize {
    u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::protocol::{header, write_all, write_frame, write_frame_with_fd, Kind};
    use std::os::unix::net::UnixStream;

    fn read_into(r: &mut FrameReader, n: usize, ends_frame: bool) -> Vec<u8> {
        let mut buf = vec![MaybeUninit::<u8>::uninit(); n];
        let got = r.read_payload(&mut buf, ends_frame, true).unwrap();
        // SAFETY: read_payload initialised the first `got` bytes.
        buf[..got]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect()
    }

    #[test]
    fn body_payloads_go_straight_to_their_destination() {
        let (a, b) = UnixStream::pair().unwrap();
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        write_frame(a.as_raw_fd(), Kind::Body, &[&body]).unwrap();
        write_frame(a.as_raw_fd(), Kind::BodyEnd, &[]).unwrap();
        let mut r = FrameReader::new(b.as_raw_fd());
        assert_eq!(r.peek_header(true).unwrap(), Some((Kind::Body, body.len())));
        r.skip_header();
        // Nothing of the payload was buffered by reading the header.
        assert_eq!(r.end - r.start, 0);
        let mut got = Vec::new();
        while got.len() < body.len() {
            let left = body.len() - got.len();
            let want = left.min(30_000);
            got.extend(read_into(&mut r, want, want == left));
        }
        assert_eq!(got, body);
        assert_eq!(r.peek_header(true).unwrap(), Some((Kind::BodyEnd, 0)));
        assert_eq!(r.next().unwrap(), Some((Kind::BodyEnd, &[][..])));
        drop(a);
        assert_eq!(r.peek_header(true).unwrap(), None);
    }

    #[test]
    fn without_waiting_an_empty_socket_would_block() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut r = FrameReader::new(b.as_raw_fd());
        let e = r.peek_header(false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // Half a header is kept, not lost.
        write_all(a.as_raw_fd(), &[&[b'B', 3]]).unwrap();
        assert_eq!(
            r.peek_header(false).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        write_all(a.as_raw_fd(), &[&[0, 0, 0], b"ab"]).unwrap();
        assert_eq!(r.peek_header(false).unwrap(), Some((Kind::Body, 3)));
        r.skip_header();
        assert_eq!(read_into(&mut r, 3, true), b"ab");
        let mut buf = [MaybeUninit::<u8>::uninit(); 1];
        let e = r.read_payload(&mut buf, true, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert_eq!(r.read_payload(&mut buf, true, true).unwrap(), 0);
    }

    #[test]
    fn frames_and_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        write_frame(a.as_raw_fd(), Kind::Data, &[b"hel", b"lo"]).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        write_frame_with_fd(a.as_raw_fd(), Kind::File, b"x", file.as_raw_fd()).unwrap();
        write_frame(a.as_raw_fd(), Kind::End, &[&[0]]).unwrap();
        let big = vec![7u8; 200_000];
        write_frame(a.as_raw_fd(), Kind::Data, &[&big]).unwrap();
        drop(a);
        let mut r = FrameReader::new(b.as_raw_fd());
        assert_eq!(r.next().unwrap(), Some((Kind::Data, &b"hello"[..])));
        assert_eq!(r.next().unwrap(), Some((Kind::File, &b"x"[..])));
        assert!(r.take_fd().is_some());
        assert_eq!(r.next().unwrap(), Some((Kind::End, &[0u8][..])));
        let (k, p) = r.next().unwrap().unwrap();
        assert_eq!((k, p.len()), (Kind::Data, 200_000));
        assert_eq!(r.next().unwrap(), None);
    }

    #[test]
    fn a_cut_frame_is_an_error_not_an_end() {
        let (a, b) = UnixStream::pair().unwrap();
        let h = header(Kind::Data, 10);
        write_all(a.as_raw_fd(), &[&h, b"abc"]).unwrap();
        drop(a);
        let mut r = FrameReader::new(b.as_raw_fd());
        assert_eq!(r.next().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
