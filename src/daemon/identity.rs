//! What a daemon process becomes before Python starts: the group's user
//! and groups, working directory, umask, locale and resource limits.
use crate::apache::sys;
use crate::config::daemon::DaemonGroup;
use std::ffi::{CStr, CString};

/// mod_wsgi's line for a failed system call: Apache's `(errno)text: `
/// prefix, then the text.
fn os_error(what: &str) -> String {
    let e = std::io::Error::last_os_error();
    format!("{}: {what}", crate::apache::log::os_status(&e))
}

/// Logs a failed limit or setting the way mod_wsgi does (a warning with
/// the OS error); the process goes on without it.
fn warn_os(what: &str) {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    crate::apache::log::server_status(crate::wsgi::transport::Level::Warning, errno, what);
}

/// The name and home directory of `uid`, from the password database.
fn passwd(uid: u32) -> Option<(CString, String)> {
    // SAFETY: getpwuid returns NULL or static storage, copied at once.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return None;
        }
        let name = CStr::from_ptr((*pw).pw_name).to_owned();
        let dir = CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned();
        Some((name, dir))
    }
}

/// Switches to the group's user and groups (only possible, and only done,
/// when Apache started as root); never to root. Then the working directory
/// (home=, else the user's home when it is not Apache's user) and umask.
/// Returns the uid and gid the process runs as.
pub fn become_user(def: &DaemonGroup) -> Result<(u32, u32), String> {
    // SAFETY: plain credential syscalls in a single-threaded process;
    // ap_unixd_config is Apache's configuration, read-only here.
    unsafe {
        let apache_uid = sys::ap_unixd_config.user_id;
        if libc::geteuid() == 0 {
            let uid = def.user.as_ref().map_or(apache_uid, |u| u.id);
            let gid = def
                .group
                .as_ref()
                .map_or(sys::ap_unixd_config.group_id, |g| g.id);
            if uid == 0 {
                return Err("WSGI process blocked from running as root.".into());
            }
            if libc::setgid(gid) != 0 {
                return Err(os_error(&format!(
                    "WSGI0004: Unable to set group id to gid={gid}. Daemon process will exit."
                )));
            }
            let account = passwd(uid);
            let uname = account.as_ref().map_or_else(
                || format!("#{uid}"),
                |(n, _)| n.to_string_lossy().into_owned(),
            );
            let (rv, what) = match (&def.supplementary_groups, &account) {
                (Some(list), _) => {
                    let ids: Vec<String> = list.iter().map(|g| g.to_string()).collect();
                    (
                        libc::setgroups(list.len(), list.as_ptr()),
                        format!("WSGI0005: Unable to set supplementary groups for uname={uname} of '{}'. Daemon process will exit.", ids.join(",")),
                    )
                }
                (None, Some((name, _))) => (
                    libc::initgroups(name.as_ptr(), gid),
                    format!("WSGI0006: Unable to initialise groups for uname={uname} and gid={gid}. Daemon process will exit."),
                ),
                (None, None) => (
                    libc::setgroups(0, std::ptr::null()),
                    format!("WSGI0006: Unable to initialise groups for uname={uname} and gid={gid}. Daemon process will exit."),
                ),
            };
            if rv != 0 {
                return Err(os_error(&what));
            }
            if libc::setuid(uid) != 0 {
                return Err(os_error(&format!(
                    "WSGI0007: Unable to change to uid={uid}. Daemon process will exit."
                )));
            }
        }
        if libc::getuid() == 0 || libc::geteuid() == 0 {
            return Err("WSGI process blocked from running as root.".into());
        }
        let uid = libc::getuid();
        let home = match &def.home {
            Some(h) => Some(h.clone()),
            None if uid != apache_uid => passwd(uid).map(|(_, dir)| dir),
            None => None,
        };
        if let Some(h) = home {
            let c = CString::new(h.as_str()).unwrap_or_default();
            if libc::chdir(c.as_ptr()) != 0 && def.home.is_some() {
                return Err(os_error(&format!(
                    "WSGI0009: Unable to change working directory to '{h}'. Daemon process will exit."
                )));
            }
        }
        if let Some(m) = def.umask {
            libc::umask(m as libc::mode_t);
        }
        Ok((uid, libc::getgid()))
    }
}

/// Resource limits, CPU priority, locale and environment (before the user
/// changes: a higher priority needs root).
pub fn apply_limits(def: &DaemonGroup) {
    let name = &def.name;
    let limit = |res, soft: u64, hard: u64, what: String| {
        let rl = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: plain setrlimit on this process.
        if unsafe { libc::setrlimit(res, &rl) } != 0 {
            warn_os(&what);
        }
    };
    if let Some(s) = def.cpu_time_limit {
        // SIGXCPU at the soft limit (a graceful restart); the hard limit
        // kills only if the process has not stopped by then.
        limit(
            libc::RLIMIT_CPU,
            s,
            s + def.graceful_timeout.as_secs() + def.shutdown_timeout.as_secs() + 1,
            format!("WSGI0076: Unable to set CPU time limit of {s} seconds for daemon process '{name}'; daemon will run without the configured limit."),
        );
    }
    if let Some(m) = def.memory_limit {
        limit(libc::RLIMIT_DATA, m, m, format!("WSGI0077: Unable to set memory limit of {m} for daemon process '{name}'; daemon will run without the configured limit."));
    }
    if let Some(m) = def.virtual_memory_limit {
        limit(libc::RLIMIT_AS, m, m, format!("WSGI0078: Unable to set virtual memory limit of {m} for daemon process '{name}'; daemon will run without the configured limit."));
    }
    if def.cpu_priority != 0 {
        // SAFETY: plain setpriority on this process.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, def.cpu_priority) } != 0 {
            warn_os(&format!("WSGI0075: Unable to set CPU priority of {} for daemon process '{name}'; daemon will run with default priority.", def.cpu_priority));
        }
    }
    // The process is single-threaded here, so changing the environment is sound.
    if let Some(l) = &def.lang {
        std::env::set_var("LANG", l);
    }
    if let Some(l) = &def.locale {
        std::env::set_var("LC_ALL", l);
    }
    if let Some(e) = &def.python_eggs {
        std::env::set_var("PYTHON_EGG_CACHE", e);
    }
    if def.lang.is_some() || def.locale.is_some() {
        // SAFETY: single-threaded; the empty string selects the environment's locale.
        if unsafe { libc::setlocale(libc::LC_ALL, c"".as_ptr()) }.is_null() {
            let setting = def
                .locale
                .as_ref()
                .or(def.lang.as_ref())
                .cloned()
                .unwrap_or_default();
            warn_os(&format!("WSGI0079: Unsupported locale setting '{setting}' specified for daemon process group '{name}'; daemon will run with the inherited locale. Consider 'C.UTF-8' as a fallback."));
        }
    }
}
