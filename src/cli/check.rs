//! `mod_wsgi_rs check`: loads a WSGI script in the configured Python and
//! reports what would stop it working under Apache: the module and its
//! Python, a missing or mismatched virtual environment, files Apache's user
//! cannot read, exceptions while loading (with their traceback), a missing
//! callable, and extension modules that refuse a sub-interpreter.
//!
//! Python runs as a subprocess with the probe `check.py`, which loads the
//! application the way the module does (when run as root, as the user
//! Apache runs the application as) and reports through a line protocol on
//! its stdout.
use crate::accounts::{self, Account};
use crate::locate;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The probe, and the module's own per-interpreter helpers (its `mod_wsgi`
/// module: the Python path and refused-extension logic are the module's).
const PROBE: &str = include_str!("check.py");
const HELPERS: &str = include_str!("../python/helpers.py");
/// `python -c BOOT`: reads the helpers and the probe from stdin, runs the probe.
const BOOT: &str = "import sys; HELPERS, SOURCE = sys.stdin.read().split('\\0', 1); \
                    exec(compile(SOURCE, '<mod_wsgi_rs check>', 'exec'))";

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

/// What is loaded: a script file, or a module imported from the Python path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Script(PathBuf),
    Module(String),
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Script(_) => "script",
            Target::Module(_) => "module",
        }
    }

    fn text(&self) -> String {
        match self {
            Target::Script(p) => p.display().to_string(),
            Target::Module(m) => m.clone(),
        }
    }

    /// mod_wsgi's module name for a script, `_mod_wsgi_<md5 of the path>`.
    fn module_name(&self) -> String {
        match self {
            Target::Script(p) => format!(
                "_mod_wsgi_{:x}",
                md5::compute(p.as_os_str().as_encoded_bytes())
            ),
            Target::Module(m) => m.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Script(p) => p.display().to_string(),
            Target::Module(m) => format!("module {m}"),
        }
    }
}

/// Whether `s` reads as `package.module[:callable]`.
fn is_entry_point(s: &str) -> bool {
    let ident = |p: &str| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    let (module, callable) = match s.split_once(':') {
        Some((m, c)) => (m, Some(c)),
        None => (s, None),
    };
    module.split('.').all(ident) && callable.is_none_or(|c| c.split('.').all(ident))
}

/// The target and the callable's name from SCRIPT, --application-type and
/// --callable-object.
fn target_of(args: &CheckArgs) -> Result<(Target, String), String> {
    let given = args.script.as_str();
    let kind = args.application_type.unwrap_or_else(|| {
        let looks_like_file = Path::new(given).exists()
            || given.contains('/')
            || given.ends_with(".wsgi")
            || given.ends_with(".py");
        if !looks_like_file && is_entry_point(given) {
            ApplicationType::Module
        } else {
            ApplicationType::Script
        }
    });
    let default = || {
        args.callable_object
            .clone()
            .unwrap_or_else(|| "application".into())
    };
    match kind {
        ApplicationType::Script => Ok((
            Target::Script(accounts::absolute(Path::new(given))),
            default(),
        )),
        ApplicationType::Module => {
            if !is_entry_point(given) {
                return Err(format!(
                    "'{given}' is not a module name: give `package.module` or \
                     `package.module:callable`, or a script file with --application-type script."
                ));
            }
            match given.split_once(':') {
                Some((m, c)) => {
                    if let Some(other) = args.callable_object.as_deref().filter(|o| *o != c) {
                        return Err(format!(
                            "'{given}' names the callable '{c}' but --callable-object says '{other}': \
                             give it once."
                        ));
                    }
                    Ok((Target::Module(m.into()), c.into()))
                }
                None => Ok((Target::Module(given.into()), default())),
            }
        }
    }
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

/// The report: one line per check, details indented, and the counts.
#[derive(Default)]
struct Report {
    errors: usize,
    warnings: usize,
}

impl Report {
    fn line(&mut self, status: &str, text: &str, details: &[String]) {
        match status {
            "error" => self.errors += 1,
            "warning" => self.warnings += 1,
            _ => {}
        }
        let mut out = format!("{status}: {text}\n");
        for d in details {
            for l in d.lines() {
                out.push_str("    ");
                out.push_str(l);
                out.push('\n');
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    fn ok(&mut self, text: &str) {
        self.line("ok", text, &[]);
    }

    fn error(&mut self, text: &str, details: &[String]) {
        self.line("error", text, details);
    }

    fn warning(&mut self, text: &str, details: &[String]) {
        self.line("warning", text, details);
    }

    fn skipped(&mut self, text: &str) {
        self.line("skipped", text, &[]);
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

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

/// The Python that loads the application.
struct Python {
    executable: PathBuf,
    /// "X.Y.Z"
    version: String,
    stdlib: PathBuf,
    /// Site-packages of a virtual environment.
    site_packages: Option<PathBuf>,
}

impl Python {
    fn minor(&self) -> &str {
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

/// Step 2: the Python of --python-home, or the module's. None when there is
/// no Python to load the application with (reported as an error).
fn python_step(
    args: &CheckArgs,
    want: &str,
    module: Option<&Path>,
    r: &mut Report,
) -> Option<Python> {
    let python = match &args.python_home {
        Some(home) => {
            let home = accounts::absolute(home);
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
            let cfg = std::fs::read_to_string(home.join("pyvenv.cfg"))
                .ok()
                .map(|t| parse_pyvenv_cfg(&t));
            if let Some(PyvenvCfg {
                version: Some(have),
                home: base,
            }) = &cfg
            {
                if have != want {
                    let base_python = base.as_ref().map(|b| format!("{b}/python{have}"));
                    r.error(
                        &format!(
                            "Python home: {shown} is a virtual environment for Python {have}, but the module \
                             was built for Python {want}: Apache would refuse to start with it."
                        ),
                        &[mismatch_advice(&home, true, want, have, base_python.as_deref())],
                    );
                    return None;
                }
            }
            match locate::python_in(&home) {
                Some(p) => p,
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
                    return None;
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
                    return None;
                }
            }
        }
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

/// A denial by accounts::can_read, "user 'U' cannot enter|read PATH (mode
/// ..., owner ...)": whether it is about entering a directory, the path, and
/// the parenthesised mode.
struct Denial<'a> {
    enter: bool,
    path: &'a str,
    mode: &'a str,
}

fn parse_denial(text: &str) -> Option<Denial<'_>> {
    let (enter, rest) = [(true, "cannot enter "), (false, "cannot read ")]
        .iter()
        .find_map(|(enter, v)| text.split_once(v).map(|(_, rest)| (*enter, rest)))?;
    let (path, mode) = rest.rsplit_once(" (mode ")?;
    Some(Denial {
        enter,
        path,
        mode: mode.trim_end_matches(')'),
    })
}

impl Denial<'_> {
    /// The shell command that lets others through.
    fn fix(&self) -> String {
        let bits = if self.enter {
            "o+x"
        } else if Path::new(self.path).is_dir() {
            "o+rx"
        } else {
            "o+r"
        };
        format!("chmod {bits} {}", self.path)
    }
}

/// Step 3: whether `who` can read what the application needs. Returns
/// whether the script (if a file) and Python itself are readable.
fn permissions_step(
    who: &Account,
    target: &Target,
    args: &CheckArgs,
    python: Option<&Python>,
    r: &mut Report,
) -> bool {
    let mut items: Vec<(String, PathBuf, bool)> = Vec::new();
    if let Target::Script(p) = target {
        items.push(("the script".into(), p.clone(), true));
    }
    for d in &args.python_path {
        items.push((
            "the Python path directory".into(),
            accounts::absolute(d),
            false,
        ));
    }
    if let Some(d) = &args.working_directory {
        items.push(("the working directory".into(), accounts::absolute(d), false));
    }
    if let Some(p) = python {
        if let Some(sp) = &p.site_packages {
            items.push((
                "the virtual environment's site-packages".into(),
                sp.clone(),
                true,
            ));
        }
        items.push(("Python's standard library".into(), p.stdlib.clone(), true));
    }
    let mut essential_ok = true;
    let mut denied = 0;
    for (what, path, essential) in &items {
        if !path.exists() {
            if what.starts_with("the Python path") || what.starts_with("the working") {
                r.warning(
                    &format!("permissions: {what} {} does not exist.", path.display()),
                    &[],
                );
            }
            continue;
        }
        if let Err(e) = accounts::can_read(who, path) {
            denied += 1;
            essential_ok &= !essential;
            let shown = path.display();
            let user = &who.name;
            let denial = parse_denial(&e);
            let text = match &denial {
                Some(d) if Path::new(d.path) == path.as_path() => {
                    format!("permissions: user '{user}' cannot read {what} {shown} (mode {}).", d.mode)
                }
                Some(d) => format!(
                    "permissions: user '{user}' cannot read {what} {shown}: it cannot {} {} (mode {}).",
                    if d.enter { "enter" } else { "read" },
                    d.path,
                    d.mode
                ),
                None => format!("permissions: {what} {shown}: {e}."),
            };
            let advice = match denial {
                Some(d) if Path::new(d.path).starts_with("/root") && what.starts_with("Python's") => format!(
                    "Apache runs the application as '{user}', and /root is root's alone: use a Python \
                     installed elsewhere (the system's, or a copy under /opt) and recreate the virtual \
                     environment with it."
                ),
                Some(d) if Path::new(d.path).starts_with("/root") => format!(
                    "Apache runs the application as '{user}', and /root is root's alone: move {what} \
                     out of /root."
                ),
                d => format!(
                    "Apache runs the application as '{user}'. Make {what} readable for that user{}, or \
                     give --user/--group the account Apache really uses.",
                    d.map_or(String::new(), |d| format!(" (e.g. `{}`)", d.fix()))
                ),
            };
            r.error(&text, &[advice]);
        }
    }
    if denied == 0 {
        let names: Vec<&str> = items
            .iter()
            .filter(|(_, p, _)| p.exists())
            .map(|(w, _, _)| w.as_str())
            .collect();
        if who.uid == 0 {
            r.warning(
                "permissions: checked for root, which reads everything; Apache does not run \
                 applications as root.",
                &[
                    "Give --user the account Apache runs the application as (its User directive)."
                        .into(),
                ],
            );
        } else {
            r.ok(&format!(
                "permissions: user '{}' can read {}.",
                who.name,
                join_words(&dedup(&names))
            ));
        }
    }
    essential_ok
}

/// The distinct names in `items`, in order, in the plural if repeated
/// ("the Python path directory" twice: "the Python path directories").
fn dedup(items: &[&str]) -> Vec<String> {
    let mut out: Vec<(&str, usize)> = Vec::new();
    for i in items {
        match out.iter_mut().find(|(name, _)| name == i) {
            Some((_, n)) => *n += 1,
            None => out.push((i, 1)),
        }
    }
    out.into_iter()
        .map(|(name, n)| match name.strip_suffix('y') {
            Some(stem) if n > 1 => format!("{stem}ies"),
            _ if n > 1 => format!("{name}s"),
            _ => name.to_string(),
        })
        .collect()
}

fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    match words {
        [] => "nothing".into(),
        [one] => one.as_ref().into(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", rest.join(", "), last.as_ref())
        }
    }
}

/// What a probe reported, in order, and how its process ended.
struct ProbeRun {
    records: Vec<(String, String)>,
    output: String,
    /// Why the probe did not finish, if it did not.
    failure: Option<String>,
}

impl ProbeRun {
    fn get(&self, key: &str) -> Option<&str> {
        self.records
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the probe's records: `key value` lines, `\n` and `\\` escaped.
fn parse_records(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let mut out = String::with_capacity(value.len());
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(other) => out.push(other),
                        None => out.push('\\'),
                    }
                } else {
                    out.push(c);
                }
            }
            (key.to_string(), out)
        })
        .collect()
}

fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string.
    let name = unsafe { libc::strsignal(sig) };
    if name.is_null() {
        format!("signal {sig}")
    } else {
        // SAFETY: non-null, NUL-terminated.
        let text = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
        format!("signal {sig} ({text})")
    }
}

/// Everything a probe needs to know.
struct Probe<'a> {
    python: &'a Python,
    target: &'a Target,
    callable: &'a str,
    group: &'a str,
    workdir: Option<PathBuf>,
    python_path: Vec<PathBuf>,
    /// Switch to this account first (when root).
    run_as: Option<&'a Account>,
    timeout: Duration,
}

impl Probe<'_> {
    fn run(&self, mode: &str) -> Result<ProbeRun, String> {
        let mut cmd = Command::new(&self.python.executable);
        cmd.args([
            "-s",
            "-B",
            "-X",
            "faulthandler",
            "-c",
            BOOT,
            mode,
            self.target.kind(),
        ])
        .arg(self.target.text())
        .arg(self.target.module_name())
        .arg(self.callable)
        .arg(self.group)
        .arg(self.workdir.as_deref().unwrap_or(Path::new("")))
        .args(&self.python_path)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PYTHON") {
                cmd.env_remove(k);
            }
        }
        if let Some(who) = self.run_as {
            let (uid, gid, groups) = (who.uid, who.gid, who.groups.clone());
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.python.executable.display()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = format!("{HELPERS}\0{PROBE}");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        // The pipes are read into shared buffers, so that what arrived is
        // there even if a process the application started keeps them open.
        let reader = |mut pipe: Box<dyn Read + Send>| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let eof = Arc::new(AtomicBool::new(false));
            let (b, e) = (buf.clone(), eof.clone());
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    b.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
                e.store(true, Ordering::Release);
            });
            (buf, eof)
        };
        let out = reader(Box::new(child.stdout.take().expect("piped stdout")));
        let err = reader(Box::new(child.stderr.take().expect("piped stderr")));
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("cannot wait for Python: {e}")),
            }
        };
        let _ = writer.join();
        let drained = Instant::now() + Duration::from_secs(1);
        while !(out.1.load(Ordering::Acquire) && err.1.load(Ordering::Acquire))
            && Instant::now() < drained
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = |buf: &Mutex<Vec<u8>>| {
            String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        };
        let records = parse_records(&text(&out.0));
        let output = text(&err.0);
        let finished = records.iter().any(|(k, _)| k == "done");
        let failure = match status {
            None => Some(format!(
                "it did not finish within {} seconds (--timeout)",
                self.timeout.as_secs()
            )),
            Some(_) if finished => None,
            Some(s) => Some(match (s.code(), s.signal()) {
                (_, Some(sig)) => format!("Python was killed by {}", signal_name(sig)),
                (Some(code), _) => format!("Python exited with status {code}"),
                _ => "Python ended abnormally".into(),
            }),
        };
        Ok(ProbeRun {
            records,
            output,
            failure,
        })
    }
}

/// The details of a failed load: traceback, Python path for import errors,
/// and the application's output.
fn failure_details(run: &ProbeRun, prefix: &str) -> Vec<String> {
    let mut details = Vec::new();
    if let Some(tb) = run.get(&format!("{prefix}traceback")) {
        details.push(tb.to_string());
    } else if let Some(e) = run.get(&format!("{prefix}exception")) {
        details.push(e.to_string());
    }
    if let Some(path) = run.get(&format!("{prefix}sys_path")) {
        details.push("The Python path (sys.path) was:".into());
        details.extend(path.lines().map(|l| format!("  {l}")));
    }
    output_details(run, &mut details);
    details
}

fn output_details(run: &ProbeRun, details: &mut Vec<String>) {
    let output = run.output.trim_end();
    if !output.is_empty() {
        details.push("Output while loading:".into());
        details.extend(output.lines().map(|l| format!("  {l}")));
    }
}

/// Step 4: load in the main interpreter, then the callable. Returns whether
/// the application loaded.
fn main_load_step(probe: &Probe, r: &mut Report) -> bool {
    let what = probe.target.describe();
    let run = match probe.run("main") {
        Ok(run) => run,
        Err(e) => {
            r.error(&format!("load: {e}."), &[]);
            return false;
        }
    };
    if let Some(why) = &run.failure {
        let mut details = Vec::new();
        output_details(&run, &mut details);
        r.error(&format!("load: loading {what} failed: {why}."), &details);
        return false;
    }
    if run.get("load") != Some("ok") {
        let exc = run.get("exception").unwrap_or("an exception");
        let mut details = failure_details(&run, "");
        if exc.starts_with("ModuleNotFoundError") || exc.starts_with("ImportError") {
            details.insert(
                details.len().min(1),
                "Install the missing package into the Python home (or the module's Python), or add the \
                 directory that holds it with --python-path (WSGIPythonPath, python-path=)."
                    .into(),
            );
        }
        r.error(&format!("load: loading {what} raised {exc}"), &details);
        return false;
    }
    let mut details = Vec::new();
    output_details(&run, &mut details);
    if details.is_empty() {
        r.ok(&format!("load: {what} loads in the main interpreter."));
    } else {
        r.line(
            "ok",
            &format!("load: {what} loads in the main interpreter."),
            &details,
        );
    }
    let name = probe.callable;
    let kind = run.get("type").unwrap_or("object");
    match run.get("callable") {
        Some("ok") => match run.get("signature") {
            Some(sig) => r.warning(
                &format!(
                    "callable: '{name}' is a {kind} that cannot be called with (environ, start_response): \
                     {sig}."
                ),
                &["A WSGI application takes two arguments. If this is a factory (such as \
                   get_wsgi_application or create_app), assign what it returns: \
                   `application = create_app()`."
                    .into()],
            ),
            None => r.ok(&format!("callable: '{name}' is a {kind}.")),
        },
        Some("not-callable") => r.error(
            &format!("callable: '{name}' in {what} is a {kind}, not a callable."),
            &["Assign the WSGI application to it, or name the right one with --callable-object \
               (WSGICallableObject)."
                .into()],
        ),
        _ => {
            let candidates = run.get("candidates").unwrap_or("");
            let hint = match candidates.split(", ").next() {
                Some(first) if !first.is_empty() => format!(
                    "It defines these callables: {candidates}. Name the application with \
                     --callable-object {first} (WSGICallableObject {first}), or assign it to '{name}'."
                ),
                _ => format!("It defines no callables: assign the WSGI application to '{name}'."),
            };
            r.error(&format!("callable: {what} has no '{name}'."), &[hint]);
        }
    }
    true
}

/// Step 5: load in a sub-interpreter, then in a second one of the same process.
fn sub_step(probe: &Probe, own_gil: bool, r: &mut Report) {
    let what = probe.target.describe();
    let group = probe.group;
    let gil = if own_gil {
        " with its own GIL (--per-interpreter-gil)"
    } else {
        ""
    };
    let advice = "Use --application-group %{GLOBAL} (WSGIApplicationGroup %{GLOBAL}, or \
                  application-group=%{GLOBAL}) so that the application runs in the main interpreter, \
                  with one daemon process group per application if there are several.";
    let run = match probe.run(if own_gil { "sub-own-gil" } else { "sub" }) {
        Ok(run) => run,
        Err(e) => {
            r.error(&format!("sub-interpreter: {e}."), &[]);
            return;
        }
    };
    if let Some(why) = &run.failure {
        let mut details = Vec::new();
        output_details(&run, &mut details);
        r.error(
            &format!("sub-interpreter: loading {what} in a sub-interpreter{gil} failed: {why}."),
            &details,
        );
        return;
    }
    if let Some(why) = run.get("unsupported") {
        r.warning(&format!("sub-interpreter: not checked: {why}."), &[]);
        return;
    }
    let refused = |prefix: &str| {
        run.get(&format!("{prefix}refused")).map(|m| {
            (
                m.to_string(),
                run.get(&format!("{prefix}reason"))
                    .unwrap_or("")
                    .to_string(),
            )
        })
    };
    if run.get("first.load") != Some("ok") {
        if let Some((module, reason)) = refused("first.") {
            let mut details = vec![advice.to_string()];
            details.extend(failure_details(&run, "first."));
            r.error(
                &format!(
                    "sub-interpreter: extension module '{module}' cannot be loaded in the sub-interpreter{gil} \
                     of application group '{group}': {reason}."
                ),
                &details,
            );
        } else {
            let exc = run.get("first.exception").unwrap_or("an exception");
            let mut details = failure_details(&run, "first.");
            details.push(format!("It loads in the main interpreter. {advice}"));
            r.error(
                &format!(
                    "sub-interpreter: loading {what} in the sub-interpreter{gil} of application group \
                     '{group}' raised {}",
                    exc.lines().last().unwrap_or(exc)
                ),
                &details,
            );
        }
        return;
    }
    if run.get("second.load") != Some("ok") {
        if let Some((module, reason)) = refused("second.") {
            r.error(
                &format!(
                    "sub-interpreter: extension module '{module}' loads in one interpreter per process only: \
                     {reason}."
                ),
                &[
                    format!(
                        "{what} loaded in a sub-interpreter, but not in a second one of the same process, so \
                         it fails in application group '{group}' whenever another group of that process \
                         (or %{{GLOBAL}}) imported '{module}' first."
                    ),
                    advice.to_string(),
                ],
            );
        } else {
            let exc = run.get("second.exception").unwrap_or("an exception");
            let mut details = failure_details(&run, "second.");
            details.push(format!(
                "It may fail when another application group of the same process loads it too. {advice}"
            ));
            r.warning(
                &format!(
                    "sub-interpreter: {what} loads in a sub-interpreter, but loading it again in a second one \
                     raised {}",
                    exc.lines().last().unwrap_or(exc)
                ),
                &details,
            );
        }
        return;
    }
    r.ok(&format!(
        "sub-interpreter: {what} loads in a sub-interpreter{gil} (application group '{group}'), and again \
         in a second one of the same process."
    ));
}

pub fn run(args: CheckArgs) -> Result<i32, String> {
    let (target, callable) = target_of(&args)?;
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
    let (module, want) = match locate::wsgi_module(
        args.module_path.as_deref(),
        modules_dir.as_deref(),
    ) {
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
    };

    // The application itself.
    if let Target::Script(p) = &target {
        if !p.is_file() {
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
    let python = python_step(&args, &want, module.as_deref(), &mut r);

    // 3. Permissions.
    let readable = permissions_step(&who, &target, &args, python.as_ref(), &mut r);

    // 4, 5. Loading.
    let script_missing = matches!(&target, Target::Script(p) if !p.is_file());
    match &python {
        None => r.skipped("load: there is no Python to load the application with (see above)."),
        Some(_) if script_missing => r.skipped("load: there is no script to load (see above)."),
        Some(_) if !readable => r.skipped(&format!(
            "load: user '{}' cannot read the script or Python (see above).",
            who.name
        )),
        Some(python) => {
            let run_as = (accounts::is_root() && who.uid != 0).then_some(&who);
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
                run_as,
                timeout: Duration::from_secs(args.timeout),
            };
            let loaded = main_load_step(&probe, &mut r);
            let own_gil = args.per_interpreter_gil
                && {
                    let new_enough = python
                        .minor()
                        .split('.')
                        .nth(1)
                        .and_then(|m| m.parse::<u32>().ok())
                        >= Some(12);
                    if !new_enough && sub {
                        r.warning(
                        &format!(
                            "sub-interpreter: --per-interpreter-gil needs Python 3.12 or later; Python {} \
                             sub-interpreters share the GIL (WSGIPerInterpreterGIL On is ignored).",
                            python.minor()
                        ),
                        &[],
                    );
                    }
                    new_enough
                };
            if !sub {
            } else if loaded {
                sub_step(&probe, own_gil, &mut r);
            } else {
                r.skipped("sub-interpreter: the application does not load in the main interpreter either.");
            }
        }
    }

    if r.errors == 0 {
        let warnings = if r.warnings > 0 {
            format!(" ({})", plural(r.warnings, "warning"))
        } else {
            String::new()
        };
        println!(
            "No errors{warnings}: {} is ready for Apache.",
            target.describe()
        );
        Ok(0)
    } else {
        println!(
            "{}, {}: fix the errors before deploying {}.",
            plural(r.errors, "error"),
            plural(r.warnings, "warning"),
            target.describe()
        );
        Ok(1)
    }
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
    fn parses_probe_records() {
        let r = parse_records("load failed\ntraceback line 1\\nline 2 \\\\n\ndone \nempty\n");
        assert_eq!(
            r,
            [
                ("load".to_string(), "failed".to_string()),
                ("traceback".into(), "line 1\nline 2 \\n".into()),
                ("done".into(), "".into()),
                ("empty".into(), "".into()),
            ]
        );
    }

    #[test]
    fn tells_entry_points_from_files() {
        assert!(is_entry_point("shop.wsgi:application"));
        assert!(is_entry_point("shop"));
        assert!(is_entry_point("pkg.mod:make.app"));
        assert!(!is_entry_point("app.wsgi/x"));
        assert!(!is_entry_point("1pkg.mod"));
        assert!(!is_entry_point("pkg..mod"));
        assert!(!is_entry_point("pkg.mod:"));
        assert!(!is_entry_point(""));
    }

    fn args(script: &str, extra: &[&str]) -> CheckArgs {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            check: CheckArgs,
        }
        let argv: Vec<&str> = ["check", script]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let m = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(argv)
            .unwrap();
        Cli::from_arg_matches(&m).unwrap().check
    }

    #[test]
    fn chooses_the_target() {
        let (t, c) = target_of(&args("/srv/app.wsgi", &[])).unwrap();
        assert_eq!(
            (t, c.as_str()),
            (Target::Script("/srv/app.wsgi".into()), "application")
        );
        let (t, c) = target_of(&args("shop.wsgi:app", &[])).unwrap();
        assert_eq!((t, c.as_str()), (Target::Module("shop.wsgi".into()), "app"));
        let (t, c) = target_of(&args("shop", &["--callable-object", "make"])).unwrap();
        assert_eq!((t, c.as_str()), (Target::Module("shop".into()), "make"));
        let (t, _) = target_of(&args("app.wsgi", &[])).unwrap();
        assert!(matches!(t, Target::Script(p) if p.is_absolute() && p.ends_with("app.wsgi")));
        let err = target_of(&args("shop:app", &["--callable-object", "other"])).unwrap_err();
        assert!(err.contains("give it once"), "{err}");
        let err = target_of(&args("a/b.py", &["--application-type", "module"])).unwrap_err();
        assert!(err.contains("not a module name"), "{err}");
    }

    #[test]
    fn names_the_script_module_as_mod_wsgi_does() {
        let t = Target::Script("/srv/app.wsgi".into());
        assert_eq!(
            t.module_name(),
            format!("_mod_wsgi_{:x}", md5::compute(b"/srv/app.wsgi"))
        );
    }

    #[test]
    fn reads_denials() {
        let d = parse_denial(
            "user 'www-data' cannot read /nonexistent/app.wsgi (mode 0600, owner 0:0)",
        )
        .unwrap();
        assert_eq!(
            (d.enter, d.path, d.mode),
            (false, "/nonexistent/app.wsgi", "0600, owner 0:0")
        );
        assert_eq!(d.fix(), "chmod o+r /nonexistent/app.wsgi");
        let d = parse_denial("user 'www-data' cannot enter /root (mode 0700, owner 0:0)").unwrap();
        assert_eq!((d.enter, d.fix().as_str()), (true, "chmod o+x /root"));
        let d = parse_denial("user 'www-data' cannot read /tmp (mode 1777, owner 0:0)").unwrap();
        assert_eq!(d.fix(), "chmod o+rx /tmp");
        assert!(parse_denial("/x: No such file").is_none());
    }

    /// The denial's wording is accounts::can_read's: read it from there.
    #[test]
    fn reads_the_denials_of_can_read() {
        let nobody = accounts::user("nobody").expect("nobody account");
        if let Err(e) = accounts::can_read(&nobody, Path::new("/root/.")) {
            let d = parse_denial(&e).unwrap_or_else(|| panic!("unparsed: {e}"));
            assert!(
                d.path.starts_with("/root") && d.mode.starts_with('0'),
                "{e}"
            );
        }
    }

    #[test]
    fn minor_versions() {
        assert_eq!(minor_of("3.11.2"), "3.11");
        assert_eq!(minor_of("3.9"), "3.9");
    }

    #[test]
    fn lists_in_words() {
        assert_eq!(join_words(&["a"]), "a");
        assert_eq!(join_words(&["a", "b", "c"]), "a, b and c");
        let names = dedup(&[
            "the script",
            "the path directory",
            "the path directory",
            "x",
        ]);
        assert_eq!(names, ["the script", "the path directories", "x"]);
    }
}
