//! `module-config` prints the lines that load mod_wsgi_rs into an existing
//! Apache; `install-module` first copies the module into Apache's modules
//! directory, so that the lines it prints survive a rebuild of the checkout.
use crate::accounts::absolute;
use crate::locate::{self, Apache};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ModuleConfigArgs {
    /// The mod_wsgi_rs module (default: next to this program, else in Apache's modules directory).
    #[arg(long, value_name = "FILE")]
    pub module_path: Option<PathBuf>,

    /// Python home or virtual environment for WSGIPythonHome (default: $VIRTUAL_ENV, if set).
    #[arg(long, visible_alias = "virtualenv", value_name = "DIR")]
    pub python_home: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    /// The module to install (default: the one built next to this program).
    #[arg(long, value_name = "FILE")]
    pub module_path: Option<PathBuf>,

    /// Where to install it (default: Apache's modules directory, from apxs or the distribution's).
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,

    /// Python home or virtual environment for WSGIPythonHome (default: $VIRTUAL_ENV, if set).
    #[arg(long, visible_alias = "virtualenv", value_name = "DIR")]
    pub python_home: Option<PathBuf>,
}

/// The configuration lines for `module` (and a Python home).
fn lines(module: &Path, python_home: Option<PathBuf>) -> Result<String, String> {
    let home = python_home.or_else(|| std::env::var_os("VIRTUAL_ENV").map(PathBuf::from));
    let version =
        locate::module_python_version(module).unwrap_or_else(|| locate::PYTHON_VERSION.into());
    let mut out = format!(
        "# mod_wsgi_rs {}, for Python {version}. Do not also load mod_wsgi: both define the WSGI* directives.\n\
         LoadModule wsgi_rs_module {}\n",
        env!("CARGO_PKG_VERSION"),
        crate::httpd_conf::word(&module.to_string_lossy())
    );
    if let Some(home) = home {
        let home = absolute(&home);
        if locate::python_in(&home).is_none() {
            return Err(format!(
                "{} is not a Python home or virtual environment (no bin/python3).",
                home.display()
            ));
        }
        out.push_str(&format!(
            "WSGIPythonHome {}\n",
            crate::httpd_conf::word(&home.to_string_lossy())
        ));
    }
    Ok(out)
}

pub fn print(args: ModuleConfigArgs) -> Result<i32, String> {
    let modules_dir = Apache::find(None, None).ok().map(|a| a.modules_dir);
    let module = locate::wsgi_module(args.module_path.as_deref(), modules_dir.as_deref())?;
    print!("{}", lines(&module, args.python_home)?);
    Ok(0)
}

pub fn install(args: InstallArgs) -> Result<i32, String> {
    let dir = match &args.modules_directory {
        Some(d) => absolute(d),
        None => Apache::find(None, None)?.modules_dir,
    };
    if !dir.is_dir() {
        return Err(format!(
            "the modules directory {} does not exist.",
            dir.display()
        ));
    }
    // The source: never the installed copy itself.
    let source = locate::wsgi_module(args.module_path.as_deref(), None)?;
    let target = dir.join("mod_wsgi_rs.so");
    // Copy then rename, so that a running Apache that maps the old file keeps it intact.
    let tmp = dir.join(format!(".mod_wsgi_rs.so.{}", std::process::id()));
    let copied = fs::copy(&source, &tmp)
        .and_then(|_| fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)))
        .and_then(|_| fs::rename(&tmp, &target));
    if let Err(e) = copied {
        let _ = fs::remove_file(&tmp);
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " Run it as root (sudo), or choose a directory with --modules-directory."
        } else {
            ""
        };
        return Err(format!(
            "cannot install {} as {}: {e}.{hint}",
            source.display(),
            target.display()
        ));
    }
    eprintln!("Installed {} as {}.", source.display(), target.display());
    print!("{}", lines(&target, args.python_home)?);
    Ok(0)
}
