//! A daemon process: forked by the Apache parent, it becomes the group's
//! user, starts Python with the group's settings and serves requests from
//! the group's socket on `threads` threads, until it is told to stop or
//! recycles itself (maximum-requests, restart-interval, …).
use super::protocol::{self, FrameReader, Kind, Refusal};
use super::shared::{Cause, Reason};
use super::supervisor::{Daemons, Group};
use super::transport::DaemonTransport;
use crate::apache::{log, sys};
use crate::config::ServerConfig;
use crate::python::interp::Interp;
use crate::python::objects::ProcessInfo;
use crate::python::runtime;
use crate::wsgi::app::{self, NoResponse};
use crate::wsgi::exchange::Exchange;
use crate::wsgi::head::{Key, RequestHead, VarName};
use crate::wsgi::transport::Level;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Serving; taking what is still queued, then stopping; stopping.
const SERVE: u8 = 0;
const DRAIN: u8 = 1;
const STOP: u8 = 2;

struct State {
    group: Arc<Group>,
    interp: &'static Interp,
    mode: AtomicU8,
    /// An eventfd that becomes readable (for good) when `mode` leaves SERVE.
    wake: OwnedFd,
    /// One thread at a time polls and accepts (the others wait here), so a
    /// connection wakes one thread per process, not all of them.
    accept_lock: Mutex<()>,
    active: AtomicUsize,
    served: AtomicU64,
    /// Milliseconds since `born` when the last request ended.
    last_done: AtomicU64,
    /// Per request thread: milliseconds since `born` (+1) when its current
    /// request started, 0 when idle.
    busy_since: Vec<AtomicU64>,
    /// A request found its script changed: the process restarts.
    script_changed: AtomicBool,
    /// Milliseconds since `born` when the GIL was last taken by the
    /// deadlock watcher (deadlock-timeout).
    gil_seen: AtomicU64,
    /// Per request thread: its thread id (Python's threading.get_ident).
    idents: Vec<AtomicU64>,
    /// Per request thread: when (as busy_since) its request was interrupted
    /// with mod_wsgi.RequestTimeout, 0 if it was not.
    interrupted: Vec<AtomicU64>,
    /// Per request thread: 1 + the id of the interpreter its request runs
    /// in (0: none).
    serving: Vec<AtomicUsize>,
    born: Instant,
}

impl State {
    fn set_mode(&self, m: u8) {
        if self.mode.fetch_max(m, Ordering::SeqCst) < m {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writing 8 bytes to our own eventfd.
            unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), 8) };
        }
    }
    fn mode(&self) -> u8 {
        self.mode.load(Ordering::SeqCst)
    }
}

fn info(msg: &str) {
    log::server(Level::Info, msg);
}

fn error(msg: &str) {
    log::server(Level::Error, msg);
}

/// The daemon process's life, after the fork. Never returns.
pub fn run(daemons: &Arc<Daemons>, gi: usize, slot: usize, id: usize, delay: Duration) -> ! {
    let group = daemons.groups[gi].clone();
    crate::metrics::record::set_server_metrics(group.def.server_metrics);
    let res = crate::caught(|| serve_process(daemons, &group, id, delay));
    let (cause, code) = match res {
        Ok(Ok(reason)) => (Cause::Recycled(reason), 0),
        Ok(Err(e)) => {
            // The error is mod_wsgi's line where it has one.
            error(&e);
            (Cause::Exited(1), 1)
        }
        Err(panic) => {
            error(&format!(
                "Internal error in daemon process '{}': {panic}",
                group.def.name
            ));
            (Cause::Exited(2), 2)
        }
    };
    let _ = slot;
    daemons.table.last_words(id, cause);
    info(&format!("Exiting daemon process '{}'.", group.def.name));
    // SAFETY: ends this process without running the parent's exit handlers
    // or pool cleanups, which belong to Apache's parent.
    unsafe { libc::_exit(code) }
}

/// Signals the main thread waits for; blocked in every thread.
fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGXCPU,
            libc::SIGWINCH,
        ] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

static SLOT_ID: AtomicUsize = AtomicUsize::new(usize::MAX);
static DAEMON_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static TABLE: std::sync::OnceLock<Arc<Daemons>> = std::sync::OnceLock::new();

/// A fatal signal: record it as the process's last words, then die of it.
extern "C" fn fatal(sig: libc::c_int) {
    // SAFETY: getpid is async-signal-safe. A process forked by the
    // application does not speak for the daemon.
    let own = unsafe { libc::getpid() } == DAEMON_PID.load(Ordering::Relaxed);
    if let (true, Some(d)) = (own, TABLE.get()) {
        d.table
            .last_words(SLOT_ID.load(Ordering::Relaxed), Cause::Signal(sig));
    }
    // SAFETY: async-signal-safe calls: restore the default action and re-raise.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Leaves the parent's signal handlers behind: default actions, SIGPIPE
/// ignored (a closed connection is an error return), fatal signals noted.
fn reset_signals(daemons: &Arc<Daemons>, id: usize) {
    let _ = TABLE.set(daemons.clone());
    SLOT_ID.store(id, Ordering::Relaxed);
    DAEMON_PID.store(std::process::id() as i32, Ordering::Relaxed);
    // SAFETY: setting dispositions in a single-threaded process.
    unsafe {
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
            libc::SIGCHLD,
            libc::SIGXCPU,
            libc::SIGALRM,
        ] {
            libc::signal(s, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        for s in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGABRT,
            libc::SIGFPE,
            libc::SIGILL,
        ] {
            libc::signal(s, fatal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
        let empty = {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        };
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

fn serve_process(
    daemons: &Arc<Daemons>,
    group: &Arc<Group>,
    id: usize,
    delay: Duration,
) -> Result<Reason, String> {
    reset_signals(daemons, id);
    crate::wsgi::metrics_api::process_started(true);
    if !leave_parent(daemons, group) {
        return Ok(Reason::Shutdown);
    }
    if let Some(vhost) = &group.def.server_name {
        // SAFETY: the server records live as long as this process.
        unsafe {
            let s = find_server(vhost);
            log::set_process_server(s);
            log::redirect_stderr(s);
        }
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let def = &group.def;
    set_title(group);
    super::identity::apply_limits(def);
    // SAFETY: geteuid is a plain query.
    let root = unsafe { libc::geteuid() } == 0;
    let (uid, gid) = super::identity::become_user(def)?;
    // SAFETY: ap_server_conf is the live main server of this generation.
    let main_cfg =
        unsafe { &*(sys::wsgi_rs_server_config(sys::ap_server_conf) as *const ServerConfig) };
    info(&if root {
        format!(
            "Starting daemon process '{}' with uid={uid}, gid={gid} and threads={}.",
            def.name, def.threads
        )
    } else {
        format!(
            "Starting daemon process '{}' with threads={}.",
            def.name, def.threads
        )
    });
    if def.threads == 0 {
        return serve_scripts(daemons, group, id, main_cfg);
    }
    // The main thread takes the stop signals with sigtimedwait; every
    // thread started from here on inherits the mask.
    let set = signal_set();
    // SAFETY: blocking signals in this (still only) thread.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let interp =
        start_python(daemons, group, id, main_cfg).map_err(python_failed(&group.def.name))?;
    if let Some(limit) = def.startup_timeout {
        watch_startup(daemons.clone(), id, limit, def.name.clone());
    }
    // SAFETY: the main server of this generation is live.
    crate::embedded::child::preload(unsafe { sys::ap_server_conf }, &def.name);
    let state = Arc::new(State::new(group.clone(), interp));
    crate::metrics::record::daemon_live(id, &def.name, def.threads);
    let workers = start_threads(&state)?;
    let signals = super::signals::Dispatcher::start(&def.name);
    crate::telemetry::start(crate::telemetry::Identity {
        process_group: def.name.clone(),
        daemon: true,
        threads: def.threads as usize,
        mpm_name: crate::embedded::child::server_info().mpm_name,
        apache_version: crate::embedded::child::apache_version(),
    });
    // Ready: Apache's children now queue requests for this process.
    daemons.table.live(id, std::process::id() as i32);
    let reason = supervise(&state, &set, signals.as_ref());
    if let Some(d) = signals {
        // Bounded: a wedged callback must not eat the shutdown time.
        d.stop(def.shutdown_timeout.min(Duration::from_secs(1)));
    }
    if reason != Reason::Shutdown {
        // Recycling takes no more requests: queued ones wait for the replacement.
        daemons.table.live(id, 0);
    }
    let busy = def.graceful_timeout > Duration::ZERO && state.active.load(Ordering::SeqCst) > 0;
    if let Some(why) = stop_line(reason, &def.name, busy) {
        info(&why);
    }
    info(&format!("Stopping process '{}'.", def.name));
    crate::telemetry::stopping(reason.event_name());
    Interp::process_exiting();
    stop(&state, reason, workers);
    crate::telemetry::stopped();
    if reason != Reason::DeadlockTimeout && state.active.load(Ordering::SeqCst) == 0 {
        // atexit callbacks need the GIL, which a stuck thread may hold.
        runtime::shutdown(Instant::now() + def.shutdown_timeout, reason.event_name());
    }
    Ok(reason)
}

/// Python could not start: the cause is logged, then mod_wsgi's line is
/// the process's last word.
fn python_failed(name: &str) -> impl FnOnce(String) -> String + '_ {
    move |e| {
        error(&e);
        format!("WSGI0028: Python initialisation failed in daemon process '{name}'; Python based handlers will not be available.")
    }
}

/// mod_wsgi's line for why a daemon process stops (`busy`: it waits for
/// requests in flight first); None where another line already said it.
fn stop_line(reason: Reason, name: &str, busy: bool) -> Option<String> {
    let (waiting, now) = match reason {
        Reason::Shutdown | Reason::ScriptReload => {
            return Some(format!("Shutdown requested for daemon process '{name}'."))
        }
        Reason::MaximumRequests => (
            "Maximum requests reached; attempting graceful shutdown of daemon process",
            "Maximum requests reached; triggering immediate shutdown of daemon process",
        ),
        Reason::RestartInterval => (
            "Application restart timer expired; waiting for in-flight requests to complete in process",
            "Application restart timer expired, stopping process",
        ),
        Reason::CpuTimeLimit => (
            "Exceeded CPU time limit; waiting for in-flight requests to complete in daemon process",
            "Exceeded CPU time limit; triggering immediate shutdown of daemon process",
        ),
        Reason::GracefulSignal => (
            "Graceful restart requested; waiting for in-flight requests to complete in daemon process",
            "Graceful restart requested; triggering immediate shutdown of daemon process",
        ),
        Reason::InactivityTimeout => {
            return Some(format!(
                "Daemon process idle inactivity timer expired, stopping process '{name}'."
            ))
        }
        Reason::DeadlockTimeout => {
            return Some(format!(
                "Daemon process deadlock timer expired, stopping daemon process '{name}'."
            ))
        }
        Reason::RequestTimeout | Reason::StartupTimeout | Reason::ServiceScripts => return None,
    };
    Some(format!("{} '{name}'.", if busy { waiting } else { now }))
}

/// threads=0: a process for service scripts (WSGIImportScript with this
/// process group), run in the main thread with the signals' default
/// actions (so a script may install its own handlers). When they return,
/// the process ends and the parent starts another.
fn serve_scripts(
    daemons: &Arc<Daemons>,
    group: &Arc<Group>,
    id: usize,
    main_cfg: &ServerConfig,
) -> Result<Reason, String> {
    // As with mod_wsgi, the application's signals reach no callback here
    // (nor end the process); a script may still install its own handlers.
    // SAFETY: plain (process-wide) disposition changes, before Python starts.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
    }
    let interp =
        start_python(daemons, group, id, main_cfg).map_err(python_failed(&group.def.name))?;
    // SAFETY: the main server of this generation is live.
    let _ = interp;
    crate::embedded::child::preload(unsafe { sys::ap_server_conf }, &group.def.name);
    info(&format!(
        "Service scripts of process '{}' (pid={}) returned.",
        group.def.name,
        std::process::id()
    ));
    runtime::shutdown(
        Instant::now() + group.def.shutdown_timeout,
        Reason::ServiceScripts.event_name(),
    );
    Ok(Reason::ServiceScripts)
}

/// The first virtual host named `name` (where the group was defined), or
/// NULL (the main server).
unsafe fn find_server(name: &str) -> *mut sys::server_rec {
    // SAFETY: the server list is this generation's, read-only here.
    unsafe {
        let mut s = sys::ap_server_conf;
        while !s.is_null() {
            if (*s).is_virtual != 0
                && crate::apache::cstring_lossy((*s).server_hostname).as_deref() == Some(name)
            {
                return s;
            }
            s = (*s).next;
        }
    }
    std::ptr::null_mut()
}

/// What the fork brought from the parent and is not the daemon's: a
/// parent that is already gone (false), Apache's listeners and the other
/// groups' sockets. The process gets SIGTERM when the parent dies.
fn leave_parent(daemons: &Daemons, group: &Group) -> bool {
    // SAFETY: plain syscalls on this process and descriptors it inherited
    // and does not use.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != daemons.parent() {
            return false;
        }
        sys::ap_close_listeners();
        for g in &daemons.groups {
            if g.index != group.index {
                libc::close(g.listener);
            }
        }
    }
    true
}

impl State {
    fn new(group: Arc<Group>, interp: &'static Interp) -> State {
        let per_thread = || (0..group.def.threads).map(|_| AtomicU64::new(0)).collect();
        // SAFETY: eventfd returns a fresh descriptor (checked by OwnedFd's
        // debug assertion), owned by the State from here on.
        let wake = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
        State {
            interp,
            mode: AtomicU8::new(SERVE),
            wake,
            accept_lock: Mutex::new(()),
            active: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            last_done: AtomicU64::new(0),
            busy_since: per_thread(),
            script_changed: AtomicBool::new(false),
            gil_seen: AtomicU64::new(0),
            idents: per_thread(),
            interrupted: per_thread(),
            serving: (0..group.def.threads)
                .map(|_| AtomicUsize::new(0))
                .collect(),
            born: Instant::now(),
            group,
        }
    }
}

/// The request threads, and the GIL watcher for deadlock-timeout.
fn start_threads(state: &Arc<State>) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    let def = &state.group.def;
    let mut workers = Vec::new();
    for n in 0..def.threads {
        let st = state.clone();
        let mut b = std::thread::Builder::new().name(format!("wsgi-daemon-{n}"));
        if let Some(size) = def.stack_size {
            b = b.stack_size(size);
        }
        workers.push(
            b.spawn(move || worker(&st, n as usize))
                .map_err(|e| {
                    format!(
                        "{}: WSGI0022: Unable to create worker thread {n} in daemon process '{}'. Daemon process will exit and be restarted after a delay.",
                        log::os_status(&e),
                        def.name
                    )
                })?,
        );
    }
    if def.deadlock_timeout.is_some() {
        let st = state.clone();
        std::thread::Builder::new()
            .name("wsgi-deadlock".into())
            .spawn(move || watch_gil(&st))
            .map_err(|e| format!("Unable to create deadlock-detection thread in daemon process '{}' ({e}). Daemon process will exit.", def.name))?;
    }
    Ok(workers)
}

fn set_title(group: &Group) {
    let Some(title) = group.def.process_title() else {
        return;
    };
    let c = std::ffi::CString::new(title.replace('\0', "")).unwrap_or_default();
    // SAFETY: PR_SET_NAME copies at most 16 bytes. argv[0] is overwritten in
    // place within its own length (what `ps` shows), as mod_wsgi does.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c.as_ptr());
        let process = (*sys::ap_server_conf).process;
        if process.is_null() || (*process).argv.is_null() || (*(*process).argv).is_null() {
            return;
        }
        let argv0 = *(*process).argv as *mut libc::c_char;
        let room = libc::strlen(argv0);
        let bytes = c.as_bytes();
        let n = bytes.len().min(room);
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast(), argv0, n);
        std::ptr::write_bytes(argv0.add(n), 0, room - n);
    }
}

fn start_python(
    daemons: &Arc<Daemons>,
    group: &Arc<Group>,
    id: usize,
    main_cfg: &ServerConfig,
) -> Result<&'static Interp, String> {
    let def = &group.def;
    let settings = main_cfg.python.for_daemon(
        def.python_home
            .clone()
            .or_else(|| main_cfg.python.home.clone()),
        def.python_path.clone(),
        def.switch_interval,
        def.threads == 0,
    );
    let mpm = crate::embedded::child::server_info();
    let process = ProcessInfo {
        process_group: def.name.clone(),
        multithread: def.threads > 1,
        multiprocess: def.multiprocess,
        group_processes: def.processes as i32,
        group_threads: def.threads as i32,
        ..mpm
    };
    info(&format!(
        "mod_wsgi_rs (pid={}): Initializing Python {}.",
        std::process::id(),
        env!("WSGI_RS_PY_VERSION")
    ));
    let home = def.home.clone();
    let switch = def.switch_interval;
    let table = daemons.clone();
    // Every interpreter of the process (the main one and each application
    // group's) gets the same set-up.
    let extra: runtime::ExtraSetup = Box::new(move |py, objects| {
        use pyo3::prelude::*;
        let sys_mod = py.import("sys")?;
        if let Some(h) = &home {
            sys_mod.getattr("path")?.call_method1("insert", (0, h))?;
        }
        if let Some(s) = switch {
            sys_mod.call_method1("setswitchinterval", (s,))?;
        }
        super::last_words::install(objects.module.bind(py), table.clone(), id)
    });
    runtime::initialize(&settings, process, Some(extra))
}

/// The main thread: waits for a reason to stop.
fn supervise(
    state: &State,
    set: &libc::sigset_t,
    signals: Option<&super::signals::Dispatcher>,
) -> Reason {
    let def = &state.group.def;
    let tick = libc::timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    loop {
        // SAFETY: waits for one of the blocked signals, or the timeout.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &tick) };
        match sig {
            libc::SIGTERM | libc::SIGINT | libc::SIGWINCH => return Reason::Shutdown,
            // The application's signals (mod_wsgi 6): for its callbacks.
            libc::SIGHUP | libc::SIGUSR2 => {
                if let Some(d) = signals {
                    d.deliver(sig);
                }
            }
            libc::SIGUSR1 => return Reason::GracefulSignal,
            libc::SIGXCPU => return Reason::CpuTimeLimit,
            _ => {}
        }
        if state.script_changed.load(Ordering::SeqCst) {
            return Reason::ScriptReload;
        }
        if def.maximum_requests > 0 && state.served.load(Ordering::SeqCst) >= def.maximum_requests {
            return Reason::MaximumRequests;
        }
        let age = state.born.elapsed();
        if def.restart_interval.is_some_and(|i| age >= i) {
            return Reason::RestartInterval;
        }
        if let Some(limit) = def.request_limit() {
            if over_time(state, age, limit) {
                dump_stacks(state, limit);
                return Reason::RequestTimeout;
            }
        }
        if let Some(limit) = def.deadlock_timeout {
            let seen = Duration::from_millis(state.gil_seen.load(Ordering::SeqCst));
            if age.saturating_sub(seen) >= limit {
                return Reason::DeadlockTimeout;
            }
        }
        if let Some(limit) = def.inactivity_timeout {
            let idle_since = Duration::from_millis(state.last_done.load(Ordering::SeqCst));
            if state.active.load(Ordering::SeqCst) == 0 && age.saturating_sub(idle_since) >= limit {
                return Reason::InactivityTimeout;
            }
        }
    }
}

/// Whether a request ran past `limit` and, with interrupt-timeout, is
/// still running that long after it was interrupted (a request just over
/// the limit is interrupted now).
fn over_time(state: &State, age: Duration, limit: Duration) -> bool {
    let now = age.as_millis() as u64 + 1;
    let limit_ms = limit.as_millis() as u64;
    for (n, busy) in state.busy_since.iter().enumerate() {
        let since = busy.load(Ordering::SeqCst);
        if since == 0 || now.saturating_sub(since) < limit_ms {
            continue;
        }
        let Some(grace) = state.group.def.interrupt_timeout else {
            return true;
        };
        let at = state.interrupted[n].load(Ordering::SeqCst);
        if at < since {
            state.interrupted[n].store(now, Ordering::SeqCst);
            interrupt(state, n);
        } else if now.saturating_sub(at) >= grace.as_millis() as u64 {
            return true;
        }
    }
    false
}

/// Raises mod_wsgi.RequestTimeout in request thread `n` (at its next
/// Python instruction: a blocking call finishes first).
fn interrupt(state: &State, n: usize) {
    let ident = state.idents[n].load(Ordering::SeqCst);
    // The exception goes to the thread's state in the interpreter it serves
    // (none: the thread is between requests, nothing to interrupt).
    let Some(interp) = state.serving[n]
        .load(Ordering::SeqCst)
        .checked_sub(1)
        .and_then(Interp::by_id)
    else {
        return;
    };
    // mod_wsgi 6's lines around the injection (with the configured
    // request-timeout, not the per-thread threshold).
    let def = &state.group.def;
    let name = def.name.clone();
    info(&format!(
        "Dumping stack trace for thread {n} of daemon process '{name}' which has exceeded request-timeout of {} seconds, before injecting RequestTimeout to unwind it.",
        def.request_timeout.unwrap_or_default().as_secs()
    ));
    // Another thread takes the GIL, so this one keeps watching.
    let _ = std::thread::Builder::new()
        .name("wsgi-interrupt".into())
        .spawn(move || {
            interp.run(|py| {
                use pyo3::prelude::*;
                let objs = interp.objects();
                let stack = objs.module.bind(py).call_method1("_thread_stack", (ident,));
                if let Ok(lines) = stack.and_then(|l| l.extract::<Vec<String>>()) {
                    lines.iter().for_each(|l| info(l));
                }
                let exc = objs.request_timeout.bind(py);
                // SAFETY: the GIL is held; `exc` is a live exception type.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(ident as libc::c_long, exc.as_ptr())
                };
            });
            info(&format!(
                "Injected RequestTimeout into thread {n} of daemon process '{name}'."
            ));
        });
}

/// startup-timeout: a process that has not loaded a WSGI script (preload
/// or first request) this long after Python started ends, and the parent
/// starts another: a stuck first import (Django's setup()) is not retried
/// in the same process.
fn watch_startup(daemons: Arc<Daemons>, id: usize, limit: Duration, name: String) {
    let _ = std::thread::Builder::new()
        .name("wsgi-startup".into())
        .spawn(move || {
            std::thread::sleep(limit);
            if Interp::all()
                .iter()
                .any(|i| i.ready() && i.objects().any_script_loaded())
            {
                return;
            }
            info(&format!(
                "Application startup timer expired, stopping daemon process '{name}'."
            ));
            daemons
                .table
                .last_words(id, Cause::Recycled(Reason::StartupTimeout));
            // SAFETY: ends the process at once (the import may hold the GIL).
            unsafe { libc::_exit(1) }
        });
}

/// deadlock-timeout: takes the GIL once a second and notes when it did.
fn watch_gil(state: &State) {
    let interp = state.interp;
    while state.mode() == SERVE {
        if interp.run(|_| ()).is_some() {
            let now = state.born.elapsed().as_millis() as u64;
            state.gil_seen.store(now, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Logs where every Python thread is, for a request over its time limit.
/// Done from another thread, given at most 2 s: a thread holding the GIL in
/// C code must not keep this process from restarting.
fn dump_stacks(state: &State, limit: Duration) {
    let def = &state.group.def;
    let _ = limit;
    info(&format!(
        "Daemon process request time limit exceeded, stopping daemon process '{}'.",
        def.name
    ));
    let name = def.name.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("wsgi-stack-dump".into())
        .spawn(move || {
            // Each interpreter knows only its own threads' frames.
            let mut all = Vec::new();
            for interp in Interp::all().into_iter().filter(|i| i.ready()) {
                let lines = interp.run(|py| {
                    use pyo3::prelude::*;
                    interp
                        .objects()
                        .module
                        .bind(py)
                        .getattr("_dump_stacks")
                        .and_then(|f| f.call0())
                        .and_then(|l| l.extract::<Vec<String>>())
                        .unwrap_or_default()
                });
                let lines = lines.unwrap_or_default();
                if !lines.is_empty() {
                    let which = match interp.name() {
                        "" => "main interpreter".to_string(),
                        n => format!("sub-interpreter '{n}'"),
                    };
                    all.push(format!(
                        "Dumping stack trace for active Python threads of {which} in daemon process '{name}'."
                    ));
                    all.extend(lines);
                }
            }
            let _ = tx.send(all);
        });
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(lines) => lines.iter().for_each(|l| info(l)),
        Err(_) => {
            info("The Python threads could not be inspected (the GIL was not released within 2 s).")
        }
    }
}

/// Stops the workers: on Apache's stop or restart, after taking what is
/// still queued on the socket (an old Apache child may still connect);
/// when recycling, at once (the parent keeps the socket open, so queued
/// connections wait for the replacement). In-flight requests finish within
/// the time allowed; then the process exits regardless.
fn stop(state: &Arc<State>, reason: Reason, workers: Vec<std::thread::JoinHandle<()>>) {
    let def = &state.group.def;
    let (mode, allowed) = match reason {
        Reason::Shutdown => (DRAIN, def.shutdown_timeout),
        Reason::DeadlockTimeout => (STOP, def.shutdown_timeout),
        Reason::GracefulSignal => (
            STOP,
            def.eviction_timeout.unwrap_or(def.graceful_timeout) + def.shutdown_timeout,
        ),
        _ => (STOP, def.graceful_timeout + def.shutdown_timeout),
    };
    let deadline = Instant::now() + allowed;
    state.set_mode(mode);
    for w in workers {
        while !w.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if w.is_finished() {
            let _ = w.join();
        }
    }
    if state.active.load(Ordering::SeqCst) > 0 {
        error(&format!(
            "Process '{}' (pid={}) stopped with {} request(s) still running after {:.1} s.",
            def.name,
            std::process::id(),
            state.active.load(Ordering::SeqCst),
            allowed.as_secs_f64()
        ));
    }
}

fn worker(state: &Arc<State>, n: usize) {
    // SAFETY: pthread_self is always safe; it is Python's thread ident here.
    state.idents[n].store(unsafe { libc::pthread_self() } as u64, Ordering::SeqCst);
    while let Some(conn) = next_connection(state) {
        state.active.fetch_add(1, Ordering::SeqCst);
        let since = state.born.elapsed().as_millis() as u64 + 1;
        state.busy_since[n].store(since, Ordering::SeqCst);
        crate::metrics::record::daemon_busy(1);
        let activity = serve_connection(state, conn, n);
        crate::metrics::record::daemon_busy(-1);
        state.busy_since[n].store(0, Ordering::SeqCst);
        state.interrupted[n].store(0, Ordering::SeqCst);
        state.served.fetch_add(1, Ordering::SeqCst);
        if activity {
            let now = state.born.elapsed().as_millis() as u64;
            state.last_done.store(now, Ordering::SeqCst);
        }
        state.active.fetch_sub(1, Ordering::SeqCst);
        let max = state.group.def.maximum_requests;
        if max > 0 && state.served.load(Ordering::SeqCst) >= max {
            // Take no more: the rest wait on the socket for the replacement.
            state.set_mode(STOP);
        }
    }
}

/// The next connection, or None when this thread should end.
fn next_connection(state: &State) -> Option<OwnedFd> {
    let _turn = state.accept_lock.lock().unwrap_or_else(|e| e.into_inner());
    let listener = state.group.listener;
    // Under load a connection is usually queued already: accept first,
    // and poll only when there is none.
    let mut ready = true;
    loop {
        let mode = state.mode();
        if mode == STOP {
            return None;
        }
        if ready {
            // SAFETY: accept on the (non-blocking) listener; the new descriptor is ours.
            let fd = unsafe {
                libc::accept4(
                    listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: a fresh descriptor from accept4.
                return Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: listener,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: state.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // While draining, only the listener counts (the wake fd stays readable).
        let (nfds, timeout) = if mode == DRAIN { (1, 100) } else { (2, -1) };
        // SAFETY: polls descriptors we own for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), nfds, timeout) };
        if n == 0 && mode == DRAIN {
            // Nothing queued: the other threads stop too.
            state.set_mode(STOP);
            return None;
        }
        ready = fds[0].revents & libc::POLLIN != 0;
    }
}

/// The request head, first on the connection, with the child's body window
/// (None: the child gave up, or sent something else, which is logged).
fn read_head(state: &State, reader: &mut FrameReader) -> Option<(RequestHead, usize)> {
    let head = match reader.next() {
        Ok(Some((Kind::Head, payload))) => {
            let mut c = protocol::Cursor::new(payload);
            c.u32().and_then(|window| {
                let head = protocol::decode_head(c.rest())?;
                Ok((head, window as usize))
            })
        }
        Ok(None) => return None,
        Ok(Some(_)) => Err(std::io::Error::other("expected a request head")),
        Err(e) => Err(e),
    };
    let _ = state;
    head.map_err(|_| {
        error("WSGI0080: Unable to read incoming WSGI request from Apache child; request will be aborted with 500.")
    })
    .ok()
}

/// Stops this process because `script` must be reloaded (logged once).
fn restart_for_script(state: &State, script: &str) -> Refusal {
    if !state.script_changed.swap(true, Ordering::SeqCst) {
        info(&format!(
            "Forcing restart of daemon process '{}' due to modification of script '{}'.",
            state.group.def.name, script
        ));
    }
    state.set_mode(STOP);
    Refusal::Restarting
}

/// Why this process does not run the request: its script changed (the
/// process restarts, as mod_wsgi's does, and the child sends the request
/// again), or it waited in the queue past queue-timeout.
fn turn_away(state: &State, head: &RequestHead, arrived: Option<&[u8]>) -> Option<Refusal> {
    let target = &head.target;
    let loaded = Interp::by_name(&target.application_group)
        .filter(|i| i.ready())
        .and_then(|i| i.objects().script_mtime(&target.script));
    if target.script_reloading && loaded.is_some_and(|m| m != target.mtime) {
        return Some(restart_for_script(state, &target.script));
    }
    let limit = state.group.def.queue_timeout?;
    let arrived = arrived
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        .unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    (arrived > 0 && now - arrived > limit.as_micros() as i64).then_some(Refusal::QueueTimeout)
}

/// One request: the head, then the WSGI core over the connection. Returns
/// whether it counts as activity (WSGIIgnoreActivity).
fn serve_connection(state: &State, conn: OwnedFd, n: usize) -> bool {
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        protocol::set_timeout(conn.as_raw_fd(), opt, state.group.socket_timeout);
    }
    let pid = std::process::id().to_le_bytes();
    if protocol::write_frame(conn.as_raw_fd(), Kind::Hello, &[&pid]).is_err() {
        return true; // the child gave up waiting
    }
    let mut reader = FrameReader::new(conn.as_raw_fd());
    let Some((mut head, window)) = read_head(state, &mut reader) else {
        return true;
    };
    head.hand_off.daemon_start = crate::wsgi::recording::now_us();
    let known = |key: Key| {
        head.vars()
            .find(|(n, _, _)| *n == VarName::Known(key))
            .map(|(_, v, _)| v)
    };
    let head_only = known(Key::RequestMethod) == Some(b"HEAD");
    let activity = known(Key::IgnoreActivity) != Some(b"1");
    let arrived =
        known(Key::RequestStart).and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok());
    crate::metrics::record::daemon_request(&state.group.def.name, arrived);
    let mut transport = DaemonTransport::new(reader, head_only, window);
    if let Some(why) = turn_away(state, &head, known(Key::RequestStart)) {
        transport.no_response(why);
        return activity;
    }
    let interp = match runtime::interpreter(&head.target.application_group) {
        Ok(i) => i,
        Err(e) => {
            error(&format!(
                "mod_wsgi_rs: Cannot serve WSGI script '{}' in daemon process '{}': {e}",
                head.target.script, state.group.def.name
            ));
            transport.no_response(Refusal::Error);
            return activity;
        }
    };
    crate::metrics::record::daemon_interpreters(interp.id() as u32 + 1);
    let ex = Exchange::new(interp, &head.target.script, head.body_length);
    state.serving[n].store(interp.id() + 1, Ordering::SeqCst);
    // The script must be reloaded (its reload_required() said yes, or its
    // __mtime__ is gone): the process restarts, as for a changed script.
    // Asked under the GIL the request takes anyway.
    let served = ex.lend(&mut transport, || {
        interp.run(|py| match app::must_reload(py, &ex, &head) {
            true => None,
            false => Some(app::serve(py, &ex, &head)),
        })
    });
    state.serving[n].store(0, Ordering::SeqCst);
    let served = match served {
        Some(None) => {
            transport.no_response(restart_for_script(state, &head.target.script));
            return activity;
        }
        other => other.flatten(),
    };
    match served {
        Some(Ok(())) => {
            transport.complete();
        }
        Some(Err(NoResponse::NotFound)) => transport.no_response(Refusal::NotFound),
        Some(Err(NoResponse::Error)) | None if state.interrupted[n].load(Ordering::SeqCst) > 0 => {
            transport.no_response(Refusal::Interrupted)
        }
        Some(Err(NoResponse::Error)) | None => transport.no_response(Refusal::Error),
    }
    drop(conn);
    activity
}
