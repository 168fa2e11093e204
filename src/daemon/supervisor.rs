//! The Apache parent's side of daemon mode: it makes each group's socket,
//! forks the daemon processes (so they keep root's power to change user),
//! restarts them when they die, and stops them when Apache stops or
//! restarts.
//!
//! Apache reaps every child of the parent (`waitpid(-1)`) and tells us about
//! ours through APR's "other child" registry; a restart clears the
//! configuration pool, whose cleanup asks this generation's daemons to stop.
use super::process;
use super::shared::{Cause, Reason, Table};
use crate::apache::{self, log, sys};
use crate::config::daemon::{settings, DaemonGroup};
use std::ffi::{c_int, c_void, CString};
use std::os::fd::RawFd;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A daemon process group as this configuration generation runs it.
pub struct Group {
    pub def: DaemonGroup,
    pub index: usize,
    pub socket: String,
    /// The listening socket: open in the parent and the group's daemons,
    /// closed in Apache's children (`close_listeners`).
    pub listener: RawFd,
    /// socket-timeout, or Apache's Timeout.
    pub socket_timeout: Duration,
}

/// Every group of this generation, shared with Apache's children (which
/// inherit it when they are forked).
pub struct Daemons {
    pub groups: Vec<Arc<Group>>,
    pub restrict_embedded: bool,
    /// WSGIImportScript: loaded when a process of their group starts.
    pub imports: Vec<crate::config::daemon::ImportScript>,
    /// Process slots in memory shared by the parent, the daemons and
    /// Apache's children: who runs in each slot and why the last one died.
    pub table: Table,
    pconf: *mut sys::apr_pool_t,
    parent: libc::pid_t,
}

// SAFETY: `pconf` is only used by the parent's single thread (to register
// restarted processes); everything else is immutable or atomic.
unsafe impl Send for Daemons {}
unsafe impl Sync for Daemons {}

static CURRENT: RwLock<Option<Arc<Daemons>>> = RwLock::new(None);

/// This generation's daemon groups (None before post_config).
pub fn current() -> Option<Arc<Daemons>> {
    CURRENT.read().ok()?.clone()
}

impl Daemons {
    pub fn group(&self, name: &str) -> Option<&Arc<Group>> {
        self.groups.iter().find(|g| g.def.name == name)
    }

    /// Apache's children do not accept on the daemons' sockets: close them.
    pub fn close_listeners(&self) {
        for g in &self.groups {
            // SAFETY: a descriptor this process inherited and nothing else uses.
            unsafe { libc::close(g.listener) };
        }
    }

    /// The parent that forked the daemons.
    pub fn parent(&self) -> libc::pid_t {
        self.parent
    }
}

/// One process of a group, as the parent tracks it.
struct Slot {
    daemons: Arc<Daemons>,
    group: usize,
    index: usize,
    /// APR keeps a pointer to this while the process is registered.
    proc_: sys::apr_proc_t,
    started: Instant,
    /// How many processes in a row died soon after they started here.
    quick_deaths: u32,
}

/// post_config: starts the daemon groups (in the second pass only; the
/// first is Apache's configuration check).
///
/// # Safety
/// Called from post_config in the parent with the live pools and main server.
pub unsafe fn start(pconf: *mut sys::apr_pool_t, s: *mut sys::server_rec) -> Result<(), String> {
    // SAFETY: plain queries of Apache's state.
    let (state, generation) = unsafe {
        (
            sys::ap_state_query(sys::AP_SQ_MAIN_STATE),
            sys::ap_state_query(sys::AP_SQ_CONFIG_GEN),
        )
    };
    if state == sys::AP_SQ_MS_CREATE_PRE_CONFIG {
        return Ok(());
    }
    // SAFETY: post_config runs on the parent's one thread.
    let settings = unsafe { settings(pconf) };
    crate::wsgi::slow::configure(settings.slow_requests);
    crate::telemetry::configure(settings.telemetry.clone(), settings.telemetry_options);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: s is the live main server.
    let timeout = Duration::from_micros(unsafe { (*s).timeout }.max(0) as u64);
    let prefix = match &settings.socket_prefix {
        // SAFETY: pconf is live; the result is a pool string.
        Some(p) => unsafe { pool_path(pconf, p, true) },
        None => unsafe { pool_path(pconf, "wsgi", false) },
    };
    let rotation = settings.socket_rotation.unwrap_or(true);
    let mut groups = Vec::new();
    for (i, def) in settings.groups.iter().enumerate() {
        let socket = if rotation {
            format!("{prefix}.{parent}.{generation}.{i}.sock")
        } else {
            // SAFETY: reading Apache's User, set at configuration time.
            let uid = unsafe { sys::ap_unixd_config.user_id };
            format!("{prefix}.{parent}.u{uid}.{i}.sock")
        };
        let listener = listen(&socket, def)?;
        groups.push(Arc::new(Group {
            def: def.clone(),
            index: i,
            socket,
            listener,
            socket_timeout: def.socket_timeout.unwrap_or(timeout),
        }));
    }
    let slots: usize = groups.iter().map(|g| g.def.processes as usize).sum();
    let names: Vec<String> = groups.iter().map(|g| g.def.name.clone()).collect();
    // SAFETY: s is the live main server; nothing has forked yet.
    unsafe { crate::metrics::init(s, &names) }?;
    crate::metrics::record::set_server_metrics(settings.server_metrics.unwrap_or(false));
    let daemons = Arc::new(Daemons {
        groups,
        restrict_embedded: settings.restrict_embedded.unwrap_or(false),
        imports: settings.imports.clone(),
        table: Table::new(slots)?,
        pconf,
        parent,
    });
    if rotation {
        remove_old_sockets(&prefix, parent, generation);
    }
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(daemons.clone());
    // SAFETY: pconf is live; the cleanup runs when it is cleared (restart)
    // or destroyed (stop), with the Arc kept alive by the pool.
    unsafe {
        let data = crate::pool_box(pconf, daemons.clone());
        sys::apr_pool_cleanup_register(
            pconf,
            data,
            Some(stop_all),
            Some(sys::apr_pool_cleanup_null),
        );
    }
    for (gi, g) in daemons.groups.iter().enumerate() {
        for slot in 0..g.def.processes as usize {
            spawn(&daemons, gi, slot, 0);
        }
    }
    Ok(())
}

/// A path relative to ServerRoot (configured) or the runtime directory.
unsafe fn pool_path(pconf: *mut sys::apr_pool_t, p: &str, server_root: bool) -> String {
    let c = CString::new(p).unwrap_or_default();
    // SAFETY: pconf is live; both return pool strings (or NULL).
    let r = unsafe {
        if server_root {
            sys::ap_server_root_relative(pconf, c.as_ptr())
        } else {
            sys::ap_runtime_dir_relative(pconf, c.as_ptr())
        }
    };
    // SAFETY: NULL or a NUL-terminated pool string.
    unsafe { apache::cstring_lossy(r) }.unwrap_or_else(|| p.to_string())
}

/// Binds and listens on a group's socket: mode 0600, owned by the user
/// Apache's children run as (or socket-user), so only they can connect.
fn listen(path: &str, g: &DaemonGroup) -> Result<RawFd, String> {
    // mod_wsgi's texts, after the OS error as Apache would put it.
    let fail = |text: String| {
        format!(
            "{}: {text}",
            log::os_status(&std::io::Error::last_os_error())
        )
    };
    let cpath = CString::new(path).map_err(|_| "NUL in socket path".to_string())?;
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // address is a zeroed sockaddr_un with a bounded, NUL-terminated path.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(fail(format!("WSGI0012: Unable to create unix domain socket for daemon process '{}'. Daemon group will not start.", g.name)));
        }
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            libc::close(fd);
            return Err(format!("The socket path '{path}' is too long."));
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let old = libc::umask(0o077);
        let bind = || {
            libc::bind(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        let mut rv = bind();
        if rv != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EADDRINUSE) {
            log::server_status(
                crate::wsgi::transport::Level::Warning,
                libc::EADDRINUSE,
                &format!("WSGI0065: Removing stale unix domain socket '{path}' before re-binding daemon process listener."),
            );
            libc::unlink(cpath.as_ptr());
            rv = bind();
        }
        libc::umask(old);
        if rv != 0 {
            let e = fail(format!("WSGI0013: Unable to bind unix domain socket '{path}'. Daemon group will not start."));
            libc::close(fd);
            return Err(e);
        }
        for (opt, v, text) in [
            (libc::SO_SNDBUF, g.send_buffer_size, "WSGI0062: Unable to set send buffer size on daemon process socket; default size will be used."),
            (libc::SO_RCVBUF, g.receive_buffer_size, "WSGI0063: Unable to set receive buffer size on daemon process socket; default size will be used."),
        ] {
            if let Some(v) = v {
                let v = v as c_int;
                let rv = libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&v as *const c_int).cast(),
                    std::mem::size_of::<c_int>() as libc::socklen_t,
                );
                if rv != 0 {
                    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                    log::server_status(crate::wsgi::transport::Level::Warning, errno, text);
                }
            }
        }
        if libc::listen(fd, g.listen_backlog) != 0 {
            let e = fail(format!("WSGI0014: Unable to listen on unix domain socket '{path}'. Daemon group will not start."));
            libc::close(fd);
            return Err(e);
        }
        // Non-blocking: every daemon process polls it and more than one may
        // wake for a connection only one gets.
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        );
        if libc::geteuid() == 0 {
            let uid = g
                .socket_user
                .as_ref()
                .map_or(sys::ap_unixd_config.user_id, |u| u.id);
            if libc::chown(cpath.as_ptr(), uid, u32::MAX) != 0 {
                let e = fail(format!("WSGI0015: Unable to change owner of unix domain socket '{path}' to uid={uid}. Daemon group will not start."));
                libc::close(fd);
                return Err(e);
            }
        }
        Ok(fd)
    }
}

/// Sockets of generations before the previous one: their Apache children
/// are gone (the previous generation's may still be finishing requests).
fn remove_old_sockets(prefix: &str, parent: libc::pid_t, generation: i32) {
    let path = std::path::Path::new(prefix);
    let (Some(dir), Some(base)) = (path.parent(), path.file_name()) else {
        return;
    };
    let start = format!("{}.{parent}.", base.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&start) else {
            continue;
        };
        let gen = rest.split('.').next().and_then(|g| g.parse::<i32>().ok());
        if gen.is_some_and(|g| g < generation - 1) && name.ends_with(".sock") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Forks the process for `slot` of group `gi`. After repeated deaths soon
/// after starting, the new process waits first (in the new process, so the
/// parent never sleeps): a crashing application cannot spin the CPU.
fn spawn(daemons: &Arc<Daemons>, gi: usize, slot: usize, quick_deaths: u32) {
    let delay = backoff(quick_deaths);
    let g = &daemons.groups[gi];
    let id = daemons.table.slot_id(daemons, gi, slot);
    // SAFETY: the parent is single-threaded; the child only runs the daemon
    // (process::run never returns).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        process::run(daemons, gi, slot, id, delay);
    }
    if pid < 0 {
        let msg = format!(
            "WSGI0024: Unable to spawn daemon process '{}'. Daemon group will not start.",
            g.def.name
        );
        log::server(crate::wsgi::transport::Level::Error, &msg);
        return;
    }
    daemons.table.started(id, pid);
    crate::metrics::record::proc_started(id, pid, &g.def.name);
    let mut s = Box::new(Slot {
        daemons: daemons.clone(),
        group: gi,
        index: slot,
        // SAFETY: apr_proc_t is plain data; only `pid` is used by APR here.
        proc_: unsafe { std::mem::zeroed() },
        started: Instant::now(),
        quick_deaths,
    });
    s.proc_.pid = pid;
    let s = Box::into_raw(s);
    // SAFETY: `s` stays allocated until `died` takes it back (after APR
    // unregisters it) or the pool's cleanup has unregistered it; APR calls
    // `died` on the parent's thread only.
    unsafe {
        sys::apr_proc_other_child_register(
            &mut (*s).proc_,
            Some(died),
            s.cast(),
            std::ptr::null_mut(),
            daemons.pconf,
        );
    }
}

/// A process that dies within this of its start counts as a quick death.
const QUICK: Duration = Duration::from_secs(10);

/// How long a replacement waits after `quick` quick deaths in a row: not
/// at all after one, then 1, 2, 4… up to 20 s (mod_wsgi's cap of 3 a minute).
fn backoff(quick: u32) -> Duration {
    match quick {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs((1u64 << (n - 2).min(5)).min(20)),
    }
}

fn info(msg: &str) {
    log::server(crate::wsgi::transport::Level::Info, msg);
}

/// APR's "other child" callback: a daemon process died, or its record is
/// being removed (which frees it).
extern "C" fn died(reason: c_int, data: *mut c_void, status: c_int) {
    let _ = crate::caught(|| {
        if reason == sys::APR_OC_REASON_UNREGISTER as c_int {
            // SAFETY: APR has dropped the record; nothing refers to the Slot.
            let slot = unsafe { Box::from_raw(data as *mut Slot) };
            let name = &slot.daemons.groups[slot.group].def.name;
            info(&format!(
                "Process '{name}' (pid={}) has been deregistered and will no longer be monitored.",
                slot.proc_.pid
            ));
            return;
        }
        if reason == sys::APR_OC_REASON_RESTART as c_int {
            // SAFETY: `data` is the Slot registered in `spawn`, still registered.
            let slot = unsafe { &*(data as *const Slot) };
            info(&format!(
                "Deregistering daemon process '{}' (pid={}); server is restarting or shutting down.",
                slot.daemons.groups[slot.group].def.name, slot.proc_.pid
            ));
            return;
        }
        if reason != sys::APR_OC_REASON_DEATH as c_int && reason != sys::APR_OC_REASON_LOST as c_int
        {
            return;
        }
        let (daemons, gi, index, pid, lived, quick) = {
            // SAFETY: `data` is the Slot registered in `spawn`, still registered.
            let slot = unsafe { &*(data as *const Slot) };
            (
                slot.daemons.clone(),
                slot.group,
                slot.index,
                slot.proc_.pid,
                slot.started.elapsed(),
                slot.quick_deaths,
            )
        };
        let g = &daemons.groups[gi];
        let name = &g.def.name;
        // mod_wsgi's lines, to the letter: `status` is what Apache's MPM
        // passes (an exit code or a signal number), read as a wait status.
        info(&format!(
            "Process '{name}' (pid={pid}) has died; deregistering and restarting it."
        ));
        if libc::WIFEXITED(status) {
            info(&format!(
                "Process '{name}' (pid={pid}) terminated normally, exit code {}",
                libc::WEXITSTATUS(status)
            ));
        } else if libc::WIFSIGNALED(status) {
            info(&format!(
                "Process '{name}' (pid={pid}) terminated by signal {}",
                libc::WTERMSIG(status)
            ));
        }
        // SAFETY: the record is registered; APR asks the caller to remove it
        // (which calls back with UNREGISTER and frees the Slot).
        unsafe { sys::apr_proc_other_child_unregister(data) };
        let id = daemons.table.slot_id(&daemons, gi, index);
        let cause = daemons.table.died(id, pid, status);
        crate::metrics::record::proc_died(id, &g.def.name, cause);
        let quick = match cause {
            // A service script that keeps returning is restarted like a crash.
            Cause::Recycled(Reason::ServiceScripts) if lived < QUICK => quick + 1,
            Cause::Recycled(_) => 0,
            _ if lived >= QUICK => 1,
            _ => quick + 1,
        };
        let delay = backoff(quick);
        // What mod_wsgi does not say: why, and the back-off.
        let msg = format!(
            "Process '{name}' (pid={pid}) {}; restarting it{}.",
            cause.describe(),
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {} s", delay.as_secs())
            }
        );
        let level = match cause {
            Cause::Recycled(_) => crate::wsgi::transport::Level::Info,
            _ => crate::wsgi::transport::Level::Error,
        };
        log::server(level, &msg);
        spawn(&daemons, gi, index, quick);
    });
}

/// The configuration pool is going: restart or stop. The daemons are asked
/// to stop (they finish what they serve and take what is queued on their
/// sockets first). On a stop, the parent waits for them, up to their
/// shutdown-timeout, so none outlives Apache.
extern "C" fn stop_all(data: *mut c_void) -> sys::apr_status_t {
    let _ = crate::caught(|| {
        // SAFETY: `data` is the pool-owned Arc<Daemons> registered in `start`.
        let daemons = unsafe { &*(data as *const Arc<Daemons>) };
        let pids = daemons.table.pids();
        for &pid in &pids {
            // SAFETY: plain signal to a process of ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        // SAFETY: a plain query of Apache's state.
        let exiting =
            unsafe { sys::ap_state_query(sys::AP_SQ_MAIN_STATE) } == sys::AP_SQ_MS_EXITING;
        if exiting {
            let limit = daemons
                .groups
                .iter()
                .map(|g| g.def.shutdown_timeout)
                .max()
                .unwrap_or_default()
                + Duration::from_secs(1);
            wait_for(&pids, limit);
            for g in &daemons.groups {
                let _ = std::fs::remove_file(&g.socket);
            }
        }
        for g in &daemons.groups {
            // SAFETY: the parent's copy of the listener; the daemons keep theirs
            // to drain what is queued.
            unsafe { libc::close(g.listener) };
        }
    });
    sys::APR_SUCCESS as sys::apr_status_t
}

/// Reaps `pids` until all are gone or `limit` passes; then kills the rest.
fn wait_for(pids: &[libc::pid_t], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut left: Vec<libc::pid_t> = pids.to_vec();
    while !left.is_empty() && Instant::now() < deadline {
        // SAFETY: non-blocking waits for our own children.
        left.retain(|&p| unsafe { libc::waitpid(p, std::ptr::null_mut(), libc::WNOHANG) } == 0);
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in left {
        // SAFETY: as above; SIGKILL cannot be refused.
        unsafe {
            libc::kill(p, libc::SIGKILL);
            libc::waitpid(p, std::ptr::null_mut(), 0);
        }
    }
}
