//! The options of `serve` and `setup-server`: mod_wsgi-express's main ones,
//! with its names and defaults.
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApplicationType {
    /// A WSGI script file that defines the callable.
    Script,
    /// A Python module imported from the Python path (`package.module`).
    Module,
    /// A Paste Deploy .ini file.
    Paste,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

#[derive(Clone, Debug, Args)]
pub struct ServerArgs {
    /// The WSGI application: a script file, or `package.module:callable`
    /// (same as --entry-point). Without one a placeholder page is served.
    #[arg(value_name = "SCRIPT")]
    pub script: Option<String>,

    /// The WSGI application, as for SCRIPT: a file, or `package.module:callable`.
    #[arg(long, value_name = "ENTRY", conflicts_with = "script")]
    pub entry_point: Option<String>,

    /// How to load the entry point; by default a file is a script and
    /// `package.module[:callable]` is a module.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub application_type: Option<ApplicationType>,

    /// Name of the WSGI callable in the script or module.
    #[arg(long, default_value = "application", value_name = "NAME")]
    pub callable_object: String,

    /// URL path the application is mounted at.
    #[arg(long, default_value = "/", value_name = "URL")]
    pub mount_point: String,

    /// Address to listen on (default: all interfaces).
    #[arg(long, value_name = "IP")]
    pub host: Option<String>,

    /// Port to listen on for HTTP.
    #[arg(long, default_value_t = 8000, value_name = "N")]
    pub port: u16,

    /// Port to listen on for HTTPS (needs --ssl-certificate-file and --ssl-certificate-key-file).
    #[arg(long, value_name = "N")]
    pub https_port: Option<u16>,

    /// PEM certificate for --https-port.
    #[arg(long, value_name = "FILE", requires = "https_port")]
    pub ssl_certificate_file: Option<PathBuf>,

    /// PEM private key for --https-port.
    #[arg(long, value_name = "FILE", requires = "https_port")]
    pub ssl_certificate_key_file: Option<PathBuf>,

    /// Number of daemon processes running the application.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub processes: u32,

    /// Number of request threads in each process.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub threads: u32,

    /// Run the application in Apache's own processes instead of a daemon process group.
    #[arg(long)]
    pub embedded_mode: bool,

    /// Apache MPM to use (default: the best one installed: event, worker, prefork).
    #[arg(long, value_enum, value_name = "MPM")]
    pub server_mpm: Option<Mpm>,

    /// Most requests Apache accepts at once (default: 10 + max(10, 1.5 × processes × threads)
    /// in daemon mode, processes × threads embedded).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub max_clients: Option<u32>,

    /// User the application runs as (when started as root; default www-data or the
    /// distribution's web server account).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Group the application runs as (default: the user's primary group).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Directory for the generated configuration, logs and sockets
    /// (default /tmp/mod_wsgi_rs-HOST:PORT:UID).
    #[arg(long, value_name = "DIR")]
    pub server_root: Option<PathBuf>,

    /// Directory of static files; a file there is served instead of the application
    /// (default: SERVER_ROOT/htdocs).
    #[arg(long, value_name = "DIR")]
    pub document_root: Option<PathBuf>,

    /// Serve the file or directory PATH at URL (repeatable), e.g. --url-alias /static ./static.
    #[arg(long, num_args = 2, value_names = ["URL", "PATH"], action = clap::ArgAction::Append)]
    pub url_alias: Vec<String>,

    /// Current directory of the application processes, also added to the Python path
    /// (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,

    /// Directory to add to the Python path (repeatable).
    #[arg(long, value_name = "DIR", action = clap::ArgAction::Append)]
    pub python_path: Vec<PathBuf>,

    /// Python home or virtual environment of the application.
    #[arg(long, visible_alias = "virtualenv", value_name = "DIR")]
    pub python_home: Option<PathBuf>,

    /// Restart the application's processes when a Python file it loaded changes (for development).
    #[arg(long)]
    pub reload_on_changes: bool,

    /// Send the error log to stderr and the access log (with --access-log) to stdout.
    #[arg(long)]
    pub log_to_terminal: bool,

    /// Log every request (to SERVER_ROOT/access_log, or stdout with --log-to-terminal).
    #[arg(long)]
    pub access_log: bool,

    /// Apache's LogLevel: emerg, alert, crit, error, warn, notice, info, debug.
    #[arg(long, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,

    /// Write Apache's start-up errors to SERVER_ROOT/startup_log as well.
    #[arg(long)]
    pub startup_log: bool,

    /// Seconds a request may run before its daemon process is restarted.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub request_timeout: u32,

    /// Seconds a request may wait for a free daemon process before a 504.
    #[arg(long, default_value_t = 45, value_name = "SECONDS")]
    pub queue_timeout: u32,

    /// Seconds a daemon process may take to load the application before it is restarted.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub startup_timeout: u32,

    /// Seconds of socket inactivity before a request is abandoned (Apache's Timeout).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub socket_timeout: u32,

    /// Seconds a stopping daemon process waits for its requests.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub shutdown_timeout: u32,

    /// Restart each daemon process after this many requests (0: never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub maximum_requests: u64,

    /// Seconds a stuck Python (the GIL held) is tolerated before its daemon process is restarted.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub deadlock_timeout: u32,

    /// Seconds to wait to connect to a daemon process before a 503.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub connect_timeout: u32,

    /// Seconds a daemon process being recycled waits for its requests.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub graceful_timeout: u32,

    /// Restart a daemon process after this many seconds without requests (0: never).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub inactivity_timeout: u32,

    /// Restart each daemon process after this many seconds (0: never).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub restart_interval: u32,

    /// Application group (Python interpreter) of the application; %{GLOBAL} is the main interpreter.
    #[arg(long, default_value = "%{GLOBAL}", value_name = "NAME")]
    pub application_group: String,

    /// Name of the daemon process group (default HOST:PORT).
    #[arg(long, value_name = "NAME")]
    pub process_group: Option<String>,

    /// Host name of the server (ServerName), for its URLs and virtual host.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// Set NAME to VALUE in every request's WSGI environ (repeatable; like SetEnv).
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub setenv: Vec<String>,

    /// Copy the environment variable NAME of this command into every request's environ (repeatable).
    #[arg(long, value_name = "NAME", action = clap::ArgAction::Append)]
    pub passenv: Vec<String>,

    /// File served for a directory of the document root, e.g. index.html.
    #[arg(long, value_name = "FILE")]
    pub directory_index: Option<String>,

    /// Compress text responses (mod_deflate).
    #[arg(long)]
    pub compress_responses: bool,

    /// Largest request body accepted, in bytes (0: no limit).
    #[arg(long, default_value_t = 10485760, value_name = "BYTES")]
    pub limit_request_body: u64,

    /// Seconds an idle keep-alive connection stays open (0: no keep-alive).
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pub keep_alive_timeout: u32,

    /// A proxy header to honour, e.g. X-Forwarded-For or X-Forwarded-Proto (repeatable;
    /// WSGITrustedProxyHeaders).
    #[arg(long, value_name = "HEADER", action = clap::ArgAction::Append)]
    pub trust_proxy_header: Vec<String>,

    /// Address or subnet of a proxy whose headers are honoured (repeatable; default: any;
    /// WSGITrustedProxies).
    #[arg(long, value_name = "IP", action = clap::ArgAction::Append, requires = "trust_proxy_header")]
    pub trust_proxy: Vec<String>,

    /// Serve the server metrics (Prometheus format) at /server-metrics, to
    /// loopback and private addresses only (the wsgi-rs-metrics handler).
    #[arg(long)]
    pub server_metrics: bool,

    /// Extra Apache configuration to include at the end (repeatable).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub include_file: Vec<PathBuf>,

    /// Apache httpd binary (default: from apxs, else apache2 or httpd on the usual paths).
    #[arg(long, value_name = "FILE")]
    pub httpd_executable: Option<PathBuf>,

    /// Apache's modules directory (default: from apxs, else the distribution's).
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,

    /// The mod_wsgi_rs module (default: next to this program, else in the modules directory).
    #[arg(long, value_name = "FILE")]
    pub module_path: Option<PathBuf>,
}
