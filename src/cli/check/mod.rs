//! `mod_wsgi_rs check`: loads a WSGI script in the configured Python and
//! reports what would stop it working under Apache: the module and its
//! Python, a missing or mismatched virtual environment, files Apache's user
//! cannot read, exceptions while loading (with their traceback), a missing
//! callable, and extension modules that refuse a sub-interpreter.
//!
//! Python runs as a subprocess with the probe `probe.py`, which loads the
//! application the way the module does (when run as root, as the user
//! Apache runs the application as) and reports through a line protocol on
//! its stdout.
mod load;
mod permissions;
mod probe;
pub(crate) mod python_env;
mod report;
mod target;
mod wsgi_module;

use crate::accounts::{self, Account};
use probe::Probe;
use report::Report;
use std::path::PathBuf;
use std::time::Duration;
use target::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApplicationType {
    /// A WSGI script file that defines the callable.
    Script,
    /// A Python module imported from the Python path (`package.module`).
    Module,
}

#[derive(clap::Args)]
#[command(
    after_help = "Each check prints one line, `ok:`, `warning:`, `error:` or `skipped:`, with details \
                  (tracebacks, the Python path) indented below. The exit status is 0 when there is no \
                  error, 1 otherwise.\n\n\
                  Checks, in order: the module and the Python it was built for; the Python (or virtual \
                  environment) of --python-home and its version; that the user Apache runs the \
                  application as can read the script, the Python path, the working directory and Python \
                  itself; loading the application in Python's main interpreter (as that user, when run \
                  as root), with the traceback of any exception; that the callable exists and takes \
                  (environ, start_response); with an application group other than %{GLOBAL}, loading it \
                  in a sub-interpreter and again in a second one of the same process, naming the \
                  extension modules that refuse.\n\n\
                  The application is loaded in a separate Python process with this command's \
                  environment (less PYTHON* variables, which Apache's usually lacks), without writing \
                  .pyc files; its output is shown, its threads and atexit callbacks are not waited for.\n\n\
                  Examples:\n  \
                  mod_wsgi_rs check app.wsgi\n  \
                  mod_wsgi_rs check /srv/shop/shop/wsgi.py --python-home /srv/shop/venv --python-path /srv/shop\n  \
                  mod_wsgi_rs check /srv/app.wsgi --application-group %{RESOURCE} --user www-data\n  \
                  mod_wsgi_rs check shop.wsgi:application --python-path /srv/shop"
)]
pub struct CheckArgs {
    /// The WSGI script file to check, or a module `package.module[:callable]` to import
    /// from the Python path (same as --application-type module).
    #[arg(value_name = "SCRIPT")]
    pub script: String,

    /// How to load SCRIPT; by default an existing file is a script and
    /// `package.module[:callable]` is a module.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub application_type: Option<ApplicationType>,

    /// Name of the WSGI callable in the script or module (WSGICallableObject)
    /// [default: application].
    #[arg(long, value_name = "NAME")]
    pub callable_object: Option<String>,

    /// Application group the application runs in (WSGIApplicationGroup): `%{GLOBAL}`
    /// (or "") is Python's main interpreter, as `serve` uses; any other value, such
    /// as %{RESOURCE} (the default of a WSGIScriptAlias without WSGIApplicationGroup)
    /// or a name, is a sub-interpreter, where some extension modules refuse to load.
    #[arg(long, default_value = "%{GLOBAL}", value_name = "NAME")]
    pub application_group: String,

    /// Check sub-interpreters that have their own GIL (WSGIPerInterpreterGIL On,
    /// Python 3.12+), which refuse more extension modules.
    #[arg(long)]
    pub per_interpreter_gil: bool,

    /// Python home or virtual environment of the application (WSGIPythonHome,
    /// python-home=) [default: the Python the module was built against].
    #[arg(long, visible_alias = "virtualenv", value_name = "DIR")]
    pub python_home: Option<PathBuf>,

    /// Directory to add to the Python path (WSGIPythonPath, python-path=; repeatable).
    #[arg(long, value_name = "DIR", action = clap::ArgAction::Append)]
    pub python_path: Vec<PathBuf>,

    /// Current directory of the application, also put first on the Python path, as
    /// `serve --working-directory` and WSGIDaemonProcess home= do [default: `/`, not
    /// on the path, as in Apache's children].
    #[arg(long, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,

    /// User Apache runs the application as (Apache's User, or WSGIDaemonProcess user=):
    /// files are checked for that user, and when run as root the application is loaded
    /// as that user [default: as root, www-data or the distribution's web server
    /// account; otherwise the current user].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Group Apache runs the application as (Apache's Group, or WSGIDaemonProcess
    /// group=) [default: the user's primary group].
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Seconds loading the application may take before it is stopped and reported.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: u64,

    /// The mod_wsgi_rs module, whose Python version is checked against
    /// [default: next to this program, else in the modules directory].
    #[arg(long, value_name = "FILE")]
    pub module_path: Option<PathBuf>,

    /// Apache's modules directory, where an installed module is looked for
    /// [default: from apxs, else the distribution's].
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,
}

/// The account the application runs as under Apache.
fn run_user(args: &CheckArgs) -> Result<Account, String> {
    let mut who = match &args.user {
        Some(name) => accounts::user(name).ok_or_else(|| {
            format!("there is no user '{name}': give --user the account Apache runs the application as (its User directive).")
        })?,
        None if accounts::is_root() => accounts::default_run_user().ok_or(
            "cannot find the web server's account (www-data, apache, daemon or nobody): \
             give the user Apache runs the application as with --user.",
        )?,
        None => accounts::current().ok_or("cannot find the current user in the passwd database.")?,
    };
    if let Some(name) = &args.group {
        let gid = accounts::group(name).ok_or_else(|| {
            format!("there is no group '{name}': give --group the group Apache runs the application as (its Group directive).")
        })?;
        who.gid = gid;
        if !who.groups.contains(&gid) {
            who.groups.insert(0, gid);
        }
    }
    Ok(who)
}

/// Runs the checks in order, printing each, then the summary. Ok(exit status:
/// 0 without errors, 1 with); Err when the arguments cannot be used.
pub fn run(args: CheckArgs) -> Result<i32, String> {
    let (target, callable) = target::target_of(&args)?;
    let who = run_user(&args)?;
    let sub = !matches!(args.application_group.as_str(), "" | "%{GLOBAL}");
    let mut r = Report::default();
    if args.per_interpreter_gil && !sub {
        r.warning(
            "sub-interpreter: --per-interpreter-gil has no effect with application group %{GLOBAL}, \
             the main interpreter.",
            &[],
        );
    }

    // 1. The module, and the Python it was built for.
    let (module, want) = wsgi_module::module_step(&args, &mut r)?;

    // The application itself.
    let script_missing = matches!(&target, Target::Script(p) if !p.is_file());
    if let Target::Script(p) = &target {
        if script_missing {
            let why = if p.exists() {
                "is not a file"
            } else {
                "does not exist"
            };
            r.error(
                &format!("script: {} {why}.", p.display()),
                &[
                    "Give the path of the WSGI script file that defines the application (the one \
                   WSGIScriptAlias names), or `package.module:callable` for a module."
                        .into(),
                ],
            );
        }
    }

    // 2. Python.
    let python = python_env::python_step(&args, &want, module.as_deref(), &mut r);

    // 3. Permissions.
    let readable = permissions::permissions_step(&who, &target, &args, python.as_ref(), &mut r);

    // 4, 5. Loading.
    match &python {
        None => r.skipped("load: there is no Python to load the application with (see above)."),
        Some(_) if script_missing => r.skipped("load: there is no script to load (see above)."),
        Some(_) if !readable => r.skipped(&format!(
            "load: user '{}' cannot read the script or Python (see above).",
            who.name
        )),
        Some(python) => {
            let probe = Probe {
                python,
                target: &target,
                callable: &callable,
                group: &args.application_group,
                workdir: args.working_directory.as_deref().map(accounts::absolute),
                python_path: args
                    .python_path
                    .iter()
                    .map(|p| accounts::absolute(p))
                    .collect(),
                // Only root can switch users; otherwise the probe runs as this user.
                run_as: (accounts::is_root() && who.uid != 0).then_some(&who),
                timeout: Duration::from_secs(args.timeout),
            };
            load::load_steps(&probe, sub, args.per_interpreter_gil, &mut r);
        }
    }

    Ok(r.finish(&target.describe()))
}
