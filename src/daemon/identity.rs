//! What a daemon process becomes before Python starts: the group's user
//! and groups, working directory, umask, locale and resource limits.
use crate::apache::sys;
use crate::config::daemon::DaemonGroup;
use std::ffi::{CStr, CString};

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
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
                return Err(os_error(&format!("cannot change to group id {gid}")));
            }
            let rv = match (&def.supplementary_groups, passwd(uid)) {
                (Some(list), _) => libc::setgroups(list.len(), list.as_ptr()),
                (None, Some((name, _))) => libc::initgroups(name.as_ptr(), gid),
                (None, None) => libc::setgroups(0, std::ptr::null()),
            };
            if rv != 0 {
                return Err(os_error("cannot set the supplementary groups"));
            }
            if libc::setuid(uid) != 0 {
                return Err(os_error(&format!("cannot change to user id {uid}")));
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
                return Err(os_error(&format!("cannot change to directory '{h}'")));
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
    let limit = |res, soft: u64, hard: u64| {
        let rl = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: plain setrlimit on this process.
        unsafe { libc::setrlimit(res, &rl) };
    };
    if let Some(s) = def.cpu_time_limit {
        // SIGXCPU at the soft limit (a graceful restart); the hard limit
        // kills only if the process has not stopped by then.
        limit(
            libc::RLIMIT_CPU,
            s,
            s + def.graceful_timeout.as_secs() + def.shutdown_timeout.as_secs() + 1,
        );
    }
    if let Some(m) = def.memory_limit {
        limit(libc::RLIMIT_DATA, m, m);
    }
    if let Some(m) = def.virtual_memory_limit {
        limit(libc::RLIMIT_AS, m, m);
    }
    if def.cpu_priority != 0 {
        // SAFETY: plain setpriority on this process.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, def.cpu_priority) };
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
        unsafe { libc::setlocale(libc::LC_ALL, c"".as_ptr()) };
    }
}
