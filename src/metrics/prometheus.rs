//! The Prometheus text exposition format (version 0.0.4) of the metrics
//! area: a snapshot taken with relaxed loads (no lock).
use super::record::{FAILURES, RESTART_CAUSES};
use super::shm::{Area, Histogram, BUCKETS, GROUPS, LABELS};
use super::snapshot::{self, Capacity};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value, escaped (backslash, double quote, line feed).
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    inner.join(",")
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP wsgi_rs_{name} {help}");
        let _ = writeln!(self.0, "# TYPE wsgi_rs_{name} {kind}");
    }
    fn line(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "wsgi_rs_{name} {v}");
        } else {
            let _ = writeln!(self.0, "wsgi_rs_{name}{{{labels}}} {v}");
        }
    }
}

/// A histogram's figures added over slots with the same labels.
#[derive(Default, Clone)]
struct Hist {
    buckets: Vec<u64>,
    count: u64,
    sum_us: u64,
}

impl Hist {
    fn add(&mut self, h: &Histogram) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; h.buckets.len()];
        }
        for (d, b) in self.buckets.iter_mut().zip(&h.buckets) {
            *d += b.load(Relaxed);
        }
        self.count += h.count.load(Relaxed);
        self.sum_us += h.sum_us.load(Relaxed);
    }
    fn write(&self, out: &mut Out, name: &str, l: &str) {
        let sep = if l.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cum += n;
            let le = BUCKETS
                .get(i)
                .map_or("+Inf".to_string(), |b| format!("{b}"));
            let _ = writeln!(out.0, "wsgi_rs_{name}_bucket{{{l}{sep}le=\"{le}\"}} {cum}");
        }
        out.line(&format!("{name}_sum"), l, self.sum_us as f64 / 1e6);
        out.line(&format!("{name}_count"), l, self.count);
    }
}

#[derive(Default)]
struct Requests {
    classes: [u64; 5],
    latency: Hist,
    bytes_in: u64,
    bytes_out: u64,
}

/// The whole exposition; `apache_workers` is (busy, idle, limit) from
/// Apache's scoreboard (snapshot::apache_workers).
pub fn render(
    a: &Area,
    current_groups: &[String],
    apache_workers: Option<(u64, u64, u64)>,
) -> String {
    let mut out = Out(String::with_capacity(8192));
    let mut reqs: BTreeMap<(String, String), Requests> = BTreeMap::new();
    for (i, l) in a.labels.iter().enumerate() {
        let (pg, ag) = if i == LABELS - 1 {
            ("(other)".to_string(), "(other)".to_string())
        } else {
            let Some(ag) = l.application_group.get() else {
                continue;
            };
            (l.process_group.get().unwrap_or_default(), ag)
        };
        let r = reqs.entry((pg, ag)).or_default();
        for (d, c) in r.classes.iter_mut().zip(&l.requests) {
            *d += c.load(Relaxed);
        }
        r.latency.add(&l.latency);
        r.bytes_in += l.bytes_in.load(Relaxed);
        r.bytes_out += l.bytes_out.load(Relaxed);
    }
    let req_labels =
        |(pg, ag): &(String, String)| labels(&[("process_group", pg), ("application_group", ag)]);
    out.head(
        "requests_total",
        "counter",
        "WSGI requests served, by status class (process_group \"\" is embedded mode).",
    );
    for (k, r) in &reqs {
        for (i, n) in r.classes.iter().enumerate() {
            let l = format!("{},status_class=\"{}xx\"", req_labels(k), i + 1);
            out.line("requests_total", &l, n);
        }
    }
    out.head(
        "request_duration_seconds",
        "histogram",
        "Time from the request's arrival in Apache to the end of its response.",
    );
    for (k, r) in &reqs {
        r.latency
            .write(&mut out, "request_duration_seconds", &req_labels(k));
    }
    out.head(
        "request_body_bytes_total",
        "counter",
        "Request body bytes read from clients.",
    );
    for (k, r) in &reqs {
        out.line("request_body_bytes_total", &req_labels(k), r.bytes_in);
    }
    out.head(
        "response_bytes_total",
        "counter",
        "Response body bytes sent to clients.",
    );
    for (k, r) in &reqs {
        out.line("response_bytes_total", &req_labels(k), r.bytes_out);
    }
    write_groups(&mut out, a, current_groups);
    if let Some((busy, idle, limit)) = apache_workers {
        write_apache_workers(&mut out, busy, idle, limit);
    }
    out.0
}

/// Apache's own workers (embedded mode's capacity), from its scoreboard.
fn write_apache_workers(out: &mut Out, busy: u64, idle: u64, limit: u64) {
    out.head(
        "apache_workers",
        "gauge",
        "Apache worker threads by state (the scoreboard, as mod_status counts them).",
    );
    out.line("apache_workers", "state=\"busy\"", busy);
    out.line("apache_workers", "state=\"idle\"", idle);
    out.head(
        "apache_workers_limit",
        "gauge",
        "Worker slots in Apache's scoreboard (ServerLimit x ThreadLimit).",
    );
    out.line("apache_workers_limit", "", limit);
}

/// A gauge's name, help, and how to read it.
type Figure<T, V = u64> = (&'static str, &'static str, fn(&T) -> V);

fn write_groups(out: &mut Out, a: &Area, current: &[String]) {
    let names = seen_groups(a);
    write_group_counters(out, a, &names);
    write_capacity(out, a, current);
}

/// Slot indexes of every group ever seen, by name, plus "(other)" (the
/// overflow slot) if it was used.
fn seen_groups(a: &Area) -> BTreeMap<String, Vec<usize>> {
    let mut names: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, g) in a.groups.iter().enumerate() {
        if let Some(n) = g.name.get() {
            names.entry(n).or_default().push(i);
        }
    }
    let other = &a.groups[GROUPS - 1];
    if other.queue.count.load(Relaxed) > 0
        || other
            .restarts
            .iter()
            .chain(&other.errors)
            .any(|c| c.load(Relaxed) > 0)
    {
        names.entry("(other)".into()).or_default().push(GROUPS - 1);
    }
    names
}

/// Restarts, 502/503/504 answers and queue time: summed over the slots a
/// group's name has had.
fn write_group_counters(out: &mut Out, a: &Area, names: &BTreeMap<String, Vec<usize>>) {
    let sum =
        |slots: &[usize], f: &dyn Fn(usize) -> u64| -> u64 { slots.iter().map(|&i| f(i)).sum() };
    out.head(
        "daemon_restarts_total",
        "counter",
        "Daemon processes that ended and were started again, by cause.",
    );
    for (n, slots) in names {
        for (ci, cause) in RESTART_CAUSES.iter().enumerate() {
            let v = sum(slots, &|i| a.groups[i].restarts[ci].load(Relaxed));
            out.line(
                "daemon_restarts_total",
                &labels(&[("process_group", n), ("cause", cause)]),
                v,
            );
        }
    }
    out.head(
        "daemon_errors_total",
        "counter",
        "502/503/504 answers for daemon process groups, by cause.",
    );
    for (n, slots) in names {
        for (ci, (cause, status)) in FAILURES.iter().enumerate() {
            let v = sum(slots, &|i| a.groups[i].errors[ci].load(Relaxed));
            let status = status.to_string();
            out.line(
                "daemon_errors_total",
                &labels(&[("process_group", n), ("status", &status), ("cause", cause)]),
                v,
            );
        }
    }
    out.head(
        "daemon_queue_seconds",
        "histogram",
        "Time from the request's arrival in Apache to a daemon thread taking it.",
    );
    for (n, slots) in names {
        let mut h = Hist::default();
        for &i in slots {
            h.add(&a.groups[i].queue);
        }
        h.write(
            out,
            "daemon_queue_seconds",
            &labels(&[("process_group", n)]),
        );
    }
}

/// Processes, threads and busy threads per group now running (or
/// configured: `current`), then each daemon process's own figures.
fn write_capacity(out: &mut Out, a: &Area, current: &[String]) {
    let cap = snapshot::capacity(a);
    let groups: Vec<&String> = {
        let mut g: Vec<&String> = current.iter().collect();
        g.extend(cap.keys().filter(|k| !current.contains(k)));
        g
    };
    let zero = Capacity::default();
    let figures: [Figure<Capacity>; 3] = [
        ("daemon_processes", "Daemon processes running.", |c| {
            c.procs.len() as u64
        }),
        (
            "daemon_threads",
            "Request threads of the running daemon processes (capacity).",
            |c| c.threads,
        ),
        (
            "daemon_threads_busy",
            "Daemon request threads serving a request now.",
            |c| c.busy,
        ),
    ];
    for (name, help, f) in figures {
        out.head(name, "gauge", help);
        for g in &groups {
            out.line(
                name,
                &labels(&[("process_group", g)]),
                f(cap.get(*g).unwrap_or(&zero)),
            );
        }
    }
    let per_proc: [Figure<snapshot::ProcInfo, Option<u64>>; 3] = [
        (
            "daemon_process_rss_bytes",
            "Resident memory of each daemon process.",
            |p| p.rss,
        ),
        (
            "daemon_process_interpreters",
            "Python interpreters created in each daemon process.",
            |p| Some(u64::from(p.interpreters)),
        ),
        (
            "daemon_process_requests_total",
            "Requests each daemon process has taken.",
            |p| Some(p.requests),
        ),
    ];
    for (name, help, f) in per_proc {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        out.head(name, kind, help);
        for (g, c) in &cap {
            for p in &c.procs {
                if let Some(v) = f(p) {
                    let pid = p.pid.to_string();
                    out.line(name, &labels(&[("process_group", g), ("pid", &pid)]), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn renders_help_type_and_cumulative_buckets() {
        let a = Area::map().unwrap();
        let i = a.label("g", "x\"y");
        a.labels[i].requests[1].fetch_add(2, Relaxed);
        a.labels[i].latency.observe_us(1);
        a.labels[i].latency.observe_us(20_000);
        let text = render(a, &["g".into()], Some((1, 2, 3)));
        assert!(text.contains("# TYPE wsgi_rs_requests_total counter"));
        assert!(text.contains(
            "wsgi_rs_requests_total{process_group=\"g\",application_group=\"x\\\"y\",status_class=\"2xx\"} 2"
        ));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("wsgi_rs_daemon_threads{process_group=\"g\"} 0"));
        assert!(text.contains("wsgi_rs_apache_workers{state=\"idle\"} 2\n"));
        assert!(text.contains("wsgi_rs_apache_workers_limit 3\n"));
    }
}
