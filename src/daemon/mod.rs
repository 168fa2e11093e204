//! Daemon mode: applications run in separate processes, forked and
//! supervised by the Apache parent (`supervisor`), serving requests that
//! Apache's children hand over a UNIX socket (`proxy`) in frames
//! (`protocol`). A daemon process (`process`) runs the same WSGI core as
//! embedded mode, over its side of the connection (`transport`).
pub(crate) mod identity;
pub(crate) mod last_words;
pub(crate) mod policy;
pub(crate) mod process;
pub(crate) mod protocol;
pub(crate) mod proxy;
pub(crate) mod reader;
pub(crate) mod shared;
pub(crate) mod signals;
pub(crate) mod supervisor;
pub(crate) mod transport;
