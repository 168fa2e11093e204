//! `os._exit(n)` in a daemon process records n as the process's last words
//! (see `shared`), so the requests it was serving are logged with the cause.
//! Only the daemon process itself records: a process it forks (e.g. with
//! multiprocessing) that calls os._exit does not speak for it.
use super::shared::Cause;
use super::supervisor::Daemons;
use pyo3::prelude::*;
use std::sync::{Arc, OnceLock};

static SLOT: OnceLock<(Arc<Daemons>, usize, u32)> = OnceLock::new();

#[pyfunction]
fn _rs_last_words(status: i64) -> PyResult<()> {
    crate::python::guard::catch(|| {
        if let Some((daemons, id, pid)) = SLOT.get() {
            if std::process::id() == *pid {
                daemons
                    .table
                    .last_words(*id, Cause::Exited((status & 0xff) as i32));
            }
        }
        Ok(())
    })
}

/// Wraps this interpreter's os._exit.
pub fn install(module: &Bound<'_, PyModule>, daemons: Arc<Daemons>, id: usize) -> PyResult<()> {
    let _ = SLOT.set((daemons, id, std::process::id()));
    let record = wrap_pyfunction!(_rs_last_words, module)?;
    module.getattr("_install_exit_hook")?.call1((record,))?;
    Ok(())
}
