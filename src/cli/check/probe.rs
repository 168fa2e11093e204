//! Runs the probe `probe.py` in a Python subprocess (as the user Apache runs
//! the application as, when root), with a timeout, and reads its report: a
//! line protocol on its stdout, the application's output on its stderr.
use super::python_env::Python;
use super::target::Target;
use crate::accounts::Account;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The probe, and the module's own per-interpreter helpers (its `mod_wsgi`
/// module: the Python path and refused-extension logic are the module's).
const PROBE: &str = include_str!("probe.py");
const HELPERS: &str = include_str!("../../python/helpers.py");
/// `python -c BOOT`: reads the helpers and the probe from stdin, runs the probe.
const BOOT: &str = "import sys; HELPERS, SOURCE = sys.stdin.read().split('\\0', 1); \
                    exec(compile(SOURCE, '<mod_wsgi_rs check>', 'exec'))";

/// What a probe reported, in order, and how its process ended.
pub(super) struct ProbeRun {
    records: Vec<(String, String)>,
    /// The application's output (the probe's stderr).
    pub(super) output: String,
    /// Why the probe did not finish, if it did not.
    pub(super) failure: Option<String>,
}

impl ProbeRun {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.records
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the probe's records: `key value` lines, `\n` and `\\` escaped.
fn parse_records(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let mut out = String::with_capacity(value.len());
            let mut chars = value.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(other) => out.push(other),
                        None => out.push('\\'),
                    }
                } else {
                    out.push(c);
                }
            }
            (key.to_string(), out)
        })
        .collect()
}

fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string.
    let name = unsafe { libc::strsignal(sig) };
    if name.is_null() {
        format!("signal {sig}")
    } else {
        // SAFETY: non-null, NUL-terminated.
        let text = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
        format!("signal {sig} ({text})")
    }
}

/// A pipe read to its end by a thread into a shared buffer, so that what
/// arrived is there even if a process the application started keeps the
/// pipe open.
struct PipeReader {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
}

impl PipeReader {
    fn start(mut pipe: impl Read + Send + 'static) -> PipeReader {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(AtomicBool::new(false));
        let (b, e) = (buf.clone(), eof.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                b.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]);
            }
            e.store(true, Ordering::Release);
        });
        PipeReader { buf, eof }
    }

    fn at_end(&self) -> bool {
        self.eof.load(Ordering::Acquire)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Everything a probe needs to know.
pub(super) struct Probe<'a> {
    pub(super) python: &'a Python,
    pub(super) target: &'a Target,
    pub(super) callable: &'a str,
    pub(super) group: &'a str,
    pub(super) workdir: Option<PathBuf>,
    pub(super) python_path: Vec<PathBuf>,
    /// Switch to this account first (when root).
    pub(super) run_as: Option<&'a Account>,
    pub(super) timeout: Duration,
}

impl Probe<'_> {
    /// The probe's command line for MODE (`main`, `sub` or `sub-own-gil`).
    fn command(&self, mode: &str) -> Command {
        let mut cmd = Command::new(&self.python.executable);
        cmd.args([
            "-s",
            "-B",
            "-X",
            "faulthandler",
            "-c",
            BOOT,
            mode,
            self.target.kind(),
        ])
        .arg(self.target.text())
        .arg(self.target.module_name())
        .arg(self.callable)
        .arg(self.group)
        .arg(self.workdir.as_deref().unwrap_or(Path::new("")))
        .args(&self.python_path)
        .current_dir("/")
        .env("MOD_WSGI_RS_CHECK_VERSION", env!("CARGO_PKG_VERSION"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // Apache's environment usually has none of them.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PYTHON") {
                cmd.env_remove(k);
            }
        }
        if let Some(who) = self.run_as {
            let (uid, gid, groups) = (who.uid, who.gid, who.groups.clone());
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd
    }

    /// Runs the probe in MODE and collects its report.
    pub(super) fn run(&self, mode: &str) -> Result<ProbeRun, String> {
        let mut child = self
            .command(mode)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.python.executable.display()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = format!("{HELPERS}\0{PROBE}");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = PipeReader::start(child.stdout.take().expect("piped stdout"));
        let err = PipeReader::start(child.stderr.take().expect("piped stderr"));
        let status = self.wait(&mut child)?;
        let _ = writer.join();
        // What is still in the pipes, unless a child of the application holds them open.
        let drained = Instant::now() + Duration::from_secs(1);
        while !(out.at_end() && err.at_end()) && Instant::now() < drained {
            std::thread::sleep(Duration::from_millis(10));
        }
        let records = parse_records(&out.text());
        let output = err.text();
        let finished = records.iter().any(|(k, _)| k == "done");
        let failure = match status {
            None => Some(format!(
                "it did not finish within {} seconds (--timeout)",
                self.timeout.as_secs()
            )),
            Some(_) if finished => None,
            Some(s) => Some(match (s.code(), s.signal()) {
                (_, Some(sig)) => format!("Python was killed by {}", signal_name(sig)),
                (Some(code), _) => format!("Python exited with status {code}"),
                _ => "Python ended abnormally".into(),
            }),
        };
        Ok(ProbeRun {
            records,
            output,
            failure,
        })
    }

    /// Waits for the probe's process to end; None when it had to be killed at
    /// the timeout.
    fn wait(&self, child: &mut Child) -> Result<Option<std::process::ExitStatus>, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(Some(status)),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(None);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("cannot wait for Python: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_records() {
        let r = parse_records("load failed\ntraceback line 1\\nline 2 \\\\n\ndone \nempty\n");
        assert_eq!(
            r,
            [
                ("load".to_string(), "failed".to_string()),
                ("traceback".into(), "line 1\nline 2 \\n".into()),
                ("done".into(), "".into()),
                ("empty".into(), "".into()),
            ]
        );
    }
}
