//! From the options to a server root on disk: resolves and checks every
//! option against this machine (Apache, the module, the users, the files),
//! then writes httpd.conf, the `apachectl` script and the generated Python
//! files into the server root.
//!
//! Each step of [`Server::resolve`] lives in the module of its concern; the
//! steps run in a fixed order, so that of several mistakes the same one is
//! reported first.
mod apachectl;
mod entry;
mod https;
mod machine;
mod modules;
mod processes;
mod python;
mod urls;

use crate::accounts::{self, absolute};
use crate::httpd_conf::{Mount, Plan};
use crate::locate::{self, Apache};
use crate::options::ServerArgs;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A resolved plan, with what `serve` needs besides the configuration.
pub struct Server {
    pub plan: Plan,
    pub httpd: PathBuf,
    /// The files to write into the server root, in order.
    files: Vec<File>,
}

/// A file of the server root: its name there, its text and its mode.
struct File {
    name: &'static str,
    text: String,
    mode: u32,
}

impl File {
    fn new(name: &'static str, text: String, mode: u32) -> File {
        File { name, text, mode }
    }
}

impl Server {
    /// Resolves `args` against this machine; writes nothing.
    pub fn resolve(args: &ServerArgs) -> Result<Server, String> {
        let apache = Apache::find(
            args.httpd_executable.as_deref(),
            args.modules_directory.as_deref(),
        )?;
        let module = locate::wsgi_module(args.module_path.as_deref(), Some(&apache.modules_dir))?;
        let mpm = machine::pick_mpm(args, &apache)?;
        let server_root = absolute(
            &args
                .server_root
                .clone()
                .unwrap_or_else(|| machine::default_server_root(args)),
        );
        let python = python::settings(args, &module)?;
        let application = entry::application(args, &server_root)?;
        let (reloader, import_scripts) = python::reloader(args, &server_root);
        let mount_url = urls::mount_url(args)?;
        let https = https::https(args, &apache)?;
        let url_aliases = urls::url_aliases(args)?;
        let document_root = urls::document_root(args, &server_root);
        let run_as = machine::run_as(args)?;
        processes::note_ignored_threads(args, mpm);
        let pass_env = python::pass_env(args)?;
        let includes = modules::includes(args)?;
        let plan = Plan {
            server_root,
            modules_dir: apache.modules_dir.clone(),
            module,
            mpm,
            modules: modules::modules(args, https.is_some(), &apache),
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
                script: application.script,
                callable: application.callable,
            },
            daemon: processes::daemon(args, &python.working_directory),
            python_home: python.home,
            python_path: python.path,
            processes: args.processes,
            threads: args.threads,
            max_clients: processes::max_clients(args),
            socket_timeout: args.socket_timeout,
            import_scripts,
            application_group: args.application_group.clone(),
            server_name: args.server_name.clone(),
            set_env: python::set_env(args),
            pass_env,
            directory_index: args.directory_index.clone(),
            compress: args.compress_responses,
            limit_request_body: args.limit_request_body,
            keep_alive_timeout: args.keep_alive_timeout,
            includes,
            proxy_headers: args.trust_proxy_header.clone(),
            proxies: args.trust_proxy.clone(),
            server_metrics: args.server_metrics,
        };
        let mut files: Vec<File> = application.generated.into_iter().chain(reloader).collect();
        files.push(File::new("httpd.conf", plan.render(), 0o644));
        files.push(apachectl::file(&apache.httpd, &plan.server_root));
        Ok(Server {
            plan,
            httpd: apache.httpd,
            files,
        })
    }

    /// Writes the server root; checks that Apache's user can read the app.
    pub fn write(&self) -> Result<(), String> {
        let root = &self.plan.server_root;
        machine::make_root(root)?;
        let htdocs = root.join("htdocs");
        if self.plan.document_root == htdocs && !htdocs.exists() {
            fs::create_dir(&htdocs)
                .map_err(|e| format!("cannot create {}: {e}", htdocs.display()))?;
        }
        for file in &self.files {
            let p = root.join(file.name);
            fs::write(&p, &file.text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(file.mode))
                .map_err(|e| format!("cannot set the permissions of {}: {e}", p.display()))?;
        }
        self.check_readable()
    }

    /// When Apache switches user, that user must be able to read the server
    /// root, the script, the document root, the aliases and the Python home.
    fn check_readable(&self) -> Result<(), String> {
        let Some((user, _)) = &self.plan.run_as else {
            return Ok(());
        };
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
        Ok(())
    }

    /// The running configuration's file.
    pub fn conf(&self) -> PathBuf {
        self.plan.server_root.join("httpd.conf")
    }
}
