//! Step 1: the mod_wsgi_rs module, and the Python version it was built for,
//! which the application's Python must match.
use super::report::Report;
use super::CheckArgs;
use crate::locate;
use std::path::PathBuf;

/// Step 1: the module (None when not found, a warning) and its Python
/// version "X.Y" (this program's when it cannot be told). Err when
/// --module-path is no file.
pub(super) fn module_step(
    args: &CheckArgs,
    r: &mut Report,
) -> Result<(Option<PathBuf>, String), String> {
    let modules_dir = args
        .modules_directory
        .clone()
        .or_else(|| locate::Apache::find(None, None).ok().map(|a| a.modules_dir));
    if let Some(p) = args.module_path.as_deref().filter(|p| !p.is_file()) {
        return Err(format!(
            "--module-path {} is not a file: give the path of mod_wsgi_rs.so (for a build, \
             target/release/libmod_wsgi_rs.so).",
            p.display()
        ));
    }
    let found = locate::wsgi_module(args.module_path.as_deref(), modules_dir.as_deref());
    Ok(match found {
        Ok(m) => match locate::module_python_version(&m) {
            Some(v) => {
                r.ok(&format!("module: {} (built for Python {v}).", m.display()));
                (Some(m), v)
            }
            None => {
                r.warning(
                    &format!(
                        "module: cannot tell which Python {} was built for (it names no libpython3.X); \
                         checking with Python {}.",
                        m.display(),
                        locate::PYTHON_VERSION
                    ),
                    &[],
                );
                (Some(m), locate::PYTHON_VERSION.to_string())
            }
        },
        Err(e) => {
            r.warning(
                &format!(
                    "module: {} Checking with Python {}, the one this program was built with.",
                    e.trim_end(),
                    locate::PYTHON_VERSION
                ),
                &[],
            );
            (None, locate::PYTHON_VERSION.to_string())
        }
    })
}
