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
use std::time::Instant;

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

/// Set-up a daemon process adds to each of its interpreters.
pub type ExtraSetup = Box<dyn Fn(Python<'_>, &InterpObjects) -> PyResult<()> + Send + Sync>;

/// How every interpreter of this process is set up.
struct Setup {
    settings: PythonSettings,
    info: ProcessInfo,
    extra: Option<ExtraSetup>,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

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
pub fn initialize(
    settings: &PythonSettings,
    info: ProcessInfo,
    extra: Option<ExtraSetup>,
) -> Result<&'static Interp, String> {
    let setup = Setup {
        settings: settings.clone(),
        info,
        extra,
    };
    let result = match SETUP.set(setup) {
        Ok(()) => start(SETUP.get().expect("just set")),
        Err(_) => Err("Python was already initialised in this process".into()),
    };
    if let Err(e) = &result {
        let _ = INIT_ERROR.set(e.clone());
    }
    result
}

/// The interpreter of application group `group` ("" is the main one),
/// created on its first use in this process.
pub fn interpreter(group: &str) -> Result<&'static Interp, String> {
    if let Some(i) = Interp::by_name(group) {
        return Ok(i);
    }
    if let Some(e) = init_error() {
        return Err(e.to_string());
    }
    // The main interpreter is set up by `initialize`, never here.
    let (Some(setup), false) = (SETUP.get(), group.is_empty()) else {
        return Err("Python is not initialised in this process".into());
    };
    let own_gil = own_gil(&setup.settings, &setup.info.process_group, group);
    let result = Interp::for_group(group, own_gil, |py, interp| {
        crate::python::logging::info(
            py,
            &format!(
                "mod_wsgi_rs (pid={}): Create interpreter '{group}'.",
                std::process::id()
            ),
        );
        let objects = set_up(py, setup, interp.name())?;
        objects
            .module
            .bind(py)
            .call_method0("_watch_extension_loading")?;
        Ok(objects)
    });
    result
        .map_err(|e| format!("cannot create the interpreter for application group '{group}': {e}"))
}

/// Whether a sub-interpreter gets a GIL of its own (WSGIPerInterpreterGIL,
/// PEP 684: Python 3.12+).
fn own_gil(settings: &PythonSettings, process_group: &str, group: &str) -> bool {
    settings
        .interpreter_options(process_group, group)
        .per_interpreter_gil
}

/// What every interpreter gets: the helper module, the streams, sys.path.
fn set_up(py: Python<'_>, setup: &Setup, group: &str) -> PyResult<InterpObjects> {
    let settings = &setup.settings;
    let objects = InterpObjects::new(py, group, &setup.info)?;
    install_streams(py, &objects)?;
    if let Some(dir) = settings.eggs.as_ref().filter(|_| group.is_empty()) {
        // In os.environ (and so the process's, which later interpreters
        // copy), as mod_wsgi does.
        py.import("os")?
            .getattr("environ")?
            .set_item("PYTHON_EGG_CACHE", dir)?;
    }
    if !settings.path.is_empty() {
        objects
            .module
            .bind(py)
            .getattr("add_python_path")?
            .call1((settings.path.clone(),))?;
    }
    let options = settings.interpreter_options(&setup.info.process_group, group);
    super::configure::configure_interpreter(py, &objects, &options)?;
    if let Some(extra) = &setup.extra {
        extra(py, &objects)?;
    }
    Ok(objects)
}

fn start(setup: &'static Setup) -> Result<&'static Interp, String> {
    let settings = &setup.settings;
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
            cfg.enable_gil = if settings.free_threading(&setup.info.process_group) {
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
        Interp::register_main(|py| set_up(py, setup, ""))
    }
}

/// sys.stdout and sys.stderr write to the error log.
fn install_streams(py: Python<'_>, objects: &InterpObjects) -> PyResult<()> {
    let sys = py.import("sys")?;
    let log = objects.log_stream.bind(py);
    sys.setattr("stdout", log.call1((py.None(), 0u8, "<stdout>"))?)?;
    sys.setattr("stderr", log.call1((py.None(), 1u8, "<stderr>"))?)?;
    Ok(())
}

/// Process exit: in every interpreter, sub-interpreters first, wait for the
/// application's non-daemon threads (until `deadline`) and run its atexit
/// callbacks, then end the sub-interpreters that nothing else uses. Never
/// Py_Finalize: the main interpreter stays, the process is exiting. With
/// WSGIDestroyInterpreter Off only the `process_stopping` event is
/// published (with `reason`, mod_wsgi's name for it), as with mod_wsgi.
pub fn shutdown(deadline: Instant, reason: &str) {
    let destroy = SETUP.get().is_none_or(|s| s.settings.destroy_interpreter());
    Interp::process_exiting();
    let interps = Interp::all();
    for interp in interps.iter().rev() {
        let idle = interp.close(deadline);
        if !interp.ready() {
            continue;
        }
        if idle {
            interp.run_closed(|py| {
                crate::wsgi::events::process_stopping(py, interp.objects(), reason)
            });
        }
        if !destroy {
            continue;
        }
        if !idle {
            crate::apache::log::server(
                crate::wsgi::transport::Level::Warning,
                &format!(
                    "mod_wsgi_rs (pid={}): Requests still running in interpreter '{}' at shutdown; its atexit callbacks are skipped.",
                    std::process::id(),
                    interp.name()
                ),
            );
            continue;
        }
        let left = interp.run_closed(|py| {
            let module = interp.objects().module.bind(py);
            let secs = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            let monotonic = py
                .import("time")
                .and_then(|t| t.call_method0("monotonic"))
                .and_then(|t| t.extract::<f64>())
                .unwrap_or(0.0);
            match module
                .call_method1("_shutdown", (monotonic + secs,))
                .and_then(|l| l.extract::<Vec<String>>())
            {
                Ok(left) => left,
                Err(e) => {
                    e.print(py);
                    Vec::new()
                }
            }
        });
        if let Some(left) = left.filter(|l| !l.is_empty()) {
            crate::apache::log::server(
                crate::wsgi::transport::Level::Warning,
                &format!(
                    "mod_wsgi_rs (pid={}): Threads still running in interpreter '{}' at shutdown: {}.",
                    std::process::id(),
                    interp.name(),
                    left.join(", ")
                ),
            );
            continue;
        }
        // SAFETY: `close` succeeded, so no thread is inside it and none may
        // enter again; this thread has no `run` in progress.
        unsafe { interp.end() };
    }
}
