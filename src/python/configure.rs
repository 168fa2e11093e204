//! Applies an interpreter's `InterpOptions` (after `<WSGIInterpreterOptions>`
//! scoping) in the current interpreter: WSGIPythonPath layers, the switch
//! interval and the stdin/stdout/signal restrictions.
use super::objects::InterpObjects;
use crate::apache::log;
use crate::config::InterpOptions;
use crate::wsgi::transport::Level;
use pyo3::prelude::*;

/// Sets up the interpreter whose GIL this thread holds. Call it once per
/// interpreter, after its sys.stdout/sys.stderr are the error log's and
/// after the global WSGIPythonPath (or python-path=) went in, before any
/// application code runs.
pub fn configure_interpreter(
    py: Python<'_>,
    objects: &InterpObjects,
    opts: &InterpOptions,
) -> PyResult<()> {
    let helpers = objects.module.bind(py);
    if !opts.python_path.is_empty() {
        helpers
            .getattr("add_python_path")?
            .call1((opts.python_path.clone(),))?;
    }
    if let Some(seconds) = opts.switch_interval {
        py.import("sys")?
            .call_method1("setswitchinterval", (seconds,))?;
        let group: String = helpers.getattr("application_group")?.extract()?;
        let process: String = helpers.getattr("process_group")?.extract()?;
        let msg = format!(
            "mod_wsgi_rs (pid={}): Python GIL switch interval set to {seconds:.6}s in {}.",
            std::process::id(),
            super::context::interp_of(&process, &group)
        );
        py.detach(|| log::server(Level::Info, &msg));
    }
    if opts.restrict_stdin || opts.restrict_stdout {
        helpers
            .getattr("restrict_streams")?
            .call1((opts.restrict_stdin, opts.restrict_stdout))?;
    }
    if opts.restrict_signal {
        helpers.getattr("restrict_signal")?.call0()?;
    }
    Ok(())
}
