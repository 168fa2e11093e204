//! The seam between the WSGI core and whatever carries the request: the
//! Apache request in embedded mode, a socket to an Apache child in daemon
//! mode. The core never sees more of the transport than this trait.
//!
//! Every call is made with the exchange's mutex held and the GIL released
//! (see `exchange`), so an implementation is never entered concurrently and
//! may block.
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

/// Error-log severity, mapped by each transport to its own levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Crit,
    Error,
    Warning,
    Info,
    Debug,
}

/// Where a Python logging call was made (file, line): Apache's %F.
pub type Site<'a> = Option<(&'a str, i32)>;

/// The client went away (or the transport broke) while sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientGone;

/// How the end of a response leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Copied and put aside without blocking (so the GIL may be held); the
    /// transport finishes sending once the GIL is released for good, so a
    /// small response costs one GIL acquisition.
    Staged,
    /// Sent now, borrowed for the call only (blocking: without the GIL).
    Now,
}

/// The status line and headers, as validated by `start_response`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    pub code: u16,
    /// The whole status line as given, e.g. `200 OK`.
    pub status: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The value of a Content-Length header, if there is one.
    pub content_length: Option<u64>,
}

pub trait Transport: Send {
    /// Reads request body bytes into `buf`; `Ok(0)` at the end of the body.
    /// `Err` carries the reason the body could not be read.
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, String>;

    /// Like `read`, but never blocks: `Ok(None)` when no byte is available
    /// now. The core calls it with the GIL held, to spare a GIL hand-off
    /// when the body has already arrived.
    fn read_ready(&mut self, _buf: &mut [MaybeUninit<u8>]) -> Result<Option<usize>, String> {
        Ok(None)
    }

    /// True for a HEAD request: no body goes out, whatever is sent.
    fn head_only(&self) -> bool;

    /// Status and headers, exactly once, before any body byte.
    fn start(&mut self, head: &ResponseHead);

    /// Body data, transmitted now: the application may take its time over the
    /// next block (PEP 3333 forbids holding this one back meanwhile). The
    /// transport may not keep the borrowed chunks past the call.
    fn send(&mut self, chunks: &[&[u8]]) -> Result<(), ClientGone>;

    /// Whether blocks may be queued for the process's writer thread (see
    /// `writer`): the transport can say how much it takes without blocking
    /// (`room`), and nothing between it and the client holds data back.
    fn can_queue(&mut self) -> bool {
        false
    }

    /// How many bytes `send` takes now without blocking (0: none).
    fn room(&mut self) -> usize {
        0
    }

    /// A descriptor that polls writable when `room` may have grown.
    fn poll_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// `len` bytes of `file` from `offset`, then the end of the response.
    fn send_file(&mut self, file: OwnedFd, offset: u64, len: u64) -> Result<(), ClientGone>;

    /// The last chunks and the end of the response.
    fn end(&mut self, chunks: &[&[u8]], how: Ending) -> Result<(), ClientGone>;

    /// Ends the response that was sent short of its Content-Length: the
    /// connection must not be reused.
    fn close_connection(&mut self);

    /// Cuts the connection: the client must not mistake a response broken
    /// by an error for a complete one.
    fn abort(&mut self);

    /// A line for the error log, in the request's context.
    fn log(&mut self, level: Level, msg: &str);

    /// A line with the Python caller's file and line, where the transport
    /// can pass them on to Apache.
    fn log_at(&mut self, level: Level, msg: &str, _site: Site<'_>) {
        self.log(level, msg)
    }
}
