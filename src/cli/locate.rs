//! Finding the pieces on this machine: Apache (through apxs, or its binary
//! on the usual paths), its modules directory and MPMs, the mod_wsgi_rs
//! module, and the Python the module was built against.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python version and executable the module (and this binary) were built
/// against; build.rs reads them from pyo3's build configuration.
pub const PYTHON_VERSION: &str = env!("WSGI_RS_PY_VERSION");
pub const PYTHON_EXECUTABLE: &str = env!("WSGI_RS_PY_EXECUTABLE");

/// The system's Apache.
#[derive(Clone, Debug)]
pub struct Apache {
    pub httpd: PathBuf,
    pub modules_dir: PathBuf,
}

fn apxs(var: &str) -> Option<String> {
    let apxs = std::env::var("APXS").unwrap_or_else(|_| "apxs".into());
    let out = Command::new(apxs).args(["-q", var]).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn first_existing(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| p.exists())
}

fn on_path(name: &str) -> impl Iterator<Item = PathBuf> + '_ {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/usr/local/apache2/bin"].map(PathBuf::from));
    dirs.into_iter().map(move |d| d.join(name))
}

impl Apache {
    /// Apache from the given paths, else from apxs, else the usual places.
    pub fn find(httpd: Option<&Path>, modules_dir: Option<&Path>) -> Result<Apache, String> {
        let httpd = match httpd {
            Some(p) if p.exists() => p.to_path_buf(),
            Some(p) => {
                return Err(format!(
                    "--httpd-executable {} does not exist.",
                    p.display()
                ))
            }
            None => apxs("SBINDIR")
                .zip(apxs("TARGET"))
                .map(|(dir, target)| Path::new(&dir).join(target))
                .filter(|p| p.exists())
                .or_else(|| first_existing(on_path("apache2").chain(on_path("httpd"))))
                .ok_or(
                    "cannot find Apache httpd (apxs, apache2 or httpd). Install it \
                        (Debian/Ubuntu: apt install apache2; Fedora/RHEL: dnf install httpd) \
                        or name it with --httpd-executable.",
                )?,
        };
        let modules_dir = match modules_dir {
            Some(p) => p.to_path_buf(),
            None => apxs("LIBEXECDIR")
                .map(PathBuf::from)
                .filter(|p| p.is_dir())
                .or_else(|| {
                    first_existing(
                        [
                            "/usr/lib/apache2/modules",
                            "/usr/lib64/httpd/modules",
                            "/usr/lib/httpd/modules",
                            "/usr/local/apache2/modules",
                        ]
                        .map(PathBuf::from),
                    )
                })
                .ok_or(
                    "cannot find Apache's modules directory; name it with --modules-directory.",
                )?,
        };
        if !modules_dir.is_dir() {
            return Err(format!(
                "Apache's modules directory {} does not exist; name it with --modules-directory.",
                modules_dir.display()
            ));
        }
        Ok(Apache { httpd, modules_dir })
    }

    /// `mod_<name>.so` in the modules directory, if it is there.
    pub fn module(&self, name: &str) -> Option<PathBuf> {
        Some(self.modules_dir.join(format!("mod_{name}.so"))).filter(|p| p.exists())
    }
}

/// The mod_wsgi_rs module: `given`, else the one built next to this binary
/// (cargo's target dir), else the installed one in `modules_dir`.
pub fn wsgi_module(given: Option<&Path>, modules_dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(crate::accounts::absolute(p))
        } else {
            Err(format!("--module-path {} is not a file.", p.display()))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .into_iter()
        .flat_map(|d| [d.join("libmod_wsgi_rs.so"), d.join("mod_wsgi_rs.so")]);
    let installed = modules_dir.map(|d| d.join("mod_wsgi_rs.so"));
    first_existing(beside.chain(installed)).ok_or_else(|| {
        "cannot find mod_wsgi_rs.so: build it with `cargo build --release` (it is then found \
         next to this program), install it (`mod_wsgi_rs install-module`), or name it with \
         --module-path."
            .to_string()
    })
}

/// The `3.X` of the libpython a module links, read from its dynamic section's
/// strings (`libpython3.X.so…`).
pub fn module_python_version(module: &Path) -> Option<String> {
    let bytes = std::fs::read(module).ok()?;
    let needle = b"libpython3.";
    let at = bytes.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let minor: String = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    (!minor.is_empty()).then(|| format!("3.{minor}"))
}

/// The Python executable of a Python home or virtual environment.
pub fn python_in(home: &Path) -> Option<PathBuf> {
    first_existing(
        [
            format!("bin/python{PYTHON_VERSION}"),
            "bin/python3".into(),
            "bin/python".into(),
        ]
        .map(|p| home.join(p)),
    )
}

/// The python executable of the Python `module` links (version `3.X`): the
/// `bin/python3.X` beside the RUNPATH directory that holds its libpython
/// (a module built against a Python outside the system's library paths),
/// else this program's Python if it is that version, else `python3.X` on
/// the PATH.
pub fn module_python(module: &Path, version: &str) -> Option<PathBuf> {
    let lib = format!("libpython{version}.so.1.0");
    let exe = format!("python{version}");
    let from_runpath = std::fs::read(module).ok().and_then(|bytes| {
        // RUNPATH is one of the NUL-terminated strings of the dynamic section.
        bytes
            .split(|&b| b == 0)
            .filter(|s| s.first() == Some(&b'/') && s.len() < 4096)
            .filter_map(|s| std::str::from_utf8(s).ok())
            .flat_map(|s| s.split(':'))
            .map(Path::new)
            .filter(|dir| dir.join(&lib).exists())
            .find_map(|dir| Some(dir.parent()?.join("bin").join(&exe)).filter(|p| p.exists()))
    });
    from_runpath
        .or_else(|| (version == PYTHON_VERSION).then(|| PathBuf::from(PYTHON_EXECUTABLE)))
        .or_else(|| first_existing(on_path(&exe)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_libpython_version_of_a_module() {
        let dir = std::env::temp_dir().join(format!("wsgi-rs-locate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("m.so");
        std::fs::write(&f, b"\x7fELF...\0libc.so.6\0libpython3.12.so.1.0\0").unwrap();
        assert_eq!(module_python_version(&f).as_deref(), Some("3.12"));
        std::fs::write(&f, b"\x7fELF no python here").unwrap();
        assert_eq!(module_python_version(&f), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_the_python_of_a_modules_runpath() {
        let dir = std::env::temp_dir().join(format!("wsgi-rs-runpath-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("lib/libpython3.99.so.1.0"), b"").unwrap();
        std::fs::write(dir.join("bin/python3.99"), b"").unwrap();
        let module = dir.join("m.so");
        let runpath = format!(
            "\x7fELF\0libpython3.99.so.1.0\0/nowhere:{}/lib\0",
            dir.display()
        );
        std::fs::write(&module, runpath).unwrap();
        let found = module_python(&module, "3.99");
        std::fs::write(&module, b"\x7fELF\0libpython3.99.so.1.0\0").unwrap();
        let without = module_python(&module, "3.99");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, Some(dir.join("bin/python3.99")));
        assert_eq!(without, None);
    }
}
