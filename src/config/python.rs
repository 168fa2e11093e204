//! WSGIPythonHome / WSGIPythonPath / WSGIPythonOptimize, checked at config time.
use std::path::Path;

#[derive(Default, Clone, Debug)]
pub struct PythonSettings {
    pub home: Option<String>,
    /// Entries of WSGIPythonPath, in order.
    pub path: Vec<String>,
    pub optimize: u8,
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
    let cfg = p.join("pyvenv.cfg");
    if let Ok(text) = std::fs::read_to_string(&cfg) {
        let (maj, min) = built_version();
        match pyvenv_version(&text) {
            Some((a, b)) if (a, b) != (maj, min) => {
                return Err(format!(
                    "WSGIPythonHome '{home}' is a virtual environment for Python {a}.{b}, but mod_wsgi_rs was built for Python {maj}.{min}; recreate the environment with python{maj}.{min} or build the module with PYO3_PYTHON=python{a}.{b}."
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
