//! The daemon side of a request: the WSGI core's transport over the
//! connection from an Apache child (see `protocol`). The body is asked for
//! as the application reads it; the response goes out as frames the child
//! turns into brigades, so Apache's output filters still apply.
use super::protocol::{self, FrameReader, Kind, Refusal, DATA_MAX, END_CLOSE};
use crate::apache::log;
use crate::wsgi::transport::{ClientGone, Ending, Level, ResponseHead, Transport};
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
    /// A request for body bytes is outstanding.
    asked: bool,
    /// Body bytes received beyond what the application asked for.
    surplus: Vec<u8>,
    surplus_pos: usize,
}

/// How many body bytes one request asks the child for.
const READ_AHEAD: usize = 64 * 1024;

impl DaemonTransport {
    pub fn new(reader: FrameReader, head_only: bool) -> DaemonTransport {
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
            asked: false,
            surplus: Vec::new(),
            surplus_pos: 0,
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

    /// Copies buffered body bytes into `buf`.
    fn take_surplus(&mut self, buf: &mut [MaybeUninit<u8>]) -> usize {
        let rest = &self.surplus[self.surplus_pos..];
        let n = rest.len().min(buf.len());
        for (d, s) in buf.iter_mut().zip(&rest[..n]) {
            d.write(*s);
        }
        self.surplus_pos += n;
        n
    }

    /// Keeps one request for body bytes outstanding while the body lasts.
    fn prefetch(&mut self) -> Result<(), String> {
        if self.asked || self.body_ended {
            return Ok(());
        }
        self.ask_body()
    }

    /// Asks the child for up to READ_AHEAD body bytes. At most one request
    /// is outstanding, and its answer fits in the socket's buffer, so the
    /// child never blocks writing a block the application does not read.
    fn ask_body(&mut self) -> Result<(), String> {
        self.asked = true;
        let max = (READ_AHEAD as u32).to_le_bytes();
        let h = protocol::header(Kind::Read, 4);
        let res = protocol::write_all(self.fd, &[&h, &max]);
        res.map_err(|_| {
            self.broken = true;
            "the Apache child closed the connection".to_string()
        })
    }
}

impl Transport for DaemonTransport {
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.surplus_pos < self.surplus.len() {
            let n = self.take_surplus(buf);
            self.prefetch()?;
            return Ok(n);
        }
        if self.body_ended {
            return Ok(0);
        }
        if !self.asked {
            self.ask_body()?;
        }
        self.asked = false;
        let gone = || "the Apache child closed the connection".to_string();
        let got = match self.reader.next() {
            Ok(Some((Kind::Body, data))) => {
                let n = data.len().min(buf.len());
                for (d, s) in buf.iter_mut().zip(&data[..n]) {
                    d.write(*s);
                }
                self.surplus.clear();
                self.surplus.extend_from_slice(&data[n..]);
                self.surplus_pos = 0;
                Ok(n)
            }
            Ok(Some((Kind::BodyEnd, _))) => {
                self.body_ended = true;
                return Ok(0);
            }
            Ok(Some((Kind::BodyError, why))) => {
                self.body_ended = true;
                return Err(String::from_utf8_lossy(why).into_owned());
            }
            Ok(Some(_)) => return Err("protocol error from the Apache child".into()),
            Ok(None) | Err(_) => return Err(gone()),
        };
        // The next block is read by the child while the application works
        // on this one.
        self.prefetch()?;
        got
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
        let lvl = [matches!(level, Level::Info) as u8];
        if self.broken
            || protocol::write_frame(self.fd, Kind::Log, &[&lvl, msg.as_bytes()]).is_err()
        {
            log::server(level, msg);
        }
    }
}
