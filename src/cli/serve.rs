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
use std::process::{Command, Stdio};
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
    let error_log = if p.log_to_terminal {
        "(stderr)".to_string()
    } else {
        p.server_root.join("error_log").display().to_string()
    };
    lines.push(("Error Log File", error_log));
    if p.access_log {
        let access_log = if p.log_to_terminal {
            "(stdout)".to_string()
        } else {
            p.server_root.join("access_log").display().to_string()
        };
        lines.push(("Access Log File", access_log));
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

/// The signals this process waits for instead of being killed by them.
fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGCHLD,
        ] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn run(server: &Server, args: &ServerArgs) -> Result<i32, String> {
    let set = signal_set();
    // Block them before Apache exists, so none is lost; sigwait takes them.
    // An ignored signal is dropped even when blocked, and a shell starts
    // background commands with SIGINT ignored: take the defaults back first.
    // SAFETY: set is initialised; this thread is the only one; SIG_DFL is a
    // valid disposition for each of these signals.
    unsafe {
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
        ] {
            libc::signal(s, libc::SIG_DFL);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    append_to_log_files();
    let mut cmd = Command::new(&server.httpd);
    cmd.arg("-f").arg(server.conf()).arg("-DFOREGROUND");
    if args.startup_log {
        cmd.arg("-E")
            .arg(server.plan.server_root.join("startup_log"));
    }
    if let Some(d) = &server.plan.daemon {
        cmd.env("LANG", &d.lang);
    }
    cmd.stdin(Stdio::null());
    // Embedded mode's reloader runs in Apache's children, as a user that
    // cannot signal Apache: it asks us for the graceful restart on a pipe.
    let reload = if args.reload_on_changes && server.plan.daemon.is_none() {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe2 returns.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!(
                "cannot make a pipe: {}",
                std::io::Error::last_os_error()
            ));
        }
        cmd.env("MOD_WSGI_RS_RELOAD_FD", fds[1].to_string());
        Some(fds)
    } else {
        None
    };
    let inherit = reload.map(|fds| fds[1]);
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
    let mut stopping = false;
    let status = loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: set is initialised and blocked; sig is a valid out-parameter.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        match sig {
            libc::SIGCHLD => {
                if let Some(status) = reap(pid) {
                    break status;
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
    };
    reap_group(pid);
    match status.code() {
        Some(0) => Ok(0),
        Some(code) if !stopping => {
            eprintln!(
                "mod_wsgi_rs: Apache exited with status {code}; see {}",
                if server.plan.log_to_terminal {
                    "the messages above".to_string()
                } else {
                    server
                        .plan
                        .server_root
                        .join("error_log")
                        .display()
                        .to_string()
                }
            );
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
fn reap(apache: libc::pid_t) -> Option<std::process::ExitStatus> {
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
            found = Some(std::process::ExitStatus::from_raw(status));
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
