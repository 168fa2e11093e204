//! The Python settings of a process (WSGIPythonHome, WSGIPythonPath,
//! WSGIPythonOptimize, the interpreter directives and their
//! `<WSGIInterpreterOptions>` sections), checked at config time.
use super::interp_options::{self, InterpOptions, Layer, Section, Target};
use std::path::Path;

#[derive(Default, Clone, Debug)]
pub struct PythonSettings {
    pub home: Option<String>,
    /// Entries of WSGIPythonPath, in order.
    pub path: Vec<String>,
    pub optimize: u8,
    /// WSGIPythonHashSeed (None: Python's default, PYTHONHASHSEED or random).
    pub hash_seed: Option<HashSeed>,
    /// WSGIPythonWarnings, in order (PyConfig.warnoptions, like -W).
    pub warnings: Vec<String>,
    /// WSGIDontWriteBytecode On.
    pub dont_write_bytecode: bool,
    /// WSGIPythonEggs: PYTHON_EGG_CACHE of Apache's children (daemon
    /// processes use their group's python-eggs= instead).
    pub eggs: Option<String>,
    /// WSGICaseSensitivity (see `case_sensitive`).
    pub case_sensitivity: Option<bool>,
    /// WSGIDestroyInterpreter (see `destroy_interpreter`).
    pub destroy: Option<bool>,
    /// The per-interpreter directives given outside any section. Its
    /// switch interval is WSGISwitchInterval in Apache's children and the
    /// group's switch-interval= in a daemon process; its python_path is unused.
    pub top: Layer,
    /// `<WSGIInterpreterOptions>` sections, in configuration order.
    pub sections: Vec<Section>,
    /// A threads=0 daemon process (service scripts own their signals).
    pub service_scripts: bool,
}

/// A WSGIPythonHashSeed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashSeed {
    Random,
    Fixed(u32),
}

impl HashSeed {
    pub fn parse(v: &str) -> Result<HashSeed, String> {
        if v == "random" {
            return Ok(HashSeed::Random);
        }
        // Digits only: u32's parser would also take a leading '+'.
        match v.parse::<u32>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(HashSeed::Fixed(n)),
            _ => Err(format!(
                "WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295], not '{v}'."
            )),
        }
    }
}

impl PythonSettings {
    /// The options of interpreter `application_group` ("" is the main
    /// interpreter) in process group `process_group` ("" in Apache's
    /// children), after `<WSGIInterpreterOptions>` scoping.
    pub fn interpreter_options(
        &self,
        process_group: &str,
        application_group: &str,
    ) -> InterpOptions {
        let (major, minor) = built_version();
        interp_options::resolve(
            &self.top,
            &self.sections,
            &Target {
                process_group,
                application_group,
                free_threading: self.free_threading(process_group),
                own_gil_possible: (major, minor) >= (3, 12),
                service_scripts: self.service_scripts,
            },
        )
    }

    /// Whether the processes of `process_group` run with the GIL disabled
    /// (WSGIFreeThreading; only ever true in a free-threaded build).
    pub fn free_threading(&self, process_group: &str) -> bool {
        interp_options::free_threading(&self.top, &self.sections, process_group)
    }

    /// WSGICaseSensitivity: On (the default on Linux) keeps script paths as
    /// they are in module names and %{RESOURCE}; Off lower-cases them.
    pub fn case_sensitive(&self) -> bool {
        self.case_sensitivity.unwrap_or(true)
    }

    /// WSGIDestroyInterpreter (default On): Off leaves Python unfinalised
    /// when a process stops. Parsed and stored; process shutdown reads it.
    #[allow(dead_code)] // until shutdown finalises interpreters
    pub fn destroy_interpreter(&self) -> bool {
        self.destroy.unwrap_or(true)
    }

    /// A daemon process's settings: the global ones, with the group's
    /// Python home and path, its switch-interval= as the base switch
    /// interval, no WSGIPythonEggs (its python-eggs= is set before Python
    /// starts) and, for threads=0, no signal restriction.
    pub fn for_daemon(
        &self,
        home: Option<String>,
        path: Vec<String>,
        switch_interval: Option<f64>,
        service_scripts: bool,
    ) -> PythonSettings {
        let mut s = self.clone();
        s.home = home;
        s.path = path;
        s.eggs = None;
        s.top.switch_interval = switch_interval;
        s.service_scripts = service_scripts;
        s
    }
}

/// The Python this module was built against, e.g. (3, 11).
pub fn built_version() -> (u32, u32) {
    let v = env!("WSGI_RS_PY_VERSION");
    let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(3), it.next().unwrap_or(0))
}

/// The "X.Y" of a venv's pyvenv.cfg (`version = 3.11.2` or `version_info = 3.11.2.final.0`).
pub fn pyvenv_version(cfg: &str) -> Option<(u32, u32)> {
    cfg.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        if !matches!(k.trim(), "version" | "version_info") {
            return None;
        }
        let mut it = v.trim().split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    })
}

/// Validates a WSGIPythonHome value: it must be an existing directory and, if it
/// is a virtual environment, one made with the Python this module links.
pub fn check_home(home: &str) -> Result<(), String> {
    let p = Path::new(home);
    if !p.is_absolute() {
        return Err(format!("WSGIPythonHome '{home}' must be an absolute path."));
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("WSGIPythonHome '{home}' is not a directory.")),
        Err(e) => return Err(format!("Unable to stat Python home '{home}': {e}.")),
    }
    check_venv(home, "WSGIPythonHome")
}

/// A virtual environment at `home` (`what` names the setting) must be one
/// made with the Python this module links: another one cannot start.
pub fn check_venv(home: &str, what: &str) -> Result<(), String> {
    let cfg = Path::new(home).join("pyvenv.cfg");
    if let Ok(text) = std::fs::read_to_string(&cfg) {
        let (maj, min) = built_version();
        match pyvenv_version(&text) {
            Some((a, b)) if (a, b) != (maj, min) => {
                return Err(format!(
                    "{what} '{home}' is a virtual environment for Python {a}.{b}, but mod_wsgi_rs was built for Python {maj}.{min}; recreate the environment with python{maj}.{min} or build the module with PYO3_PYTHON=python{a}.{b}."
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_seeds() {
        assert_eq!(HashSeed::parse("random"), Ok(HashSeed::Random));
        assert_eq!(HashSeed::parse("0"), Ok(HashSeed::Fixed(0)));
        assert_eq!(HashSeed::parse("4294967295"), Ok(HashSeed::Fixed(u32::MAX)));
        for bad in ["4294967296", "-1", "+1", "", "Random", "12a"] {
            let err = HashSeed::parse(bad).unwrap_err();
            assert!(err.contains("[0; 4294967295]"), "{bad}: {err}");
        }
    }

    #[test]
    fn daemon_settings_keep_the_global_ones() {
        let global = PythonSettings {
            path: vec!["/global".into()],
            eggs: Some("/eggs".into()),
            warnings: vec!["ignore".into()],
            top: Layer {
                switch_interval: Some(0.5),
                restrict_stdout: Some(true),
                ..Layer::default()
            },
            ..PythonSettings::default()
        };
        let d = global.for_daemon(None, vec!["/daemon".into()], None, false);
        assert_eq!(d.path, ["/daemon"]);
        assert_eq!(d.eggs, None);
        assert_eq!(d.warnings, ["ignore"]);
        let o = d.interpreter_options("d", "");
        assert_eq!(o.switch_interval, None);
        assert!(o.restrict_stdout && o.restrict_signal);
        let svc = global.for_daemon(None, vec![], Some(0.2), true);
        let o = svc.interpreter_options("svc", "");
        assert_eq!(o.switch_interval, Some(0.2));
        assert!(!o.restrict_signal);
        assert!(global.case_sensitive() && global.destroy_interpreter());
    }

    #[test]
    fn reads_pyvenv_versions() {
        assert_eq!(
            pyvenv_version("home = /usr/bin\nversion = 3.11.2\n"),
            Some((3, 11))
        );
        assert_eq!(
            pyvenv_version("version_info = 3.12.1.final.0"),
            Some((3, 12))
        );
        assert_eq!(pyvenv_version("home = /usr/bin"), None);
    }

    #[test]
    fn rejects_missing_and_relative_homes() {
        assert!(check_home("relative/path")
            .unwrap_err()
            .contains("absolute"));
        assert!(check_home("/nonexistent/python/home")
            .unwrap_err()
            .contains("Unable to stat"));
        assert!(check_home("/").is_ok());
    }

    #[test]
    fn rejects_a_venv_for_another_python() {
        let dir = std::env::temp_dir().join(format!("wsgi-rs-venv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pyvenv.cfg"), "version = 2.7.18\n").unwrap();
        let err = check_home(dir.to_str().unwrap()).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("Python 2.7"), "{err}");
    }
}
