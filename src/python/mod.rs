//! CPython embedding: process-wide start-up (runtime), interpreters and their
//! per-thread states (interp), and the objects each interpreter keeps (objects).

pub(crate) mod configure;
pub(crate) mod context;
pub(crate) mod guard;
pub(crate) mod interp;
pub(crate) mod logging;
pub(crate) mod objects;
pub(crate) mod runtime;
pub(crate) mod text;
