//! Starting CPython in an Apache child.
//!
//! Python is initialised in `child_init`, never in the Apache parent:
//! - fork safety: under prefork the parent forks children at any time; a
//!   forked copy of a running interpreter inherits locks held by threads
//!   that do not exist in the child, and Python's own state is not fork-safe;
//! - graceful restarts re-read the configuration and unload/reload modules in
//!   the parent; an interpreter there could neither follow the new settings
//!   nor be finalised and re-initialised safely (extension modules leak/break);
//! - Apache parses its configuration twice at start-up and post_config runs
//!   twice, so parent-side initialisation would happen twice.
//!
//! Children never call `Py_Finalize`: it waits for non-daemon threads and is
//! what makes mod_wsgi children linger at stop. They run `atexit` callbacks
//! and flush output instead (see `shutdown`).
use super::interp::Interp;
use super::objects::{InterpObjects, ProcessInfo};
use crate::config::python::HashSeed;
use crate::config::PythonSettings;
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::CString;
use std::path::Path;
use std::sync::OnceLock;

/// Why Python could not be started in this process, if it could not.
static INIT_ERROR: OnceLock<String> = OnceLock::new();

/// The error that made initialisation fail (requests then get 500).
pub fn init_error() -> Option<&'static str> {
    INIT_ERROR.get().map(String::as_str)
}

unsafe fn set_config_string(
    cfg: *mut ffi::PyConfig,
    field: *mut *mut libc::wchar_t,
    value: &str,
) -> Result<(), String> {
    let c = CString::new(value).map_err(|_| format!("NUL byte in '{value}'"))?;
    // SAFETY: cfg is an initialised PyConfig and field one of its wchar_t* members.
    let st = unsafe { ffi::PyConfig_SetBytesString(cfg, field, c.as_ptr()) };
    // SAFETY: st was just returned by the C API.
    if unsafe { ffi::PyStatus_Exception(st) } != 0 {
        return Err(format!("cannot set Python configuration value '{value}'"));
    }
    Ok(())
}

/// Appends `value` to a PyConfig string list (wchar_t is UTF-32 here).
unsafe fn append_config_string(
    list: *mut ffi::PyWideStringList,
    value: &str,
) -> Result<(), String> {
    let wide: Vec<libc::wchar_t> = value
        .chars()
        .map(|c| c as libc::wchar_t)
        .chain(std::iter::once(0))
        .collect();
    // SAFETY: list is a member of an initialised PyConfig (caller's
    // contract); the C API copies the NUL-terminated string.
    let st = unsafe { ffi::PyWideStringList_Append(list, wide.as_ptr()) };
    // SAFETY: st was just returned by the C API.
    if unsafe { ffi::PyStatus_Exception(st) } != 0 {
        return Err(format!("cannot set Python configuration value '{value}'"));
    }
    Ok(())
}

/// Initialises CPython for this process and sets up the main interpreter.
pub fn initialize(settings: &PythonSettings, info: ProcessInfo) -> Result<&'static Interp, String> {
    let result = start(settings, info);
    if let Err(e) = &result {
        let _ = INIT_ERROR.set(e.clone());
    }
    result
}

fn start(settings: &PythonSettings, info: ProcessInfo) -> Result<&'static Interp, String> {
    // SAFETY: called once per process, before any other Python API use; the
    // PyConfig is initialised by PyConfig_InitPythonConfig and cleared after use.
    unsafe {
        let mut cfg: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut cfg);
        cfg.install_signal_handlers = 0; // Apache owns the signals
        cfg.parse_argv = 0;
        cfg.user_site_directory = 0; // www-data's ~/.local must not leak into apps
        cfg.optimization_level = settings.optimize as i32;
        match settings.hash_seed {
            Some(HashSeed::Fixed(seed)) => {
                cfg.use_hash_seed = 1;
                cfg.hash_seed = seed.into();
            }
            // Random even if PYTHONHASHSEED is set in Apache's environment.
            Some(HashSeed::Random) => cfg.use_hash_seed = 0,
            None => {}
        }
        if settings.dont_write_bytecode {
            cfg.write_bytecode = 0;
        }
        for w in &settings.warnings {
            if let Err(e) = append_config_string(&mut cfg.warnoptions, w) {
                ffi::PyConfig_Clear(&mut cfg);
                return Err(e);
            }
        }
        // A free-threaded build runs with the GIL unless WSGIFreeThreading
        // is On for this process (as mod_wsgi 6: predictable, whatever the
        // extension modules declare). 1 enables the GIL, 0 disables it.
        #[cfg(Py_GIL_DISABLED)]
        {
            cfg.enable_gil = if settings.free_threading(&info.process_group) {
                0
            } else {
                1
            };
        }
        crate::wsgi::script::set_case_sensitive(settings.case_sensitive());
        let program = match &settings.home {
            // A venv has no stdlib: point the interpreter at its python binary and
            // let getpath find pyvenv.cfg (setting `home` to a venv fails).
            Some(home) if Path::new(home).join("pyvenv.cfg").exists() => {
                format!("{home}/bin/python")
            }
            Some(home) => {
                let r = set_config_string(&mut cfg, &mut cfg.home, home);
                if let Err(e) = r {
                    ffi::PyConfig_Clear(&mut cfg);
                    return Err(e);
                }
                format!("{home}/bin/python3")
            }
            None => env!("WSGI_RS_PY_EXECUTABLE").to_string(),
        };
        if let Err(e) = set_config_string(&mut cfg, &mut cfg.program_name, &program) {
            ffi::PyConfig_Clear(&mut cfg);
            return Err(e);
        }
        let st = ffi::Py_InitializeFromConfig(&cfg);
        ffi::PyConfig_Clear(&mut cfg);
        if ffi::PyStatus_Exception(st) != 0 {
            let msg = if st.err_msg.is_null() {
                "unknown error".to_string()
            } else {
                std::ffi::CStr::from_ptr(st.err_msg)
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(format!("Python could not be initialised: {msg}"));
        }
        // The GIL is held by this thread now.
        let path = settings.path.clone();
        let eggs = settings.eggs.clone();
        let options = settings.interpreter_options(&info.process_group, "");
        Interp::register_main(move |py| {
            let objects = InterpObjects::new(py, "", &info)?;
            install_streams(py, &objects)?;
            if let Some(dir) = eggs {
                // In os.environ (and so the process's), as mod_wsgi does.
                py.import("os")?
                    .getattr("environ")?
                    .set_item("PYTHON_EGG_CACHE", dir)?;
            }
            if !path.is_empty() {
                objects
                    .module
                    .bind(py)
                    .getattr("add_python_path")?
                    .call1((path,))?;
            }
            super::configure::configure_interpreter(py, &objects, &options)?;
            Ok(objects)
        })
    }
}

/// sys.stdout and sys.stderr write to the error log.
fn install_streams(py: Python<'_>, objects: &InterpObjects) -> PyResult<()> {
    let sys = py.import("sys")?;
    let log = objects.module.bind(py).getattr("Log")?;
    sys.setattr("stdout", log.call1((py.None(), 0u8, "<stdout>"))?)?;
    sys.setattr("stderr", log.call1((py.None(), 1u8, "<stderr>"))?)?;
    Ok(())
}

/// Child exit: run the applications' atexit callbacks and flush their output,
/// without Py_Finalize (which would wait for every non-daemon thread).
pub fn shutdown() {
    if let Some(interp) = Interp::main() {
        interp.run(|py| {
            if let Err(e) = py
                .import("atexit")
                .and_then(|m| m.call_method0("_run_exitfuncs"))
            {
                e.print(py);
            }
            for name in ["stdout", "stderr"] {
                if let Ok(stream) = py.import("sys").and_then(|s| s.getattr(name)) {
                    let _ = stream.call_method0("flush");
                }
            }
        });
    }
}
