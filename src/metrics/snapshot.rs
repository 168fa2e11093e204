//! The daemon processes running now, by group, read from the metrics area
//! (for /server-metrics and mod_status).
use super::shm::Area;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

pub struct ProcInfo {
    pub pid: i32,
    pub threads: u64,
    pub busy: u64,
    pub interpreters: u32,
    pub requests: u64,
    /// Resident memory (bytes), from /proc/PID/statm (readable by anyone).
    pub rss: Option<u64>,
}

#[derive(Default)]
pub struct Capacity {
    pub procs: Vec<ProcInfo>,
    pub threads: u64,
    pub busy: u64,
}

/// Running daemon processes by group name.
pub fn capacity(a: &Area) -> BTreeMap<String, Capacity> {
    let mut by: BTreeMap<String, Capacity> = BTreeMap::new();
    for p in &a.procs {
        let pid = p.pid.load(Relaxed);
        let g = p.group.load(Relaxed) as usize;
        if pid <= 0 || g == 0 {
            continue;
        }
        let Some(name) = a.groups.get(g - 1).and_then(|g| g.name.get()) else {
            continue;
        };
        let info = ProcInfo {
            pid,
            threads: u64::from(p.threads.load(Relaxed)),
            busy: p.busy.load(Relaxed).max(0) as u64,
            interpreters: p.interpreters.load(Relaxed),
            requests: p.requests.load(Relaxed),
            rss: rss(pid),
        };
        let c = by.entry(name).or_default();
        c.threads += info.threads;
        c.busy += info.busy.min(info.threads);
        c.procs.push(info);
    }
    by
}

fn rss(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: a plain query.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}
