//! The Python that loads the application: a virtual environment's pyvenv.cfg,
//! asking a Python its version and paths, the advice when a Python home is
//! for another Python version than the module, and the check's Python step.
use super::report::Report;
use super::CheckArgs;
use crate::{accounts, locate};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A virtual environment's pyvenv.cfg: its `version` (or `version_info`) as
/// "X.Y", and its `home` (the directory of the Python it was made with).
#[derive(Debug, Default, PartialEq, Eq)]
struct PyvenvCfg {
    version: Option<String>,
    home: Option<String>,
}

fn parse_pyvenv_cfg(text: &str) -> PyvenvCfg {
    let mut cfg = PyvenvCfg::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "version" | "version_info" if cfg.version.is_none() => {
                let mut parts = value.split('.');
                if let (Some(a), Some(b)) = (parts.next(), parts.next()) {
                    if a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok() {
                        cfg.version = Some(format!("{a}.{b}"));
                    }
                }
            }
            "home" => cfg.home = Some(value.to_string()),
            _ => {}
        }
    }
    cfg
}

/// The pyvenv.cfg of `home`; None when it is not a virtual environment.
fn read_pyvenv_cfg(home: &Path) -> Option<PyvenvCfg> {
    std::fs::read_to_string(home.join("pyvenv.cfg"))
        .ok()
        .map(|t| parse_pyvenv_cfg(&t))
}

/// The Python that loads the application.
pub(super) struct Python {
    pub(super) executable: PathBuf,
    /// "X.Y.Z"
    pub(super) version: String,
    pub(super) stdlib: PathBuf,
    /// Site-packages of a virtual environment.
    pub(super) site_packages: Option<PathBuf>,
}

impl Python {
    pub(super) fn minor(&self) -> &str {
        minor_of(&self.version)
    }
}

/// "X.Y" of "X.Y.Z".
fn minor_of(version: &str) -> &str {
    match version.match_indices('.').nth(1) {
        Some((i, _)) => &version[..i],
        None => version,
    }
}

/// Asks `python` its version and paths.
fn query_python(python: &Path) -> Result<Python, String> {
    // Valid Python 2 too: a home of any version must answer.
    let code = "import sys, sysconfig; p = sysconfig.get_paths(); \
                sys.stdout.write('\\n'.join(['%d.%d.%d' % sys.version_info[:3], p['stdlib'], p['purelib'], \
                sys.prefix, getattr(sys, 'base_prefix', sys.prefix)]))";
    let out = Command::new(python)
        .args(["-s", "-E", "-c", code])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    if !out.status.success() || lines.len() < 5 {
        return Err(format!(
            "{} does not start: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let venv = lines[3] != lines[4];
    Ok(Python {
        executable: python.to_path_buf(),
        version: lines[0].to_string(),
        stdlib: PathBuf::from(lines[1]),
        site_packages: venv.then(|| PathBuf::from(lines[2])),
    })
}

/// The advice for a Python home of the wrong Python version: a virtual
/// environment is recreated, an installation replaced; or the module is
/// rebuilt for the home's Python.
fn mismatch_advice(
    home: &Path,
    venv: bool,
    want: &str,
    have: &str,
    have_python: Option<&str>,
) -> String {
    let pyo3 = have_python.map_or_else(|| format!("python{have}"), str::to_string);
    let first = if venv {
        format!(
            "Recreate it with Python {want} (`python{want} -m venv --clear {}`, then reinstall the \
             application's packages)",
            home.display()
        )
    } else {
        format!("Give --python-home a Python {want} installation or virtual environment")
    };
    format!("{first}, or build the module for Python {have} (`PYO3_PYTHON={pyo3} cargo build --release`).")
}

/// When `cfg` says the virtual environment `home` is for another Python
/// version than `want`: the problem, and the advice.
fn venv_mismatch(home: &Path, cfg: &PyvenvCfg, want: &str) -> Option<(String, String)> {
    let have = cfg.version.as_deref().filter(|have| *have != want)?;
    let base_python = cfg.home.as_ref().map(|b| format!("{b}/python{have}"));
    Some((
        format!(
            "{} is a virtual environment for Python {have}, but the module was built for Python \
             {want}: Apache would refuse to start with it.",
            home.display()
        ),
        mismatch_advice(home, true, want, have, base_python.as_deref()),
    ))
}

/// Err(sentence) when the Python home / virtual environment `home` is for another Python
/// version than `module_version` ("3.11"), saying how to fix it; Ok(()) when it matches
/// or its version cannot be told.
pub(crate) fn check_home_matches(home: &Path, module_version: &str) -> Result<(), String> {
    let home = accounts::absolute(home);
    match read_pyvenv_cfg(&home).and_then(|cfg| venv_mismatch(&home, &cfg, module_version)) {
        Some((problem, advice)) => Err(format!("{problem} {advice}")),
        None => Ok(()),
    }
}

/// The Python executable of --python-home; None, reported, when `home` is
/// no Python home for `want`.
fn python_of_home(home: &Path, want: &str, r: &mut Report) -> Option<PathBuf> {
    let shown = home.display();
    if !home.exists() {
        r.error(
            &format!("Python home: {shown} does not exist."),
            &[format!(
                "Create the virtual environment with `python{want} -m venv {shown}` and install the \
                 application's packages in it, or correct --python-home."
            )],
        );
        return None;
    }
    if !home.is_dir() {
        r.error(
            &format!("Python home: {shown} is not a directory."),
            &["Give --python-home a virtual environment (the directory `python -m venv` made) or \
               a Python installation's prefix (its sys.prefix)."
                .to_string()],
        );
        return None;
    }
    let cfg = read_pyvenv_cfg(home);
    if let Some((problem, advice)) = cfg.as_ref().and_then(|c| venv_mismatch(home, c, want)) {
        r.error(&format!("Python home: {problem}"), &[advice]);
        return None;
    }
    match locate::python_in(home) {
        Some(p) => Some(p),
        None if cfg.is_some() => {
            let base = cfg.and_then(|c| c.home).unwrap_or_else(|| "?".into());
            r.error(
                &format!(
                    "Python home: the virtual environment {shown} has no bin/python3: the Python it \
                     was made with ({base}) may have been removed."
                ),
                &[format!(
                    "Recreate it with `python{want} -m venv --clear {shown}` and reinstall the \
                     application's packages."
                )],
            );
            None
        }
        None => {
            r.error(
                &format!(
                    "Python home: {shown} is neither a virtual environment (no pyvenv.cfg) nor a \
                     Python installation (no bin/python3)."
                ),
                &[format!(
                    "Give --python-home a virtual environment (`python{want} -m venv DIR`) or the \
                     prefix of a Python {want} installation (its sys.prefix)."
                )],
            );
            None
        }
    }
}

/// Step 2: the Python of --python-home, or the module's. None when there is
/// no Python to load the application with (reported as an error).
pub(super) fn python_step(
    args: &CheckArgs,
    want: &str,
    module: Option<&Path>,
    r: &mut Report,
) -> Option<Python> {
    let python = match &args.python_home {
        Some(home) => python_of_home(&accounts::absolute(home), want, r)?,
        None => {
            match module
                .and_then(|m| locate::module_python(m, want))
                .or_else(|| {
                    (want == locate::PYTHON_VERSION)
                        .then(|| PathBuf::from(locate::PYTHON_EXECUTABLE))
                }) {
                Some(p) => p,
                None => {
                    r.error(
                    &format!("Python: cannot find python{want}, the Python the module was built for."),
                    &["Give its installation's prefix with --python-home, or install it.".to_string()],
                );
                    return None;
                }
            }
        }
    };
    let found = match query_python(&python) {
        Ok(p) => p,
        Err(e) => {
            r.error(&format!("Python: {e}."), &[]);
            return None;
        }
    };
    if found.minor() != want {
        let home = args.python_home.as_deref().map(accounts::absolute);
        let what = match &home {
            Some(h) => format!("Python home: {} is Python {}", h.display(), found.version),
            None => format!("Python: {} is Python {}", python.display(), found.version),
        };
        r.error(
            &format!("{what}, but the module was built for Python {want}."),
            &[match &home {
                Some(h) => mismatch_advice(
                    h,
                    found.site_packages.is_some(),
                    want,
                    found.minor(),
                    python.to_str(),
                ),
                None => format!(
                    "Give --python-home a Python {want} installation or virtual environment."
                ),
            }],
        );
        return None;
    }
    r.ok(&format!(
        "Python {} ({}).",
        found.version,
        found.executable.display()
    ));
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pyvenv_cfg() {
        let cfg = parse_pyvenv_cfg(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
        );
        assert_eq!(cfg.version.as_deref(), Some("3.11"));
        assert_eq!(cfg.home.as_deref(), Some("/usr/bin"));
        // virtualenv writes version_info, with the release level.
        let cfg = parse_pyvenv_cfg("home=/opt/py/bin\nversion_info = 3.12.1.final.0\n");
        assert_eq!(cfg.version.as_deref(), Some("3.12"));
        assert_eq!(cfg.home.as_deref(), Some("/opt/py/bin"));
        assert_eq!(parse_pyvenv_cfg("home = /usr/bin").version, None);
        assert_eq!(parse_pyvenv_cfg("version = banana").version, None);
        assert_eq!(parse_pyvenv_cfg(""), PyvenvCfg::default());
    }

    #[test]
    fn minor_versions() {
        assert_eq!(minor_of("3.11.2"), "3.11");
        assert_eq!(minor_of("3.9"), "3.9");
    }

    #[test]
    fn tells_a_home_of_another_python_version() {
        let dir = std::env::temp_dir().join(format!("check_home_matches.{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("pyvenv.cfg"),
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.9.18\n",
        )
        .unwrap();
        let err = check_home_matches(&dir, "3.11").unwrap_err();
        let matches = check_home_matches(&dir, "3.9");
        // Neither a virtual environment nor a Python installation: not judged here.
        let unknown = check_home_matches(&dir.join("missing"), "3.11");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.contains("Python 3.9") && err.contains("Python 3.11"),
            "{err}"
        );
        assert!(err.contains("python3.11 -m venv --clear"), "{err}");
        assert!(err.contains("PYO3_PYTHON=/usr/bin/python3.9"), "{err}");
        assert_eq!(matches, Ok(()));
        assert_eq!(unknown, Ok(()));
    }
}
