//! How the application runs: in a daemon process group (its name, locale,
//! timeouts and recycling) or, with --embedded-mode, in Apache's children;
//! and how many clients Apache admits at once.
use super::machine;
use crate::httpd_conf::Daemon;
use crate::options::{Mpm, ServerArgs};
use std::path::Path;

/// --max-clients, by default (as mod_wsgi-express) what the application can
/// serve at once, with room in daemon mode for requests waiting on a daemon.
pub(super) fn max_clients(args: &ServerArgs) -> u32 {
    let capacity = args.processes * args.threads;
    args.max_clients.unwrap_or(if args.embedded_mode {
        capacity
    } else {
        10 + 10u32.max((capacity * 3).div_ceil(2))
    })
}

/// Says so when --threads has no effect: prefork's children are single-threaded.
pub(super) fn note_ignored_threads(args: &ServerArgs, mpm: Mpm) {
    if args.embedded_mode && mpm == Mpm::Prefork && args.threads > 1 {
        eprintln!(
            "mod_wsgi_rs: note: prefork runs one request per process; --threads {} is ignored.",
            args.threads
        );
    }
}

/// The daemon process group, unless --embedded-mode; it starts in `home`.
pub(super) fn daemon(args: &ServerArgs, home: &Path) -> Option<Daemon> {
    if args.embedded_mode {
        return None;
    }
    let name = args.process_group.clone().unwrap_or_else(|| {
        format!(
            "{}:{}",
            args.host.as_deref().unwrap_or("localhost"),
            args.port
        )
    });
    Some(Daemon {
        display_name: format!("(wsgi:{name}:{})", machine::uid()),
        name,
        home: home.to_path_buf(),
        lang: machine::locale(),
        options: daemon_options(args),
    })
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
