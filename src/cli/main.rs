//! `mod_wsgi_rs`: serves a WSGI application with Apache and this module in
//! one command, writes server roots for systemd and containers, prints or
//! installs the module's configuration, and checks an application before it
//! is deployed. The command-line counterpart of mod_wsgi-express.
//!
//! It drives the system's Apache; it does not link Python or Apache itself.
mod accounts;
mod check;
mod httpd_conf;
mod locate;
mod module_config;
mod options;
mod serve;
mod server_root;

use clap::{Parser, Subcommand};

/// Serve Python WSGI applications with Apache httpd and mod_wsgi_rs.
#[derive(Parser)]
#[command(
    name = "mod_wsgi_rs",
    version,
    after_help = "Run `mod_wsgi_rs <command> --help` for a command's options.\n\
                  Example: mod_wsgi_rs serve app.wsgi --port 8000 --processes 2 --threads 8"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a WSGI application with Apache in the foreground (Ctrl-C or SIGTERM stops it).
    ///
    /// Writes a complete server root (httpd.conf, logs, sockets) into a directory,
    /// prints where it listens and where the logs are, and runs the system's
    /// Apache with mod_wsgi_rs, the application in a daemon process group.
    Serve(options::ServerArgs),
    /// Write a server root and its `apachectl` script, without starting Apache.
    ///
    /// For systemd units and containers: `<server-root>/apachectl start|stop|restart|graceful|configtest`.
    SetupServer(options::ServerArgs),
    /// Print the lines that load mod_wsgi_rs, to paste into httpd.conf.
    ModuleConfig(module_config::ModuleConfigArgs),
    /// Copy mod_wsgi_rs into Apache's modules directory and print the lines that load it.
    InstallModule(module_config::InstallArgs),
    /// Load a WSGI script in the configured Python and report what would stop it working under Apache.
    Check(check::CheckArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::SetupServer(args) => serve::setup(args),
        Command::ModuleConfig(args) => module_config::print(args),
        Command::InstallModule(args) => module_config::install(args),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(msg) => {
            eprintln!("mod_wsgi_rs: error: {msg}");
            std::process::exit(1);
        }
    }
}
