//! The interpreter directives (main server only): WSGIPythonPath,
//! WSGIPythonHashSeed, WSGIPythonWarnings, WSGIDontWriteBytecode,
//! WSGIPythonEggs, WSGICaseSensitivity, WSGIDestroyInterpreter,
//! WSGILazyInitialization, WSGIVerboseDebugging, the per-interpreter ones
//! and the `<WSGIInterpreterOptions>` section that scopes them.
//!
//! The C shim runs a section's body after `open_section` accepted it;
//! each directive of the body then finds the section as its parent
//! directive and files its value under the section opened last.
use super::directives::{global_only, one, words};
use super::interp_options::{Layer, Section, SCOPED};
use super::python::{built_version, HashSeed, PythonSettings};
use super::{parse_flag, ServerConfig};
use crate::apache::{self, log, sys};
use std::ffi::{c_char, CString};

/// The section's directive name, as Apache's configuration tree holds it.
pub const SECTION: &str = "<WSGIInterpreterOptions";

/// Apache's notice level: logged whatever the LogLevel.
const NOTICE: i32 = 5;

/// Whether `apply` handles the directive `name`.
pub fn handles(name: &str) -> bool {
    SCOPED.contains(&name)
        || matches!(
            name,
            SECTION
                | "WSGIPythonHashSeed"
                | "WSGIPythonWarnings"
                | "WSGIDontWriteBytecode"
                | "WSGIPythonEggs"
                | "WSGICaseSensitivity"
                | "WSGIDestroyInterpreter"
                | "WSGILazyInitialization"
                | "WSGIVerboseDebugging"
        )
}

/// Handles one of these directives; `w` are its words, `args` its raw text.
///
/// # Safety
/// `cmd` is Apache's live cmd_parms for a RSRC_CONF directive, and no other
/// reference to the main server's record is live (configuration is read on
/// one thread).
pub unsafe fn apply(
    name: &str,
    w: &[String],
    cmd: *mut sys::cmd_parms,
    args: *const c_char,
) -> Result<(), String> {
    // SAFETY: cmd is live (caller's contract).
    unsafe { global_only(cmd) }?;
    // SAFETY: the directive is global-only, so this is the main server's
    // record; Apache reads the configuration on one thread and nothing
    // else borrows the record meanwhile (caller's contract).
    let srv = unsafe { &mut *(sys::wsgi_rs_server_config((*cmd).server) as *mut ServerConfig) };
    let py = &mut srv.python;
    // SAFETY: cmd is live.
    let server = unsafe { (*cmd).server };
    if name == SECTION {
        // SAFETY: cmd and args are live; see open_section.
        return unsafe { open_section(cmd, args, py) };
    }
    // SAFETY: cmd is live, and so is the directive tree it points into.
    let scoped = unsafe { in_section(cmd) };
    let warn = |msg: &str| {
        // SAFETY: the server record is live during configuration.
        unsafe { log::error(server, log::WARNING, &format!("mod_wsgi_rs: {msg}")) }
    };
    if SCOPED.contains(&name) {
        let (layer, app_group) = match py.sections.last_mut() {
            Some(s) if scoped => (&mut s.layer, s.application_group.clone()),
            _ => (&mut py.top, None),
        };
        return scoped_directive(name, w, layer, scoped, &mut py.path, app_group, &warn);
    }
    let flag = || parse_flag(name, one(name, w)?);
    match name {
        "WSGIPythonHashSeed" => py.hash_seed = Some(HashSeed::parse(one(name, w)?)?),
        "WSGIPythonWarnings" => py.warnings.push(one(name, w)?.to_string()),
        "WSGIDontWriteBytecode" => py.dont_write_bytecode = flag()?,
        "WSGIPythonEggs" => py.eggs = Some(one(name, w)?.to_string()),
        "WSGICaseSensitivity" => py.case_sensitivity = Some(flag()?),
        "WSGIDestroyInterpreter" => py.destroy = Some(flag()?),
        "WSGILazyInitialization" => {
            if !flag()? {
                warn("WSGILazyInitialization Off has no effect: as in mod_wsgi 6, Python is always initialised after fork, in Apache's children and daemon processes, never in the Apache parent.");
            }
        }
        "WSGIVerboseDebugging" => {
            flag()?;
            let msg = "mod_wsgi_rs: WSGIVerboseDebugging is deprecated and has no effect (as in mod_wsgi 6); use 'LogLevel info wsgi_rs:debug' for more detail.";
            // SAFETY: the server record is live during configuration.
            unsafe { log::error(server, NOTICE, msg) };
        }
        other => return Err(format!("{other} is not an interpreter directive.")),
    }
    Ok(())
}

/// A directive that `<WSGIInterpreterOptions>` may scope, at the top level
/// (`layer` is PythonSettings::top) or in a section (`app_group` is the
/// section's application-group=, if any).
fn scoped_directive(
    name: &str,
    w: &[String],
    layer: &mut Layer,
    in_section: bool,
    global_path: &mut Vec<String>,
    app_group: Option<String>,
    warn: &dyn Fn(&str),
) -> Result<(), String> {
    let flag = || parse_flag(name, one(name, w)?);
    match name {
        "WSGIPythonPath" => {
            let dirs = one(name, w)?
                .split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            if in_section {
                layer.python_path = dirs;
            } else {
                *global_path = dirs;
            }
        }
        "WSGISwitchInterval" => {
            let v = one(name, w)?;
            match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => layer.switch_interval = Some(s),
                _ => {
                    return Err(format!(
                        "WSGISwitchInterval must be a positive number of seconds, not '{v}'."
                    ))
                }
            }
            if app_group.is_some_and(|g| !g.is_empty()) && built_version() < (3, 12) {
                warn(&format!("WSGISwitchInterval {v} in a <WSGIInterpreterOptions> section with application-group= has no effect: the switch interval is process-wide unless the interpreter has its own GIL, which needs Python 3.12 or later (this module was built for Python {}).", env!("WSGI_RS_PY_VERSION")));
            }
        }
        "WSGIPerInterpreterGIL" => {
            let on = flag()?;
            if on && built_version() < (3, 12) {
                warn("WSGI0198: WSGIPerInterpreterGIL requires Python 3.12 or later; directive has no effect on this build.");
            }
            layer.per_interpreter_gil = Some(on);
        }
        "WSGIFreeThreading" => {
            let on = flag()?;
            if app_group.is_some() {
                warn("WSGI0201: WSGIFreeThreading inside <WSGIInterpreterOptions> with application-group= set is ignored: free-threading is a process-wide setting and cannot be scoped per application group.");
                return Ok(());
            }
            if on && !cfg!(Py_GIL_DISABLED) {
                return Err(format!(
                    "WSGIFreeThreading On needs a free-threaded Python build (PEP 703, e.g. python3.14t), but this module was built for Python {} ({}), which is not a free-threaded build; build the module with PYO3_PYTHON set to a free-threaded Python, or remove the directive.",
                    env!("WSGI_RS_PY_VERSION"),
                    env!("WSGI_RS_PY_EXECUTABLE")
                ));
            }
            layer.free_threading = Some(on);
        }
        "WSGIRestrictStdin" => layer.restrict_stdin = Some(flag()?),
        "WSGIRestrictStdout" => layer.restrict_stdout = Some(flag()?),
        "WSGIRestrictSignal" => layer.restrict_signal = Some(flag()?),
        other => return Err(format!("{other} cannot be scoped per interpreter.")),
    }
    Ok(())
}

/// `<WSGIInterpreterOptions [process-group=name] [application-group=name]>`:
/// checks the selectors and that the body holds only directives a section
/// may scope (else the error points at the first one that it may not),
/// then adds the section; the C shim runs the body next.
///
/// # Safety
/// `cmd` is live and its `directive` is this section's node in Apache's
/// configuration tree; `args` is NUL-terminated.
unsafe fn open_section(
    cmd: *mut sys::cmd_parms,
    args: *const c_char,
    py: &mut PythonSettings,
) -> Result<(), String> {
    // SAFETY: args is NUL-terminated (contract).
    let raw = unsafe { apache::cstring_lossy(args) }.unwrap_or_default();
    let end = raw
        .rfind('>')
        .ok_or("<WSGIInterpreterOptions> directive missing closing '>'.")?;
    let inner = CString::new(&raw[..end]).map_err(|_| "NUL in <WSGIInterpreterOptions>")?;
    // SAFETY: temp_pool is live during configuration; inner is NUL-terminated.
    let selectors = unsafe { words((*cmd).temp_pool, inner.as_ptr()) };
    let section = Section::parse(&selectors)?;
    // SAFETY: the tree is Apache's, complete and unchanged while it is
    // walked; err_directive takes a pointer into it, as Apache's own walker does.
    unsafe {
        let mut child = (*(*cmd).directive).first_child;
        while !child.is_null() {
            let name = apache::cstring_lossy((*child).directive).unwrap_or_default();
            if !SCOPED.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
                (*cmd).err_directive = child;
                return Err(format!(
                    "{name} cannot occur within <WSGIInterpreterOptions> section: only {} can.",
                    SCOPED.join(", ")
                ));
            }
            child = (*child).next;
        }
    }
    py.sections.push(section);
    Ok(())
}

/// Whether the directive being read is in a `<WSGIInterpreterOptions>` body.
///
/// # Safety
/// `cmd` is live, and so is the configuration tree it points into.
unsafe fn in_section(cmd: *mut sys::cmd_parms) -> bool {
    // SAFETY: directive and parent are NULL or nodes of the live tree.
    unsafe {
        let d = (*cmd).directive;
        if d.is_null() || (*d).parent.is_null() {
            return false;
        }
        apache::cbytes((*(*d).parent).directive)
            .is_some_and(|n| n.eq_ignore_ascii_case(SECTION.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        name: &str,
        value: &str,
        layer: &mut Layer,
        app_group: Option<&str>,
    ) -> Result<(), String> {
        let mut path = Vec::new();
        let w = [value.to_string()];
        scoped_directive(
            name,
            &w,
            layer,
            app_group.is_some(),
            &mut path,
            app_group.map(str::to_string),
            &|_| {},
        )
    }

    #[test]
    fn knows_its_directives() {
        assert!(handles("WSGIRestrictSignal"));
        assert!(handles(SECTION));
        assert!(handles("WSGIPythonPath"));
        assert!(!handles("WSGIScriptAlias"));
    }

    #[test]
    fn switch_intervals_are_positive_seconds() {
        let mut l = Layer::default();
        run("WSGISwitchInterval", "0.002", &mut l, None).unwrap();
        assert_eq!(l.switch_interval, Some(0.002));
        for bad in ["0", "-1", "abc", "inf", "NaN", ""] {
            let err = run("WSGISwitchInterval", bad, &mut l, None).unwrap_err();
            assert!(err.contains("positive number of seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn python_path_goes_to_the_section_or_the_global_list() {
        let mut l = Layer::default();
        let mut global = Vec::new();
        let w = ["/a:/b".to_string()];
        scoped_directive(
            "WSGIPythonPath",
            &w,
            &mut l,
            false,
            &mut global,
            None,
            &|_| {},
        )
        .unwrap();
        assert_eq!(global, ["/a", "/b"]);
        assert!(l.python_path.is_empty());
        scoped_directive(
            "WSGIPythonPath",
            &w,
            &mut l,
            true,
            &mut global,
            None,
            &|_| {},
        )
        .unwrap();
        assert_eq!(l.python_path, ["/a", "/b"]);
    }

    #[test]
    fn free_threading_needs_a_free_threaded_build_and_process_scope() {
        let mut l = Layer::default();
        run("WSGIFreeThreading", "Off", &mut l, None).unwrap();
        assert_eq!(l.free_threading, Some(false));
        let on = run("WSGIFreeThreading", "On", &mut l, None);
        if cfg!(Py_GIL_DISABLED) {
            assert_eq!(l.free_threading, Some(true));
        } else {
            let err = on.unwrap_err();
            assert!(err.contains("not a free-threaded build"), "{err}");
            assert!(err.contains(env!("WSGI_RS_PY_VERSION")), "{err}");
        }
        // In a section naming an application group: ignored (with a warning).
        let mut l = Layer::default();
        run("WSGIFreeThreading", "On", &mut l, Some("app")).unwrap();
        assert_eq!(l.free_threading, None);
    }

    #[test]
    fn flags() {
        let mut l = Layer::default();
        run("WSGIRestrictStdin", "On", &mut l, None).unwrap();
        run("WSGIRestrictSignal", "off", &mut l, None).unwrap();
        run("WSGIPerInterpreterGIL", "On", &mut l, None).unwrap();
        assert_eq!(
            (l.restrict_stdin, l.restrict_signal, l.per_interpreter_gil),
            (Some(true), Some(false), Some(true))
        );
        assert!(run("WSGIRestrictStdout", "yes", &mut l, None)
            .unwrap_err()
            .contains("On or Off"));
    }
}
