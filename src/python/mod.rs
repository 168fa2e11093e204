//! CPython embedding: process-wide start-up (runtime), interpreters and their
//! per-thread states (interp), and the objects each interpreter keeps (objects).

pub mod embedded;
pub mod interp;
pub mod logging;
pub mod objects;
pub mod runtime;
