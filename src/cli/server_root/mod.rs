//! From the options to a server root on disk: resolves and checks every
//! option against this machine (Apache, the module, the users, the files),
//! then writes httpd.conf, the `apachectl` script and the generated Python
//! files into the server root.
use crate::accounts::{self, absolute};
use crate::httpd_conf::{Daemon, Https, Mount, Plan};
use crate::locate::{self, Apache};
use crate::options::{ApplicationType, Mpm, ServerArgs};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A resolved plan, with what `serve` needs besides the configuration.
pub struct Server {
    pub plan: Plan,
    pub httpd: PathBuf,
    /// The text written to the server root's files, by name.
    files: Vec<(String, String, u32)>,
}

/// What the entry point names.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Script(PathBuf),
    Module { module: String, callable: String },
    Paste(PathBuf),
    Placeholder,
}

fn is_module_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn entry(args: &ServerArgs) -> Result<Entry, String> {
    let Some(given) = args.script.as_deref().or(args.entry_point.as_deref()) else {
        return Ok(Entry::Placeholder);
    };
    let as_module = |spec: &str| -> Result<Entry, String> {
        let (module, callable) = match spec.split_once(':') {
            Some((m, c)) => (m, c),
            None => (spec, args.callable_object.as_str()),
        };
        if !is_module_name(module) || !is_module_name(callable) || callable.contains('.') {
            return Err(format!(
                "'{spec}' is not a file, nor a module name such as `package.module` or \
                 `package.module:callable`. Give the path of a WSGI script, or a module that \
                 Python can import from --python-path or --working-directory."
            ));
        }
        Ok(Entry::Module {
            module: module.into(),
            callable: callable.into(),
        })
    };
    let file = || -> Result<PathBuf, String> {
        let p = absolute(Path::new(given));
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "the WSGI script {} does not exist. Give the path of the file that defines `{}`.",
                p.display(),
                args.callable_object
            ))
        }
    };
    match args.application_type {
        Some(ApplicationType::Script) => Ok(Entry::Script(file()?)),
        Some(ApplicationType::Paste) => Ok(Entry::Paste(file()?)),
        Some(ApplicationType::Module) => as_module(given),
        None if Path::new(given).is_file() => Ok(if given.ends_with(".ini") {
            Entry::Paste(file()?)
        } else {
            Entry::Script(file()?)
        }),
        None if given.contains('/') || given.ends_with(".wsgi") || given.ends_with(".py") => {
            file().map(Entry::Script)
        }
        None => as_module(given),
    }
}

/// The user's locale for the daemon, with C/POSIX upgraded to UTF-8 so that
/// Python's file system encoding is UTF-8.
fn locale() -> String {
    let lang = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_default();
    if lang.is_empty() || lang == "C" || lang == "POSIX" {
        "C.UTF-8".into()
    } else {
        lang
    }
}

/// Who Apache's children run as: `(User, Group)` lines when root.
fn run_as(args: &ServerArgs) -> Result<Option<(String, String)>, String> {
    if !accounts::is_root() {
        if let Some(u) = &args.user {
            let me = accounts::current().map(|a| a.name).unwrap_or_default();
            if *u != me {
                return Err(format!(
                    "--user {u} needs root: Apache can only switch to another user when it is \
                     started as root. Leave out --user to run as {me}."
                ));
            }
        }
        return Ok(None);
    }
    let user = match &args.user {
        Some(u) => accounts::user(u).ok_or_else(|| {
            format!("there is no user '{u}' on this machine; give --user an existing account.")
        })?,
        None => accounts::default_run_user().ok_or(
            "running as root, and none of the usual web server accounts (www-data, apache, \
             daemon, nobody) exists: name one with --user.",
        )?,
    };
    if user.uid == 0 {
        return Err(
            "Apache refuses to run its children as root: give --user a normal account.".into(),
        );
    }
    let group = match &args.group {
        Some(g) => {
            accounts::group(g)
                .ok_or_else(|| format!("there is no group '{g}' on this machine."))?;
            g.clone()
        }
        None => format!("#{}", user.gid),
    };
    Ok(Some((user.name, group)))
}

fn pick_mpm(args: &ServerArgs, apache: &Apache) -> Result<Mpm, String> {
    let name = |m: Mpm| match m {
        Mpm::Event => "mpm_event",
        Mpm::Worker => "mpm_worker",
        Mpm::Prefork => "mpm_prefork",
    };
    if let Some(m) = args.server_mpm {
        return apache.module(name(m)).map(|_| m).ok_or_else(|| {
            format!(
                "Apache has no {} module in {}.",
                name(m),
                apache.modules_dir.display()
            )
        });
    }
    [Mpm::Event, Mpm::Worker, Mpm::Prefork]
        .into_iter()
        .find(|&m| apache.module(name(m)).is_some())
        .ok_or_else(|| format!("no Apache MPM module in {}.", apache.modules_dir.display()))
}

/// The daemon group's timeouts and recycling, as WSGIDaemonProcess options.
fn daemon_options(args: &ServerArgs) -> Vec<(&'static str, String)> {
    let mut options = vec![
        ("request-timeout", args.request_timeout.to_string()),
        ("queue-timeout", args.queue_timeout.to_string()),
        ("startup-timeout", args.startup_timeout.to_string()),
        ("socket-timeout", args.socket_timeout.to_string()),
        ("connect-timeout", args.connect_timeout.to_string()),
        ("graceful-timeout", args.graceful_timeout.to_string()),
        ("shutdown-timeout", args.shutdown_timeout.to_string()),
        ("deadlock-timeout", args.deadlock_timeout.to_string()),
    ];
    for (key, value) in [
        ("inactivity-timeout", args.inactivity_timeout as u64),
        ("restart-interval", args.restart_interval as u64),
        ("maximum-requests", args.maximum_requests),
    ] {
        if value > 0 {
            options.push((key, value.to_string()));
        }
    }
    options
}

/// The default server root: /tmp/mod_wsgi_rs-HOST:PORT:UID, as mod_wsgi-express.
fn default_server_root(args: &ServerArgs) -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let host = args.host.as_deref().unwrap_or("localhost");
    PathBuf::from(format!("/tmp/mod_wsgi_rs-{host}:{}:{uid}", args.port))
}

/// Creates the server root, or reuses one this user owns: a directory in /tmp
/// that someone else made (or a symlink) could redirect our files.
fn make_root(root: &Path) -> Result<(), String> {
    match fs::symlink_metadata(root) {
        Ok(meta) => {
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if !meta.is_dir() || meta.uid() != me {
                return Err(format!(
                    "the server root {} exists and is not a directory owned by you; remove it \
                     or choose another with --server-root.",
                    root.display()
                ));
            }
        }
        Err(_) => {
            fs::create_dir_all(root)
                .map_err(|e| format!("cannot create the server root {}: {e}", root.display()))?;
            // Apache's user reaches the daemons' sockets through it.
            fs::set_permissions(root, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot set the permissions of {}: {e}", root.display()))?;
        }
    }
    Ok(())
}

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

const PLACEHOLDER: &str = include_str!("placeholder.wsgi");
const RELOADER: &str = include_str!("reloader.py");

impl Server {
    /// Resolves `args` against this machine; writes nothing.
    pub fn resolve(args: &ServerArgs) -> Result<Server, String> {
        let apache = Apache::find(
            args.httpd_executable.as_deref(),
            args.modules_directory.as_deref(),
        )?;
        let module = locate::wsgi_module(args.module_path.as_deref(), Some(&apache.modules_dir))?;
        let mpm = pick_mpm(args, &apache)?;
        let module_version = locate::module_python_version(&module)
            .unwrap_or_else(|| locate::PYTHON_VERSION.to_string());
        let server_root = absolute(
            &args
                .server_root
                .clone()
                .unwrap_or_else(|| default_server_root(args)),
        );
        let working_directory = absolute(
            &args
                .working_directory
                .clone()
                .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| "/".into())),
        );
        if !working_directory.is_dir() {
            return Err(format!(
                "the working directory {} does not exist.",
                working_directory.display()
            ));
        }
        let python_home = match &args.python_home {
            Some(h) => {
                let h = absolute(h);
                crate::check::python_env::check_home_matches(&h, &module_version)?;
                if locate::python_in(&h).is_none() {
                    return Err(format!(
                        "the Python home {} has no bin/python3: create the virtual environment \
                         with `python{} -m venv {}`, or fix --python-home.",
                        h.display(),
                        locate::PYTHON_VERSION,
                        h.display()
                    ));
                }
                Some(h)
            }
            None => None,
        };
        let mut python_path: Vec<PathBuf> = args.python_path.iter().map(|p| absolute(p)).collect();
        python_path.push(working_directory.clone());

        let mut files = Vec::new();
        let (script, callable) = match entry(args)? {
            Entry::Script(p) => (p, args.callable_object.clone()),
            Entry::Module { module, callable } => {
                files.push((
                    "handler.wsgi".into(),
                    format!(
                        "# Generated by mod_wsgi_rs: the entry point {module}:{callable}.\n\
                         import importlib\n\n\
                         application = getattr(importlib.import_module({}), {})\n",
                        py_str(&module),
                        py_str(&callable)
                    ),
                    0o644,
                ));
                (server_root.join("handler.wsgi"), "application".into())
            }
            Entry::Paste(ini) => {
                files.push((
                    "handler.wsgi".into(),
                    format!(
                        "# Generated by mod_wsgi_rs: the Paste Deploy application of {ini}.\n\
                         from paste.deploy import loadapp\n\n\
                         application = loadapp({})\n",
                        py_str(&format!("config:{}", ini.display())),
                        ini = ini.display()
                    ),
                    0o644,
                ));
                (server_root.join("handler.wsgi"), "application".into())
            }
            Entry::Placeholder => {
                files.push(("default.wsgi".into(), PLACEHOLDER.into(), 0o644));
                (server_root.join("default.wsgi"), "application".into())
            }
        };
        let mut import_scripts = Vec::new();
        if args.reload_on_changes {
            files.push(("reloader.py".into(), RELOADER.into(), 0o644));
            import_scripts.push(server_root.join("reloader.py"));
        }
        let mount_url = if args.mount_point.starts_with('/') {
            args.mount_point.trim_end_matches('/').to_string()
        } else {
            return Err(format!(
                "--mount-point {} must start with '/'.",
                args.mount_point
            ));
        };
        let mount_url = if mount_url.is_empty() {
            "/".into()
        } else {
            mount_url
        };

        let https = match (
            args.https_port,
            &args.ssl_certificate_file,
            &args.ssl_certificate_key_file,
        ) {
            (None, ..) => None,
            (Some(port), Some(cert), Some(key)) => {
                for f in [cert, key] {
                    if !f.is_file() {
                        return Err(format!("the TLS file {} does not exist.", f.display()));
                    }
                }
                if apache.module("ssl").is_none() {
                    return Err(format!(
                        "--https-port needs Apache's mod_ssl, which is not in {}.",
                        apache.modules_dir.display()
                    ));
                }
                Some(Https {
                    port,
                    certificate: absolute(cert),
                    key: absolute(key),
                })
            }
            (Some(_), ..) => {
                return Err("--https-port needs both --ssl-certificate-file and \
                            --ssl-certificate-key-file."
                    .into())
            }
        };
        if https.as_ref().is_some_and(|h| h.port == args.port) {
            return Err("--https-port must differ from --port.".into());
        }

        let mut url_aliases = Vec::new();
        for pair in args.url_alias.chunks(2) {
            let (url, target) = (&pair[0], absolute(Path::new(&pair[1])));
            if !url.starts_with('/') {
                return Err(format!(
                    "--url-alias {url} {}: the URL must start with '/'.",
                    pair[1]
                ));
            }
            if !target.exists() {
                return Err(format!(
                    "--url-alias {url} {}: {} does not exist.",
                    pair[1],
                    target.display()
                ));
            }
            url_aliases.push((url.clone(), target));
        }
        let document_root = absolute(
            &args
                .document_root
                .clone()
                .unwrap_or_else(|| server_root.join("htdocs")),
        );

        let run_as = run_as(args)?;
        let capacity = args.processes * args.threads;
        let embedded = args.embedded_mode;
        let max_clients = args.max_clients.unwrap_or(if embedded {
            capacity
        } else {
            10 + 10u32.max((capacity * 3).div_ceil(2))
        });
        if embedded && mpm == Mpm::Prefork && args.threads > 1 {
            eprintln!(
                "mod_wsgi_rs: note: prefork runs one request per process; --threads {} is ignored.",
                args.threads
            );
        }
        let name = args.process_group.clone().unwrap_or_else(|| {
            format!(
                "{}:{}",
                args.host.as_deref().unwrap_or("localhost"),
                args.port
            )
        });
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let daemon = (!embedded).then(|| Daemon {
            display_name: format!("(wsgi:{name}:{uid})"),
            name,
            home: working_directory.clone(),
            lang: locale(),
            options: daemon_options(args),
        });
        let mut modules: Vec<String> = ["unixd", "authz_core", "mime", "dir", "alias", "rewrite"]
            .iter()
            .map(|m| m.to_string())
            .collect();
        if args.access_log {
            modules.push("log_config".into());
        }
        if !args.setenv.is_empty() || !args.passenv.is_empty() {
            modules.push("env".into());
        }
        if args.compress_responses {
            modules.extend(["filter".into(), "deflate".into()]);
        }
        for name in &args.passenv {
            if std::env::var_os(name).is_none() {
                return Err(format!(
                    "--passenv {name}: there is no environment variable {name} to pass on."
                ));
            }
        }
        let mut includes = Vec::new();
        for f in &args.include_file {
            if !f.is_file() {
                return Err(format!("--include-file {}: no such file.", f.display()));
            }
            includes.push(absolute(f));
        }
        if https.is_some() {
            modules.extend(["socache_shmcb".into(), "ssl".into()]);
        }
        modules.retain(|m| apache.module(m).is_some());
        let plan = Plan {
            server_root,
            modules_dir: apache.modules_dir.clone(),
            module,
            mpm,
            modules,
            host: args.host.clone(),
            port: args.port,
            https,
            run_as,
            log_to_terminal: args.log_to_terminal,
            access_log: args.access_log,
            log_level: args.log_level.clone(),
            mime_types: Some(PathBuf::from("/etc/mime.types")).filter(|p| p.exists()),
            document_root,
            url_aliases,
            mount: Mount {
                url: mount_url,
                script,
                callable,
            },
            daemon,
            python_home,
            python_path,
            processes: args.processes,
            threads: args.threads,
            max_clients,
            socket_timeout: args.socket_timeout,
            import_scripts,
            application_group: args.application_group.clone(),
            server_name: args.server_name.clone(),
            set_env: args
                .setenv
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
            pass_env: args.passenv.clone(),
            directory_index: args.directory_index.clone(),
            compress: args.compress_responses,
            limit_request_body: args.limit_request_body,
            keep_alive_timeout: args.keep_alive_timeout,
            includes,
        };
        files.push(("httpd.conf".into(), plan.render(), 0o644));
        files.push((
            "apachectl".into(),
            apachectl(&apache.httpd, &plan.server_root),
            0o755,
        ));
        Ok(Server {
            plan,
            httpd: apache.httpd,
            files,
        })
    }

    /// Writes the server root; checks that Apache's user can read the app.
    pub fn write(&self) -> Result<(), String> {
        let root = &self.plan.server_root;
        make_root(root)?;
        let htdocs = root.join("htdocs");
        if self.plan.document_root == htdocs && !htdocs.exists() {
            fs::create_dir(&htdocs)
                .map_err(|e| format!("cannot create {}: {e}", htdocs.display()))?;
        }
        for (name, text, mode) in &self.files {
            let p = root.join(name);
            fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("cannot set the permissions of {}: {e}", p.display()))?;
        }
        if let Some((user, _)) = &self.plan.run_as {
            let who = accounts::user(user).ok_or_else(|| format!("no user '{user}'"))?;
            let mut needed = vec![
                self.plan.server_root.clone(),
                self.plan.mount.script.clone(),
                self.plan.document_root.clone(),
            ];
            needed.extend(self.plan.url_aliases.iter().map(|(_, p)| p.clone()));
            needed.extend(self.plan.python_home.clone());
            for p in needed {
                accounts::can_read(&who, &p).map_err(|why| {
                    format!(
                        "{why}. Apache runs the application as '{user}': make the files \
                         readable by it (e.g. chmod o+rX), move them, or choose the account \
                         with --user."
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The running configuration's file.
    pub fn conf(&self) -> PathBuf {
        self.plan.server_root.join("httpd.conf")
    }
}

/// `apachectl` for this server root: start|stop|restart|graceful|graceful-stop|configtest.
fn apachectl(httpd: &Path, root: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Generated by mod_wsgi_rs setup-server: controls the Apache of this server root.\n\
         # Usage: apachectl start|stop|restart|graceful|graceful-stop|configtest [httpd options]\n\
         # Under systemd (Type=simple): apachectl start -DFOREGROUND\n\
         HTTPD='{httpd}'\n\
         CONF='{conf}'\n\
         cmd=${{1:-}}\n\
         [ $# -gt 0 ] && shift\n\
         case \"$cmd\" in\n\
         start|stop|restart|graceful|graceful-stop) exec \"$HTTPD\" -f \"$CONF\" -k \"$cmd\" \"$@\" ;;\n\
         configtest) exec \"$HTTPD\" -f \"$CONF\" -t \"$@\" ;;\n\
         *) echo \"usage: $0 start|stop|restart|graceful|graceful-stop|configtest [httpd options]\" >&2; exit 2 ;;\n\
         esac\n",
        httpd = httpd.display().to_string().replace('\'', "'\\''"),
        conf = root
            .join("httpd.conf")
            .display()
            .to_string()
            .replace('\'', "'\\''"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn args(argv: &[&str]) -> ServerArgs {
        T::parse_from(std::iter::once("x").chain(argv.iter().copied())).args
    }

    #[test]
    fn entry_points() {
        assert_eq!(entry(&args(&[])).unwrap(), Entry::Placeholder);
        assert_eq!(
            entry(&args(&["myapp.wsgi_mod:app"])).unwrap(),
            Entry::Module {
                module: "myapp.wsgi_mod".into(),
                callable: "app".into()
            }
        );
        assert_eq!(
            entry(&args(&[
                "--entry-point",
                "pkg.mod",
                "--callable-object",
                "make"
            ]))
            .unwrap(),
            Entry::Module {
                module: "pkg.mod".into(),
                callable: "make".into()
            }
        );
        let err = entry(&args(&["./missing.wsgi"])).unwrap_err();
        assert!(err.contains("missing.wsgi does not exist"), "{err}");
        let err = entry(&args(&["not a module"])).unwrap_err();
        assert!(err.contains("not a file, nor a module name"), "{err}");
        assert!(is_module_name("_a.b1.c"));
        assert!(!is_module_name("1a") && !is_module_name("a..b") && !is_module_name(""));
    }
}
