//! The response side of one request, independent of the transport: the
//! start_response rules (PEP 3333), when the headers go out, and the cut at a
//! declared Content-Length (as mod_wsgi does, extra output is dropped).
use super::transport::{ClientGone, Ending, Level, ResponseHead, Transport};
use std::os::fd::OwnedFd;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// start_response() has not been called.
    NotStarted,
    /// The request is over; the Python objects outlived it.
    Finished,
    ClientGone,
    /// start_response() was given a header that fails only when output
    /// starts (mod_wsgi's Content-Length check); see `invalid_head`.
    InvalidHead,
}

impl From<ClientGone> for SendError {
    fn from(_: ClientGone) -> Self {
        SendError::ClientGone
    }
}

/// Why start_response() refused a call.
#[derive(Debug, PartialEq, Eq)]
pub enum StartError {
    /// A second call without exc_info: PEP 3333 calls this a fatal error.
    AlreadyStarted,
    /// exc_info was given after the headers went out: re-raise it.
    TooLate,
}

#[derive(Default)]
pub struct OutputState {
    script: String,
    head: Option<ResponseHead>,
    headers_sent: bool,
    /// Body bytes handed to the transport (after the Content-Length cut).
    sent: u64,
    /// Non-empty blocks handed to the transport (events' output_writes).
    writes: u64,
    ended: bool,
    /// The error the recorded headers give when output starts.
    invalid: Option<String>,
}

impl OutputState {
    pub fn new(script: &str) -> OutputState {
        OutputState {
            script: script.to_string(),
            ..Default::default()
        }
    }

    pub fn script(&self) -> &str {
        &self.script
    }

    pub fn headers_sent(&self) -> bool {
        self.headers_sent
    }

    /// Sets the error the recorded headers give when output starts.
    pub fn set_invalid(&mut self, invalid: Option<String>) {
        self.invalid = invalid;
    }

    /// The error the recorded headers give when output starts, if any.
    pub fn invalid_head(&self) -> Option<&str> {
        self.invalid.as_deref()
    }

    /// Whether the response has ended (the request is over).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The status code start_response() gave, if it was called.
    pub fn status_code(&self) -> Option<u16> {
        self.head.as_ref().map(|h| h.code)
    }

    /// Body bytes and non-empty blocks handed to the transport.
    pub fn output_counts(&self) -> (u64, u64) {
        (self.sent, self.writes)
    }

    /// Records what start_response() was called with.
    pub fn start(&mut self, head: ResponseHead, with_exc_info: bool) -> Result<(), StartError> {
        if self.headers_sent && with_exc_info {
            return Err(StartError::TooLate);
        }
        if self.head.is_some() && !with_exc_info {
            return Err(StartError::AlreadyStarted);
        }
        self.head = Some(head);
        Ok(())
    }

    /// Replaces what start_response() recorded, before the headers went
    /// out, with `head` (mod_wsgi's 504 for a RequestTimeout).
    pub fn replace_head(&mut self, head: ResponseHead) {
        if !self.headers_sent {
            self.head = Some(head);
            self.invalid = None;
        }
    }

    /// Body bytes a declared Content-Length still allows.
    fn remaining(&self) -> u64 {
        let cl = self.head.as_ref().and_then(|h| h.content_length);
        cl.map_or(u64::MAX, |cl| cl.saturating_sub(self.sent))
    }

    /// `chunks` cut to what the Content-Length still allows.
    fn cut<'a>(&self, chunks: &[&'a [u8]]) -> Vec<&'a [u8]> {
        let mut room = self.remaining();
        let mut out = Vec::with_capacity(chunks.len());
        for c in chunks {
            let n = room.min(c.len() as u64) as usize;
            if n > 0 {
                out.push(&c[..n]);
            }
            room -= n as u64;
        }
        out
    }

    fn check_writable(&self) -> Result<(), SendError> {
        if self.ended {
            return Err(SendError::Finished);
        }
        if self.head.is_none() {
            return Err(SendError::NotStarted);
        }
        if self.invalid.is_some() {
            return Err(SendError::InvalidHead);
        }
        Ok(())
    }

    fn send_headers(&mut self, t: &mut dyn Transport) {
        if !self.headers_sent {
            if let Some(head) = &self.head {
                t.start(head);
            }
            self.headers_sent = true;
        }
    }

    /// Body data. Nothing goes out for empty data: the headers leave with the
    /// first non-empty block, so an error before it can still become a 500.
    pub fn send(&mut self, t: &mut dyn Transport, chunks: &[&[u8]]) -> Result<(), SendError> {
        self.check_writable()?;
        let cut = self.cut(chunks);
        if cut.is_empty() {
            return Ok(());
        }
        self.send_headers(t);
        self.sent += cut.iter().map(|c| c.len() as u64).sum::<u64>();
        self.writes += 1;
        t.send(&cut)?;
        Ok(())
    }

    /// Accounts for blocks that go out through the writer's queue: the
    /// headers go out now; returns the blocks cut to the Content-Length.
    pub fn queued<'a>(
        &mut self,
        t: &mut dyn Transport,
        chunks: &[&'a [u8]],
    ) -> Result<Vec<&'a [u8]>, SendError> {
        self.check_writable()?;
        let cut = self.cut(chunks);
        if !cut.is_empty() {
            self.send_headers(t);
            self.sent += cut.iter().map(|c| c.len() as u64).sum::<u64>();
            self.writes += 1;
        }
        Ok(cut)
    }

    /// The last chunks and the end of the response.
    pub fn end(
        &mut self,
        t: &mut dyn Transport,
        chunks: &[&[u8]],
        how: Ending,
    ) -> Result<(), SendError> {
        self.check_writable()?;
        let cut = self.cut(chunks);
        self.send_headers(t);
        self.sent += cut.iter().map(|c| c.len() as u64).sum::<u64>();
        self.writes += u64::from(!cut.is_empty());
        let res = t.end(&cut, how);
        self.finish(t);
        Ok(res?)
    }

    /// A file range, then the end of the response.
    pub fn send_file(
        &mut self,
        t: &mut dyn Transport,
        file: OwnedFd,
        offset: u64,
        len: u64,
    ) -> Result<(), SendError> {
        self.check_writable()?;
        let len = len.min(self.remaining());
        self.send_headers(t);
        self.sent += len;
        self.writes += 1;
        let res = t.send_file(file, offset, len);
        self.finish(t);
        Ok(res?)
    }

    /// A response shorter than its Content-Length is logged, and the
    /// connection is closed so the client does not wait for missing bytes.
    fn finish(&mut self, t: &mut dyn Transport) {
        self.ended = true;
        let cl = self.head.as_ref().and_then(|h| h.content_length);
        if let Some(cl) = cl {
            if self.sent < cl && !t.head_only() {
                t.log(
                    Level::Error,
                    &format!(
                        "Response for WSGI script '{}' is shorter than its Content-Length: {} of {cl} bytes sent; closing the connection.",
                        self.script, self.sent
                    ),
                );
                t.close_connection();
            }
        }
    }

    /// Ends a response broken by an error after its headers went out.
    pub fn abort(&mut self, t: &mut dyn Transport) {
        self.ended = true;
        t.abort();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::mem::MaybeUninit;

    /// An in-memory transport that records what the core did with it.
    #[derive(Default)]
    pub struct FakeTransport {
        pub body_in: Vec<Vec<u8>>,
        pub started: Vec<ResponseHead>,
        pub out: Vec<u8>,
        pub ended: bool,
        pub closed: bool,
        pub aborted: bool,
        pub head_only: bool,
        pub gone: bool,
        pub logs: Vec<String>,
        pub read_error: Option<String>,
    }

    impl Transport for FakeTransport {
        fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
            if self.body_in.is_empty() {
                return match self.read_error.take() {
                    Some(e) => Err(e),
                    None => Ok(0),
                };
            }
            let chunk = &mut self.body_in[0];
            let n = chunk.len().min(buf.len());
            for (d, s) in buf.iter_mut().zip(chunk.drain(..n)) {
                d.write(s);
            }
            if chunk.is_empty() {
                self.body_in.remove(0);
            }
            Ok(n)
        }
        fn head_only(&self) -> bool {
            self.head_only
        }
        fn start(&mut self, head: &ResponseHead) {
            self.started.push(head.clone());
        }
        fn send(&mut self, chunks: &[&[u8]]) -> Result<(), ClientGone> {
            if self.gone {
                return Err(ClientGone);
            }
            chunks.iter().for_each(|c| self.out.extend_from_slice(c));
            Ok(())
        }
        fn send_file(&mut self, _f: OwnedFd, _o: u64, len: u64) -> Result<(), ClientGone> {
            self.out.extend(std::iter::repeat_n(b'F', len as usize));
            self.ended = true;
            Ok(())
        }
        fn end(&mut self, chunks: &[&[u8]], _how: Ending) -> Result<(), ClientGone> {
            chunks.iter().for_each(|c| self.out.extend_from_slice(c));
            self.ended = true;
            Ok(())
        }
        fn close_connection(&mut self) {
            self.closed = true;
        }
        fn abort(&mut self) {
            self.aborted = true;
        }
        fn log(&mut self, _level: Level, msg: &str) {
            self.logs.push(msg.to_string());
        }
    }

    fn head(cl: Option<u64>) -> ResponseHead {
        ResponseHead {
            code: 200,
            status: b"200 OK".to_vec(),
            headers: vec![],
            content_length: cl,
        }
    }

    #[test]
    fn nothing_goes_out_before_start_response() {
        let (mut o, mut t) = (OutputState::new("s"), FakeTransport::default());
        assert_eq!(o.send(&mut t, &[b"x"]), Err(SendError::NotStarted));
        assert_eq!(
            o.end(&mut t, &[], Ending::Staged),
            Err(SendError::NotStarted)
        );
        assert!(t.started.is_empty() && t.out.is_empty());
    }

    #[test]
    fn headers_leave_with_the_first_non_empty_block() {
        let (mut o, mut t) = (OutputState::new("s"), FakeTransport::default());
        o.start(head(None), false).unwrap();
        o.send(&mut t, &[b"", b""]).unwrap();
        assert!(t.started.is_empty() && !o.headers_sent());
        o.send(&mut t, &[b"ab"]).unwrap();
        o.send(&mut t, &[b"c"]).unwrap();
        o.end(&mut t, &[b"d"], Ending::Staged).unwrap();
        assert_eq!(t.started.len(), 1);
        assert_eq!(t.out, b"abcd");
        assert_eq!(o.send(&mut t, &[b"e"]), Err(SendError::Finished));
    }

    #[test]
    fn start_response_rules() {
        let (mut o, mut t) = (OutputState::new("s"), FakeTransport::default());
        o.start(head(None), false).unwrap();
        assert_eq!(o.start(head(None), false), Err(StartError::AlreadyStarted));
        // exc_info before the headers went out replaces them.
        o.start(head(Some(1)), true).unwrap();
        o.send(&mut t, &[b"x"]).unwrap();
        assert_eq!(o.start(head(None), true), Err(StartError::TooLate));
        assert_eq!(o.start(head(None), false), Err(StartError::AlreadyStarted));
        assert_eq!(t.started[0].content_length, Some(1));
    }

    #[test]
    fn output_is_cut_at_the_content_length() {
        let (mut o, mut t) = (OutputState::new("s"), FakeTransport::default());
        o.start(head(Some(5)), false).unwrap();
        o.send(&mut t, &[b"abc", b"def"]).unwrap();
        o.send(&mut t, &[b"ghi"]).unwrap();
        o.end(&mut t, &[b"jkl"], Ending::Staged).unwrap();
        assert_eq!(t.out, b"abcde");
        assert!(!t.closed && t.logs.is_empty());
    }

    #[test]
    fn a_short_response_is_logged_and_closes_the_connection() {
        let (mut o, mut t) = (OutputState::new("app.wsgi"), FakeTransport::default());
        o.start(head(Some(10)), false).unwrap();
        o.end(&mut t, &[b"abc"], Ending::Staged).unwrap();
        assert!(t.closed);
        assert!(t.logs[0].contains("'app.wsgi' is shorter than its Content-Length: 3 of 10"));

        let (mut o, mut t) = (OutputState::new("s"), FakeTransport::default());
        t.head_only = true;
        o.start(head(Some(10)), false).unwrap();
        o.end(&mut t, &[], Ending::Staged).unwrap();
        assert!(!t.closed && t.logs.is_empty());
    }

    #[test]
    fn a_gone_client_is_reported() {
        let (mut o, mut t) = (OutputState::new("s"), FakeTransport::default());
        t.gone = true;
        o.start(head(None), false).unwrap();
        assert_eq!(o.send(&mut t, &[b"x"]), Err(SendError::ClientGone));
    }
}
