//! The application's Python: its working directory, the Python home (a
//! virtual environment of the module's Python version), the Python path,
//! the reloader it imports at start, and the environment variables it sees.
use super::File;
use crate::accounts::absolute;
use crate::locate;
use crate::options::ServerArgs;
use std::path::{Path, PathBuf};

/// The interpreter settings, checked against the module's Python.
pub(super) struct PythonSettings {
    pub working_directory: PathBuf,
    pub home: Option<PathBuf>,
    /// --python-path, then the working directory.
    pub path: Vec<PathBuf>,
}

/// Resolves the interpreter settings for the Python `module` was built for.
pub(super) fn settings(args: &ServerArgs, module: &Path) -> Result<PythonSettings, String> {
    let module_version =
        locate::module_python_version(module).unwrap_or_else(|| locate::PYTHON_VERSION.to_string());
    let working_directory = working_directory(args)?;
    let home = args
        .python_home
        .as_deref()
        .map(|h| python_home(h, &module_version))
        .transpose()?;
    let mut path: Vec<PathBuf> = args.python_path.iter().map(|p| absolute(p)).collect();
    path.push(working_directory.clone());
    Ok(PythonSettings {
        working_directory,
        home,
        path,
    })
}

/// --working-directory, by default the current one.
fn working_directory(args: &ServerArgs) -> Result<PathBuf, String> {
    let dir = absolute(
        &args
            .working_directory
            .clone()
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| "/".into())),
    );
    if !dir.is_dir() {
        return Err(format!(
            "the working directory {} does not exist.",
            dir.display()
        ));
    }
    Ok(dir)
}

/// --python-home, which must be of the module's Python version and have a
/// bin/python3.
fn python_home(given: &Path, module_version: &str) -> Result<PathBuf, String> {
    let h = absolute(given);
    crate::check::python_env::check_home_matches(&h, module_version)?;
    if locate::python_in(&h).is_none() {
        return Err(format!(
            "the Python home {} has no bin/python3: create the virtual environment \
             with `python{} -m venv {}`, or fix --python-home.",
            h.display(),
            locate::PYTHON_VERSION,
            h.display()
        ));
    }
    Ok(h)
}

const RELOADER: &str = include_str!("reloader.py");

/// With --reload-on-changes, the reloader: the file to write into
/// `server_root` and the import scripts that load it.
pub(super) fn reloader(args: &ServerArgs, server_root: &Path) -> (Option<File>, Vec<PathBuf>) {
    if !args.reload_on_changes {
        return (None, Vec::new());
    }
    (
        Some(File::new("reloader.py", RELOADER.into(), 0o644)),
        vec![server_root.join("reloader.py")],
    )
}

/// --passenv's names, each of which must be set here: Apache passes on only
/// what it inherits.
pub(super) fn pass_env(args: &ServerArgs) -> Result<Vec<String>, String> {
    for name in &args.passenv {
        if std::env::var_os(name).is_none() {
            return Err(format!(
                "--passenv {name}: there is no environment variable {name} to pass on."
            ));
        }
    }
    Ok(args.passenv.clone())
}

/// --setenv's (name, value) pairs.
pub(super) fn set_env(args: &ServerArgs) -> Vec<(String, String)> {
    args.setenv
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}
