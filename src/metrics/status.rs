//! mod_status' status_hook: a "mod_wsgi_rs daemon process groups" section
//! on /server-status (and key: value lines in its ?auto form).
use super::snapshot::{self, Capacity};
use crate::apache::sys;
use std::fmt::Write;

/// mod_status.h's AP_STATUS_SHORT: the ?auto form.
const AP_STATUS_SHORT: i32 = 0x1;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The section's text for these groups.
pub fn section(groups: &[(String, Capacity)], short: bool) -> String {
    let mut s = String::new();
    if short {
        for (name, c) in groups {
            let pids: Vec<String> = c.procs.iter().map(|p| p.pid.to_string()).collect();
            let _ = writeln!(s, "WSGIDaemon {name} Processes: {}", c.procs.len());
            let _ = writeln!(s, "WSGIDaemon {name} Pids: {}", pids.join(" "));
            let _ = writeln!(s, "WSGIDaemon {name} Threads: {}", c.threads);
            let _ = writeln!(s, "WSGIDaemon {name} BusyThreads: {}", c.busy);
            let _ = writeln!(
                s,
                "WSGIDaemon {name} IdleThreads: {}",
                c.threads - c.busy.min(c.threads)
            );
        }
        return s;
    }
    s.push_str("<hr /><h2>mod_wsgi_rs daemon process groups</h2>\n");
    if groups.is_empty() {
        s.push_str("<p>No daemon process group is configured.</p>\n");
        return s;
    }
    s.push_str("<table border=\"0\"><tr><th>Group</th><th>PID</th><th>Busy threads</th><th>Idle threads</th><th>Requests</th><th>Interpreters</th><th>RSS (KiB)</th></tr>\n");
    for (name, c) in groups {
        let name = html_escape(name);
        if c.procs.is_empty() {
            let _ = writeln!(
                s,
                "<tr><td>{name}</td><td colspan=\"6\">no process running</td></tr>"
            );
        }
        for p in &c.procs {
            let _ = writeln!(
                s,
                "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.pid,
                p.busy.min(p.threads),
                p.threads - p.busy.min(p.threads),
                p.requests,
                p.interpreters,
                p.rss.map_or("-".to_string(), |r| (r / 1024).to_string()),
            );
        }
    }
    s.push_str("</table>\n");
    s
}

/// The status_hook.
///
/// # Safety
/// `r` is the live /server-status request.
pub unsafe fn hook(r: *mut sys::request_rec, flags: i32) -> i32 {
    let Some(a) = super::record::area() else {
        return sys::OK;
    };
    let mut cap = snapshot::capacity(a);
    let mut groups: Vec<(String, Capacity)> = super::current_groups()
        .into_iter()
        .map(|g| {
            let c = cap.remove(&g).unwrap_or_default();
            (g, c)
        })
        .collect();
    groups.extend(cap);
    let text = section(&groups, flags & AP_STATUS_SHORT != 0);
    // SAFETY: r is live in mod_status' handler.
    unsafe { super::write(r, text.as_bytes()) };
    sys::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_html_forms() {
        let c = Capacity {
            procs: vec![snapshot::ProcInfo {
                pid: 42,
                threads: 3,
                busy: 1,
                interpreters: 1,
                requests: 7,
                rss: Some(4096),
            }],
            threads: 3,
            busy: 1,
        };
        let g = vec![("a<b".to_string(), c)];
        let short = section(&g, true);
        assert!(short.contains("WSGIDaemon a<b BusyThreads: 1\n"));
        assert!(short.contains("WSGIDaemon a<b IdleThreads: 2\n"));
        let html = section(&g, false);
        assert!(html.contains("mod_wsgi_rs daemon process groups"));
        assert!(html.contains("a&lt;b"));
    }
}
