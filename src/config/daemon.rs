//! `WSGIDaemonProcess name [option=value ...]`: a daemon process group's
//! definition, with mod_wsgi's option names, meanings and defaults.
//!
//! Every mod_wsgi option is known. One whose effect this version does not
//! build yet stops Apache with its name, so nothing is silently ignored.
use std::time::Duration;

/// A user or group given by name or `#id`, resolved at configuration time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub id: u32,
}

#[derive(Clone, Debug)]
pub struct DaemonGroup {
    pub name: String,
    /// The ServerName of the virtual host it was defined in (None: global).
    /// A vhost may only use groups defined globally or under its own name.
    pub server_name: Option<String>,
    pub processes: u32,
    /// `processes=` was given: wsgi.multiprocess is then True, even for 1.
    pub multiprocess: bool,
    pub threads: u32,
    pub display_name: Option<String>,
    pub user: Option<Account>,
    pub group: Option<Account>,
    pub supplementary_groups: Option<Vec<u32>>,
    pub umask: Option<u32>,
    pub home: Option<String>,
    pub lang: Option<String>,
    pub locale: Option<String>,
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,
    pub switch_interval: Option<f64>,
    pub stack_size: Option<usize>,
    pub maximum_requests: u64,
    pub restart_interval: Option<Duration>,
    pub inactivity_timeout: Option<Duration>,
    pub graceful_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub connect_timeout: Duration,
    /// None: Apache's Timeout.
    pub socket_timeout: Option<Duration>,
    pub listen_backlog: i32,
    pub socket_user: Option<Account>,
    pub cpu_time_limit: Option<u64>,
    pub cpu_priority: i32,
    pub memory_limit: Option<u64>,
    pub virtual_memory_limit: Option<u64>,
    pub send_buffer_size: Option<u32>,
    pub receive_buffer_size: Option<u32>,
    pub header_buffer_size: usize,
    /// A request queued longer than this (from its arrival) gets 504.
    pub queue_timeout: Option<Duration>,
    /// A request running longer than this (scaled as in mod_wsgi 6, see
    /// `request_limit`) makes the process restart; it gets 504.
    pub request_timeout: Option<Duration>,
    /// A process that has not loaded a WSGI script this long after it
    /// started restarts (a stuck Django setup(), say).
    pub startup_timeout: Option<Duration>,
    /// A process whose GIL cannot be taken for this long restarts (a C
    /// extension holding it); mod_wsgi's default is 300 s.
    pub deadlock_timeout: Option<Duration>,
    /// The drain window after SIGUSR1 (default graceful-timeout).
    pub eviction_timeout: Option<Duration>,
    /// The child flushes at least this often, in bytes of response data.
    pub response_buffer_size: usize,
    /// The write timeout to the client while relaying (default socket-timeout).
    pub response_socket_timeout: Option<Duration>,
    /// With request-timeout: first raise mod_wsgi.RequestTimeout in the
    /// request's thread, and restart only if it is still running this long after.
    pub interrupt_timeout: Option<Duration>,
    /// How long the Apache child waits for more response data before it
    /// flushes what it has (mod_wsgi 6: 5 ms).
    pub response_flush_delay: Duration,
    /// The owner (script-user) or group (script-group) the script and its
    /// directory must have; else 403.
    pub script_user: Option<Account>,
    pub script_group: Option<Account>,
    /// server-metrics=On: mod_wsgi.server_metrics() works in this group.
    pub server_metrics: bool,
}

impl DaemonGroup {
    fn new(name: &str, server_name: Option<String>) -> DaemonGroup {
        DaemonGroup {
            name: name.to_string(),
            server_name,
            processes: 1,
            multiprocess: false,
            threads: 15,
            display_name: None,
            user: None,
            group: None,
            supplementary_groups: None,
            umask: None,
            home: None,
            lang: None,
            locale: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            switch_interval: None,
            stack_size: None,
            maximum_requests: 0,
            restart_interval: None,
            inactivity_timeout: None,
            graceful_timeout: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            socket_timeout: None,
            listen_backlog: 100,
            socket_user: None,
            cpu_time_limit: None,
            cpu_priority: 0,
            memory_limit: None,
            virtual_memory_limit: None,
            send_buffer_size: None,
            receive_buffer_size: None,
            header_buffer_size: 32768,
            queue_timeout: None,
            request_timeout: None,
            interrupt_timeout: None,
            startup_timeout: None,
            deadlock_timeout: Some(Duration::from_secs(300)),
            eviction_timeout: None,
            response_buffer_size: 8 << 20,
            response_socket_timeout: None,
            response_flush_delay: Duration::from_millis(5),
            script_user: None,
            script_group: None,
            server_metrics: false,
        }
    }

    /// How long one request may run: mod_wsgi 6 judges each request against
    /// request-timeout × (1 + ln threads), so a busy multi-threaded process
    /// is not restarted for one slow request as soon as a lone thread would.
    pub fn request_limit(&self) -> Option<Duration> {
        self.request_timeout
            .map(|t| t.mul_f64(1.0 + (self.threads.max(1) as f64).ln()))
    }

    /// What `display-name=` makes argv[0]: `%{GROUP}` is `(wsgi:name)`.
    pub fn process_title(&self) -> Option<String> {
        self.display_name.as_ref().map(|d| {
            if d == "%{GROUP}" {
                format!("(wsgi:{})", self.name)
            } else {
                d.clone()
            }
        })
    }
}

/// How user and group names become ids (the system's databases in Apache;
/// a table in unit tests).
pub trait Accounts {
    fn user(&self, name: &str) -> Option<u32>;
    fn group(&self, name: &str) -> Option<u32>;
}

fn account(
    value: &str,
    lookup: impl Fn(&str) -> Option<u32>,
    what: &str,
) -> Result<Account, String> {
    let id = match value.strip_prefix('#') {
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| format!("Invalid {what} id '{value}'."))?,
        None => lookup(value).ok_or_else(|| format!("Unknown {what} '{value}'."))?,
    };
    Ok(Account {
        name: value.to_string(),
        id,
    })
}

fn int<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    key: &str,
    v: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!(
            "Invalid value for {key}: '{v}' (expected a number from {min} to {max})."
        )),
    }
}

/// Seconds, whole or fractional; 0 means off where the option allows it.
fn seconds(key: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "Invalid value for {key}: '{v}' (expected a number of seconds)."
        )),
    }
}

fn optional(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Parses `WSGIDaemonProcess`'s words (the name first).
pub fn parse(
    words: &[String],
    server_name: Option<String>,
    accounts: &dyn Accounts,
) -> Result<DaemonGroup, String> {
    let Some(name) = words.first() else {
        return Err("WSGIDaemonProcess needs a process group name.".into());
    };
    if name.is_empty() || name.contains(['/', '\0']) || name.starts_with("%{") {
        return Err(format!("Invalid WSGI daemon process group name '{name}'."));
    }
    let mut g = DaemonGroup::new(name, server_name);
    for opt in &words[1..] {
        let Some((key, v)) = opt.split_once('=') else {
            return Err(format!(
                "Invalid option to WSGI daemon process definition: '{opt}' (expected key=value)."
            ));
        };
        if let Some(slot) = optional_timeout(&mut g, key) {
            *slot = optional(seconds(key, v)?);
        } else if !identity_option(&mut g, key, v, accounts)? {
            other_option(&mut g, key, v)?;
        }
    }
    if g.script_user.is_some() && g.script_group.is_some() {
        return Err("Only one of script-user and script-group allowed.".into());
    }
    Ok(g)
}

/// The field of a timeout option whose 0 means "none".
fn optional_timeout<'g>(g: &'g mut DaemonGroup, key: &str) -> Option<&'g mut Option<Duration>> {
    Some(match key {
        "restart-interval" => &mut g.restart_interval,
        "inactivity-timeout" => &mut g.inactivity_timeout,
        "socket-timeout" => &mut g.socket_timeout,
        "queue-timeout" => &mut g.queue_timeout,
        "request-timeout" => &mut g.request_timeout,
        "interrupt-timeout" => &mut g.interrupt_timeout,
        "startup-timeout" => &mut g.startup_timeout,
        "deadlock-timeout" => &mut g.deadlock_timeout,
        "eviction-timeout" => &mut g.eviction_timeout,
        "response-socket-timeout" => &mut g.response_socket_timeout,
        _ => return None,
    })
}

/// Who the processes run as, and who may own their scripts. False: not
/// one of these options.
fn identity_option(
    g: &mut DaemonGroup,
    key: &str,
    v: &str,
    accounts: &dyn Accounts,
) -> Result<bool, String> {
    let user = |n: &str| account(n, |n| accounts.user(n), "user");
    let group = |n: &str| account(n, |n| accounts.group(n), "group");
    match key {
        "user" => g.user = Some(user(v)?),
        "group" => g.group = Some(group(v)?),
        "supplementary-groups" => {
            let ids = v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| group(s).map(|a| a.id))
                .collect::<Result<Vec<_>, _>>()?;
            g.supplementary_groups = Some(ids);
        }
        "socket-user" => g.socket_user = Some(user(v)?),
        "script-user" => g.script_user = Some(user(v)?),
        "script-group" => g.script_group = Some(group(v)?),
        "umask" => {
            g.umask = Some(
                u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| format!("Invalid umask '{v}' (expected octal, e.g. 0022)."))?,
            )
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Every other option, and the refused ones.
fn other_option(g: &mut DaemonGroup, key: &str, v: &str) -> Result<(), String> {
    match key {
        "processes" => {
            g.processes = int(key, v, 1, 10000)?;
            g.multiprocess = true;
        }
        "threads" => g.threads = int(key, v, 0, 65533)?,
        "display-name" => g.display_name = Some(v.to_string()),
        "home" => g.home = Some(absolute(key, v)?),
        "lang" => g.lang = Some(v.to_string()),
        "locale" => g.locale = Some(v.to_string()),
        "python-home" => {
            let home = absolute(key, v)?;
            super::python::check_venv(&home, "python-home=")?;
            g.python_home = Some(home);
        }
        "python-path" => {
            g.python_path = v
                .split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        }
        "python-eggs" => g.python_eggs = Some(v.to_string()),
        "switch-interval" => {
            let s = seconds(key, v)?.as_secs_f64();
            if s <= 0.0 {
                return Err("switch-interval must be greater than 0.".into());
            }
            g.switch_interval = Some(s);
        }
        "stack-size" => g.stack_size = Some(int(key, v, 65536, 1 << 30)?),
        "server-metrics" => g.server_metrics = crate::config::parse_flag(key, v)?,
        "maximum-requests" => g.maximum_requests = int(key, v, 0, u64::MAX)?,
        "graceful-timeout" => g.graceful_timeout = seconds(key, v)?,
        "shutdown-timeout" => g.shutdown_timeout = seconds(key, v)?,
        "connect-timeout" => g.connect_timeout = seconds(key, v)?,
        "listen-backlog" => g.listen_backlog = int(key, v, 1, 65535)?,
        "cpu-time-limit" => g.cpu_time_limit = Some(int(key, v, 0, u64::MAX)?).filter(|&n| n > 0),
        "cpu-priority" => g.cpu_priority = int(key, v, -20, 20)?,
        "memory-limit" => g.memory_limit = Some(int(key, v, 0, u64::MAX)?).filter(|&n| n > 0),
        "virtual-memory-limit" => {
            g.virtual_memory_limit = Some(int(key, v, 0, u64::MAX)?).filter(|&n| n > 0)
        }
        "send-buffer-size" => {
            g.send_buffer_size = Some(int(key, v, 0, 1 << 30)?).filter(|&n| n > 0);
            check_buffer(key, g.send_buffer_size)?;
        }
        "receive-buffer-size" => {
            g.receive_buffer_size = Some(int(key, v, 0, 1 << 30)?).filter(|&n| n > 0);
            check_buffer(key, g.receive_buffer_size)?;
        }
        "header-buffer-size" => g.header_buffer_size = int(key, v, 8192, 1 << 30)?,
        "response-buffer-size" => g.response_buffer_size = int(key, v, 65536, 1 << 30)?,
        "response-flush-delay" => {
            g.response_flush_delay = Duration::from_millis(int(key, v, 0, 60_000)?)
        }
        "chroot" => {
            return Err("chroot= is deprecated in mod_wsgi and not supported by mod_wsgi_rs: use a container or a separate Apache instead.".into())
        }
        "newrelic-config-file" | "newrelic-environment" => {
            return Err(format!(
                "{key}= was removed in mod_wsgi 6 and is not supported by mod_wsgi_rs: configure the New Relic agent from the application instead."
            ))
        }
        _ => {
            return Err(format!(
                "Invalid option to WSGI daemon process definition: '{key}'."
            ))
        }
    }
    Ok(())
}

fn check_buffer(key: &str, v: Option<u32>) -> Result<(), String> {
    match v {
        Some(n) if n < 512 => Err(format!("{key} must be at least 512 bytes.")),
        _ => Ok(()),
    }
}

fn absolute(key: &str, v: &str) -> Result<String, String> {
    if v.starts_with('/') {
        Ok(v.trim_end_matches('/').to_string()).map(|s| if s.is_empty() { "/".into() } else { s })
    } else {
        Err(format!("{key} must be an absolute path, not '{v}'."))
    }
}

/// Daemon-mode settings of one configuration generation: the groups and
/// the server-wide socket and embedding directives. Kept with the
/// configuration pool, which Apache clears (and re-reads) on every restart.
#[derive(Default)]
pub struct DaemonSettings {
    pub groups: Vec<DaemonGroup>,
    /// WSGISocketPrefix (relative to ServerRoot), if set.
    pub socket_prefix: Option<String>,
    /// WSGISocketRotation (default On).
    pub socket_rotation: Option<bool>,
    /// WSGIRestrictEmbedded (default Off).
    pub restrict_embedded: Option<bool>,
    /// WSGIServerMetrics (default Off): mod_wsgi.server_metrics() in
    /// Apache's children.
    pub server_metrics: Option<bool>,
    /// WSGIImportScript, in configuration order.
    pub imports: Vec<ImportScript>,
    /// WSGISlowRequests: the threshold of the slow-request warning.
    pub slow_requests: Option<std::time::Duration>,
    /// WSGITelemetryService and WSGITelemetryOptions' flags.
    pub telemetry: Option<crate::telemetry::Service>,
    pub telemetry_options: u32,
}

/// `WSGIImportScript path process-group=… application-group=…`: loaded
/// when a process of that group ("" for Apache's children) starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportScript {
    pub path: String,
    pub process_group: String,
    pub application_group: String,
}

/// Parses WSGIImportScript's words; `defined` says whether a daemon group
/// exists (it must be defined first, as mod_wsgi requires).
pub fn parse_import(w: &[String], defined: impl Fn(&str) -> bool) -> Result<ImportScript, String> {
    let Some(path) = w.first() else {
        return Err("WSGIImportScript needs a script path.".into());
    };
    let (mut process_group, mut application_group) = (None, None);
    for opt in &w[1..] {
        match opt.split_once('=') {
            Some(("process-group", v)) => process_group = Some(v.to_string()),
            Some(("application-group", v)) => application_group = Some(v.to_string()),
            _ => {
                return Err(format!(
                    "Invalid option to WSGI import script definition: '{opt}'."
                ))
            }
        }
    }
    let (Some(pg), Some(ag)) = (process_group, application_group) else {
        return Err("WSGIImportScript needs both process-group= and application-group=.".into());
    };
    let pg = if pg == "%{GLOBAL}" { String::new() } else { pg };
    let ag = if ag == "%{GLOBAL}" { String::new() } else { ag };
    if pg.contains("%{") || ag.contains("%{") {
        return Err("WSGIImportScript groups must be names or %{GLOBAL}.".into());
    }
    if !pg.is_empty() && !defined(&pg) {
        return Err(format!("WSGI process group not yet configured: '{pg}'."));
    }
    Ok(ImportScript {
        path: path.clone(),
        process_group: pg,
        application_group: ag,
    })
}

impl DaemonSettings {
    pub fn group(&self, name: &str) -> Option<&DaemonGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

const SETTINGS_KEY: &std::ffi::CStr = c"mod_wsgi_rs.daemon_settings";

/// This configuration generation's daemon settings, created on first use.
///
/// # Safety
/// `pconf` is Apache's live configuration pool. The reference is used only
/// while the configuration is read or in post_config, on Apache's one
/// configuration thread, and not held across another call of this function.
pub unsafe fn settings<'a>(pconf: *mut crate::apache::sys::apr_pool_t) -> &'a mut DaemonSettings {
    use crate::apache::sys;
    let mut data: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: pconf is live; the userdata is a DaemonSettings boxed below,
    // owned by the pool (freed by its cleanup).
    unsafe {
        sys::apr_pool_userdata_get(&mut data, SETTINGS_KEY.as_ptr(), pconf);
        if data.is_null() {
            data = crate::pool_box(pconf, DaemonSettings::default());
            sys::apr_pool_userdata_setn(data, SETTINGS_KEY.as_ptr(), None, pconf);
        }
        &mut *(data as *mut DaemonSettings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table;
    impl Accounts for Table {
        fn user(&self, name: &str) -> Option<u32> {
            (name == "shop").then_some(1001)
        }
        fn group(&self, name: &str) -> Option<u32> {
            (name == "shop").then_some(1002)
        }
    }

    fn p(s: &str) -> Result<DaemonGroup, String> {
        let w: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&w, None, &Table)
    }

    #[test]
    fn defaults_are_mod_wsgis() {
        let g = p("shop").unwrap();
        assert_eq!((g.processes, g.threads, g.multiprocess), (1, 15, false));
        assert_eq!(g.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(g.graceful_timeout, Duration::from_secs(15));
        assert_eq!(g.connect_timeout, Duration::from_secs(15));
        assert_eq!((g.listen_backlog, g.header_buffer_size), (100, 32768));
        assert_eq!(g.process_title(), None);
    }

    #[test]
    fn the_issue_example() {
        let g = p(
            "shop user=shop group=shop processes=2 threads=15 python-home=/srv/shop/venv/ \
                   python-path=/srv/shop:/srv/lib display-name=%{GROUP} maximum-requests=10000 \
                   inactivity-timeout=300",
        )
        .unwrap();
        assert_eq!(g.user.as_ref().unwrap().id, 1001);
        assert_eq!(g.group.as_ref().unwrap().id, 1002);
        assert!(g.multiprocess);
        assert_eq!(g.python_home.as_deref(), Some("/srv/shop/venv"));
        assert_eq!(g.python_path, ["/srv/shop", "/srv/lib"]);
        assert_eq!(g.process_title().as_deref(), Some("(wsgi:shop)"));
        assert_eq!(g.inactivity_timeout, Some(Duration::from_secs(300)));
        assert_eq!(g.maximum_requests, 10000);
        assert!(p("a processes=1").unwrap().multiprocess);
    }

    #[test]
    fn errors_name_the_option() {
        assert!(p("a bogus=1").unwrap_err().contains("'bogus'"));
        assert!(p("a threads").unwrap_err().contains("key=value"));
        assert!(p("a processes=0").unwrap_err().contains("processes"));
        assert!(p("a user=nobody-here")
            .unwrap_err()
            .contains("Unknown user"));
        assert!(p("a chroot=/x").unwrap_err().contains("deprecated"));
        assert_eq!(
            p("a queue-timeout=5").unwrap().queue_timeout,
            Some(Duration::from_secs(5))
        );
        assert!(p("a umask=9").unwrap_err().contains("octal"));
        assert!(p("a home=rel").unwrap_err().contains("absolute"));
        assert!(p("a send-buffer-size=100").unwrap_err().contains("512"));
        assert_eq!(p("a user=#33").unwrap().user.unwrap().id, 33);
        assert_eq!(p("a umask=0027").unwrap().umask, Some(0o027));
    }
}
