//! The daemon side of a request: the WSGI core's transport over the
//! connection from an Apache child (see `protocol`). Once the application
//! reads, the body flows on credit and is read straight into its buffers;
//! the response goes out as frames the child turns into brigades, so
//! Apache's output filters still apply.
use super::protocol::{self, FrameReader, Kind, Refusal, DATA_MAX, END_CLOSE};
use crate::apache::log;
use crate::wsgi::transport::{ClientGone, Ending, Level, ResponseHead, Site, Transport};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub struct DaemonTransport {
    reader: FrameReader,
    fd: RawFd,
    head_only: bool,
    /// Frames not written yet: the start line waits for the first body
    /// bytes, and a staged end for `complete`.
    out: Vec<u8>,
    body_ended: bool,
    /// The response ended (End is written by `complete`).
    ended: bool,
    end_flags: u8,
    /// The connection broke: nothing more is written.
    broken: bool,
    /// The application gave a Content-Length.
    has_length: bool,
    /// Body data went out before the end.
    data_sent: bool,
    /// How many body bytes the child may have in flight: what its socket
    /// buffer holds, so that it never blocks writing body the application
    /// does not read (while this side writes a large response).
    window: usize,
    /// Body bytes granted (`Read`) and not yet read by the application.
    outstanding: usize,
    /// Payload bytes of the current body frame not yet read.
    frame_left: usize,
}

impl DaemonTransport {
    pub fn new(reader: FrameReader, head_only: bool, window: usize) -> DaemonTransport {
        let fd = reader.as_raw_fd();
        DaemonTransport {
            reader,
            fd,
            head_only,
            out: Vec::with_capacity(4096),
            body_ended: false,
            ended: false,
            end_flags: 0,
            broken: false,
            has_length: false,
            data_sent: false,
            window: window.clamp(1, protocol::WINDOW_MAX),
            outstanding: 0,
            frame_left: 0,
        }
    }

    fn frame(&mut self, kind: Kind, payload: &[&[u8]]) {
        let len: usize = payload.iter().map(|p| p.len()).sum();
        self.out.extend_from_slice(&protocol::header(kind, len));
        payload.iter().for_each(|p| self.out.extend_from_slice(p));
    }

    /// Writes what is pending, then `data` as Data frames, in one go.
    fn flush_with(&mut self, data: &[&[u8]]) -> Result<(), ClientGone> {
        if self.broken {
            return Err(ClientGone);
        }
        let pieces: Vec<&[u8]> = data.iter().flat_map(|c| c.chunks(DATA_MAX)).collect();
        let headers: Vec<_> = pieces
            .iter()
            .map(|c| protocol::header(Kind::Data, c.len()))
            .collect();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + pieces.len() * 2);
        parts.push(&self.out);
        for (h, c) in headers.iter().zip(&pieces) {
            parts.push(h);
            parts.push(c);
        }
        let res = protocol::write_all(self.fd, &parts);
        self.out.clear();
        res.map_err(|_| {
            self.broken = true;
            ClientGone
        })
    }

    /// After the application is done (the GIL released): writes what was
    /// staged and the End frame. False if the Apache child went away.
    pub fn complete(&mut self) -> bool {
        if self.ended && !self.broken {
            let flags = [self.end_flags];
            self.frame(Kind::End, &[&flags]);
        }
        if !self.out.is_empty() {
            let _ = self.flush_with(&[]);
        }
        !self.broken
    }

    /// Tells the child there is no response (it answers with the status
    /// for `why` itself, so Apache's ErrorDocuments apply).
    pub fn no_response(&mut self, why: Refusal) {
        self.out.clear();
        self.frame(Kind::NoResponse, &[&[why as u8]]);
        let _ = self.flush_with(&[]);
    }

    /// Keeps the child's credit topped up while the body lasts: a grant
    /// when half the window has been read, so that the child sends several
    /// frames per wake-up and the application rarely waits for a round trip.
    /// The first grant waits for the application's first read: a body it
    /// never reads does not cross the socket.
    fn grant(&mut self) -> Result<(), String> {
        if self.body_ended || self.outstanding > self.window / 2 {
            return Ok(());
        }
        let more = self.window - self.outstanding;
        let h = protocol::header(Kind::Read, 4);
        let res = protocol::write_all(self.fd, &[&h, &(more as u32).to_le_bytes()]);
        self.outstanding = self.window;
        res.map_err(|_| {
            self.broken = true;
            gone()
        })
    }

    /// Body bytes into `buf`: None (without `wait`) when none have arrived.
    fn body(&mut self, buf: &mut [MaybeUninit<u8>], wait: bool) -> Result<Option<usize>, String> {
        let would_block = |e: &io::Error| e.kind() == io::ErrorKind::WouldBlock;
        loop {
            if self.body_ended || buf.is_empty() {
                return Ok(Some(0));
            }
            if self.frame_left > 0 {
                let n = buf.len().min(self.frame_left);
                let ends_frame = n == self.frame_left;
                return match self.reader.read_payload(&mut buf[..n], ends_frame, wait) {
                    Ok(0) => Err(gone()),
                    Ok(got) => {
                        self.frame_left -= got;
                        self.outstanding = self.outstanding.saturating_sub(got);
                        self.grant()?;
                        Ok(Some(got))
                    }
                    Err(e) if would_block(&e) => Ok(None),
                    Err(_) => Err(gone()),
                };
            }
            self.grant()?;
            match self.reader.peek_header(wait) {
                Ok(Some((Kind::Body, len))) => {
                    self.reader.skip_header();
                    self.frame_left = len;
                }
                Ok(Some(_)) => match self.reader.next() {
                    Ok(Some((Kind::BodyEnd, _))) => self.body_ended = true,
                    Ok(Some((Kind::BodyError, why))) => {
                        self.body_ended = true;
                        return Err(String::from_utf8_lossy(why).into_owned());
                    }
                    Ok(Some(_)) => return Err("protocol error from the Apache child".into()),
                    Ok(None) | Err(_) => return Err(gone()),
                },
                Err(e) if would_block(&e) => return Ok(None),
                Ok(None) | Err(_) => return Err(gone()),
            }
        }
    }
}

fn gone() -> String {
    "the Apache child closed the connection".to_string()
}

impl Transport for DaemonTransport {
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
        self.body(buf, true).map(Option::unwrap_or_default)
    }

    /// What has arrived already, read with the GIL held: no hand-off to
    /// another thread and back when the data is there.
    fn read_ready(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<Option<usize>, String> {
        self.body(buf, false)
    }

    fn head_only(&self) -> bool {
        self.head_only
    }

    fn start(&mut self, head: &ResponseHead) {
        self.has_length = head.content_length.is_some();
        let mut payload = Vec::with_capacity(256);
        protocol::encode_response(head, &mut payload);
        self.frame(Kind::Start, &[&payload]);
    }

    fn send(&mut self, chunks: &[&[u8]]) -> Result<(), ClientGone> {
        self.data_sent = true;
        // HEAD: Apache would drop the body; it need not cross the socket.
        let chunks = if self.head_only { &[][..] } else { chunks };
        self.flush_with(chunks)
    }

    fn send_file(&mut self, file: OwnedFd, offset: u64, len: u64) -> Result<(), ClientGone> {
        self.flush_with(&[])?;
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&offset.to_le_bytes());
        p[8..].copy_from_slice(&len.to_le_bytes());
        let res = protocol::write_frame_with_fd(self.fd, Kind::File, &p, file.as_raw_fd());
        self.ended = true;
        res.map_err(|_| {
            self.broken = true;
            ClientGone
        })
    }

    fn end(&mut self, chunks: &[&[u8]], how: Ending) -> Result<(), ClientGone> {
        self.ended = true;
        if !self.data_sent && !self.has_length {
            // All of the body at once: its length, as Apache's
            // content_length filter finds it for embedded mode.
            let n: u64 = chunks.iter().map(|c| c.len() as u64).sum();
            self.frame(Kind::Length, &[&n.to_le_bytes()]);
        }
        let chunks = if self.head_only { &[][..] } else { chunks };
        match how {
            Ending::Now => self.flush_with(chunks),
            Ending::Staged => {
                for c in chunks.iter().flat_map(|c| c.chunks(DATA_MAX)) {
                    self.frame(Kind::Data, &[c]);
                }
                Ok(())
            }
        }
    }

    fn close_connection(&mut self) {
        self.end_flags |= END_CLOSE;
    }

    fn abort(&mut self) {
        self.out.clear();
        self.ended = false;
        if !self.broken {
            let _ = protocol::write_frame(self.fd, Kind::Abort, &[]);
            self.broken = true;
        }
    }

    fn log(&mut self, level: Level, msg: &str) {
        self.log_at(level, msg, None)
    }

    fn log_at(&mut self, level: Level, msg: &str, site: Site<'_>) {
        let mut frame = Vec::new();
        protocol::encode_log(level, msg, site, &mut frame);
        if self.broken || protocol::write_frame(self.fd, Kind::Log, &[&frame]).is_err() {
            log::server_at(level, msg, site);
        }
    }
}
