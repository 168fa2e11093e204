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

/// Apache's workers (its children's threads) from the scoreboard: (busy,
/// idle, limit) as mod_status counts them. None without a scoreboard.
pub fn apache_workers() -> Option<(u64, u64, u64)> {
    use crate::apache::sys;
    // SAFETY: plain queries; the scoreboard's records live as long as the
    // process once it exists (other processes update them: racy but
    // harmless reads of plain integers, as mod_status does).
    unsafe {
        if sys::ap_exists_scoreboard_image() == 0 {
            return None;
        }
        let g = sys::ap_get_scoreboard_global().as_ref()?;
        let (mut busy, mut idle) = (0, 0);
        for i in 0..g.server_limit {
            for j in 0..g.thread_limit {
                let Some(ws) = sys::ap_get_scoreboard_worker_from_indexes(i, j).as_ref() else {
                    continue;
                };
                match ws.status {
                    // SERVER_READY
                    2 => idle += 1,
                    // SERVER_DEAD, SERVER_STARTING, SERVER_IDLE_KILL
                    0 | 1 | 10 => {}
                    _ => busy += 1,
                }
            }
        }
        Some((
            busy,
            idle,
            (g.server_limit as u64) * (g.thread_limit as u64),
        ))
    }
}
