//! `serve`: writes the server root and runs Apache in the foreground until
//! Ctrl-C or SIGTERM; `setup-server`: writes it only.
//!
//! Apache runs in a process group of its own, so that a terminal's signals
//! reach this process only: Ctrl-C and SIGTERM become one SIGTERM to Apache
//! (a full stop), SIGUSR1 passes through (graceful restart), and SIGWINCH from
//! a resized terminal (Apache's graceful-stop) is dropped. Once Apache has
//! gone, anything left in its group is stopped too.
use crate::options::ServerArgs;
use crate::server_root::Server;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn setup(args: ServerArgs) -> Result<i32, String> {
    if args.server_root.is_none() {
        return Err(
            "setup-server needs --server-root DIR: the directory to write the \
                    configuration, apachectl and logs into."
                .into(),
        );
    }
    let server = Server::resolve(&args)?;
    server.write()?;
    let root = &server.plan.server_root;
    banner(&server, &args);
    println!(
        "\nWrote {}. Start it with `{}/apachectl start` (or `apachectl start -DFOREGROUND` under systemd).",
        root.display(),
        root.display()
    );
    Ok(0)
}

pub fn serve(args: ServerArgs) -> Result<i32, String> {
    let server = Server::resolve(&args)?;
    server.write()?;
    banner(&server, &args);
    run(&server, &args)
}

fn banner(server: &Server, args: &ServerArgs) {
    let p = &server.plan;
    let name = p.server_name();
    let url_host = if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    let root = p.server_root.display();
    let mut lines = vec![("Server URL", format!("http://{url_host}:{}/", p.port))];
    if let Some(h) = &p.https {
        lines.push((
            "Server URL (HTTPS)",
            format!("https://{url_host}:{}/", h.port),
        ));
    }
    lines.push(("Server Root", root.to_string()));
    lines.push(("Server Conf", server.conf().display().to_string()));
    let shown = |file: Option<PathBuf>, terminal: &str| {
        file.map_or(terminal.to_string(), |f| f.display().to_string())
    };
    lines.push(("Error Log File", shown(p.error_log_file(), "(stderr)")));
    if p.access_log {
        lines.push(("Access Log File", shown(p.access_log_file(), "(stdout)")));
    }
    lines.push(("Application", p.mount.script.display().to_string()));
    let mode = match &p.daemon {
        Some(d) => format!("daemon (process group '{}')", d.name),
        None => "embedded".into(),
    };
    lines.push(("Operating Mode", mode));
    lines.push((
        "Request Capacity",
        format!(
            "{} ({} process{} * {} thread{})",
            args.processes * args.threads,
            args.processes,
            if args.processes == 1 { "" } else { "es" },
            args.threads,
            if args.threads == 1 { "" } else { "s" }
        ),
    ));
    if p.daemon.is_some() {
        lines.push((
            "Request Timeout",
            format!("{} (seconds)", args.request_timeout),
        ));
        lines.push((
            "Startup Timeout",
            format!("{} (seconds)", args.startup_timeout),
        ));
        lines.push(("Queue Timeout", format!("{} (seconds)", args.queue_timeout)));
    }
    let mpm = format!("{:?}", p.mpm).to_lowercase();
    lines.push(("Server Capacity", format!("{} ({mpm} MPM)", p.max_clients)));
    if let Some((user, group)) = &p.run_as {
        lines.push(("Run As", format!("{user} (group {group})")));
    }
    if args.reload_on_changes {
        lines.push((
            "Reloading",
            "on: a changed Python file restarts its process".into(),
        ));
    }
    let mut out = std::io::stdout().lock();
    for (k, v) in lines {
        let _ = writeln!(out, "{k:<19}: {v}");
    }
    let _ = out.flush();
}

/// The signals that stop (or restart) Apache through us. A shell starts
/// `cmd &` with SIGINT ignored, and an ignored signal is dropped even when
/// blocked, so their defaults are taken back before they are blocked.
const STOP_SIGNALS: [libc::c_int; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
];

/// Blocks the signals this process waits for (STOP_SIGNALS, SIGWINCH,
/// SIGCHLD) before Apache exists, so that none is lost; sigwait takes them.
fn take_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a local set; this thread is the
    // only one; SIG_DFL is a valid disposition for each of these signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS {
            libc::signal(s, libc::SIG_DFL);
            libc::sigaddset(&mut set, s);
        }
        libc::sigaddset(&mut set, libc::SIGWINCH);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn run(server: &Server, args: &ServerArgs) -> Result<i32, String> {
    let set = take_signals();
    append_to_log_files();
    // Embedded mode's reloader runs in Apache's children, as a user that
    // cannot signal Apache: it asks us for the graceful restart on a pipe.
    let reload = if args.reload_on_changes && server.plan.daemon.is_none() {
        Some(pipe()?)
    } else {
        None
    };
    let mut cmd = apache_command(server, args, reload.map(|[_, write_end]| write_end));
    // Apache's orphans (a daemon whose parent died) become ours, so that we
    // can wait for them; as a container's PID 1 we reap them anyway.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.httpd.display()))?;
    let pid = child.id() as libc::pid_t;
    if let Some([read_end, write_end]) = reload {
        // SAFETY: write_end is ours and now Apache's too; we no longer need it.
        unsafe { libc::close(write_end) };
        std::thread::spawn(move || restart_on_request(read_end, pid));
    }
    let (status, stopping) = wait_for_apache(pid, &set);
    reap_group(pid);
    exit_code(server, status, stopping)
}

/// A close-on-exec pipe: [read end, write end].
fn pipe() -> Result<[libc::c_int; 2], String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot make a pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fds)
}

/// Apache in the foreground, in a process group of its own, with no signal
/// blocked; `inherit` is a descriptor it keeps (the reload pipe).
fn apache_command(server: &Server, args: &ServerArgs, inherit: Option<libc::c_int>) -> Command {
    let mut cmd = Command::new(&server.httpd);
    cmd.arg("-f").arg(server.conf()).arg("-DFOREGROUND");
    if args.startup_log {
        cmd.arg("-E")
            .arg(server.plan.server_root.join("startup_log"));
    }
    if let Some(d) = &server.plan.daemon {
        cmd.env("LANG", &d.lang);
    }
    if let Some(fd) = inherit {
        cmd.env("MOD_WSGI_RS_RELOAD_FD", fd.to_string());
    }
    cmd.stdin(Stdio::null());
    // SAFETY: the closure only calls async-signal-safe functions (sigprocmask,
    // setpgid, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::setpgid(0, 0);
            if let Some(fd) = inherit {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
    cmd
}

/// Takes the blocked signals until Apache exits: its status, and whether a
/// stop was asked for.
fn wait_for_apache(pid: libc::pid_t, set: &libc::sigset_t) -> (ExitStatus, bool) {
    let mut stopping = false;
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: set is initialised and blocked; sig is a valid out-parameter.
        if unsafe { libc::sigwait(set, &mut sig) } != 0 {
            continue;
        }
        match sig {
            libc::SIGCHLD => {
                if let Some(status) = reap(pid) {
                    return (status, stopping);
                }
            }
            libc::SIGUSR1 => {
                // SAFETY: pid is our child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGUSR1) };
            }
            libc::SIGWINCH => {}
            _ => {
                if !stopping {
                    eprintln!("mod_wsgi_rs: stopping Apache (pid {pid})");
                }
                stopping = true;
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
}

/// serve's exit status: 0 after a requested stop, else Apache's.
fn exit_code(server: &Server, status: ExitStatus, stopping: bool) -> Result<i32, String> {
    match status.code() {
        Some(0) => Ok(0),
        Some(code) if !stopping => {
            let see = match server.plan.error_log_file() {
                Some(file) => file.display().to_string(),
                None => "the messages above".to_string(),
            };
            eprintln!("mod_wsgi_rs: Apache exited with status {code}; see {see}");
            Ok(code)
        }
        _ if stopping => Ok(0),
        _ => Err(format!("Apache was killed ({status})")),
    }
}

/// Asks Apache for a graceful restart whenever a reloader writes to the
/// pipe; one restart for the requests of every child that saw the change.
fn restart_on_request(fd: libc::c_int, apache: libc::pid_t) {
    let mut buf = [0u8; 64];
    let mut last: Option<Instant> = None;
    loop {
        // SAFETY: buf is a live buffer of its length; fd is the pipe's read end.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0
            || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted)
        {
            return;
        }
        if n > 0 && last.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            last = Some(Instant::now());
            // SAFETY: apache is our child; SIGUSR1 is its graceful restart.
            unsafe { libc::kill(apache, libc::SIGUSR1) };
        }
    }
}

/// With --log-to-terminal Apache reopens /dev/stdout and /dev/stderr, which
/// for a regular file (`serve … > log`) is a new description that appends:
/// ours must append too, or our lines overwrite Apache's.
fn append_to_log_files() {
    for fd in [1, 2] {
        // SAFETY: fstat and fcntl only read and set flags of our own descriptors.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, flags | libc::O_APPEND);
                }
            }
        }
    }
}

/// Reaps every exited child; Apache's exit status if it was one of them.
fn reap(apache: libc::pid_t) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-parameter; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == apache {
            found = Some(ExitStatus::from_raw(status));
        }
    }
}

/// Waits up to 10 s for the rest of Apache's process group (its children and
/// daemons) to go, then kills what is left, so nothing outlives `serve`.
fn reap_group(pgid: libc::pid_t) {
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: kill with signal 0 only checks; -pgid names Apache's group.
    while unsafe { libc::kill(-pgid, 0) } == 0 {
        reap(0);
        if Instant::now() >= deadline {
            eprintln!(
                "mod_wsgi_rs: processes of Apache's group {pgid} still running; killing them"
            );
            // SAFETY: as above; the group is Apache's, made by setpgid in the child.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(100));
            reap(0);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
