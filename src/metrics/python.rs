//! `mod_wsgi.server_metrics()`: Apache's scoreboard as a dict, as mod_wsgi
//! returns it. None unless WSGIServerMetrics On (Apache's children) or
//! server-metrics=On (a daemon group), or when this process has no
//! scoreboard (a daemon process forked before Apache's first one existed).
use crate::apache::sys;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Scoreboard status letters, indexed by SERVER_DEAD..SERVER_IDLE_KILL.
const STATUS: [&str; 11] = [".", "S", "_", "R", "W", "K", "L", "D", "C", "G", "I"];

fn secs(t: sys::apr_time_t) -> f64 {
    t as f64 / 1e6
}

fn text(b: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[pyfunction]
pub fn server_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    crate::python::guard::catch(|| {
        // SAFETY: a plain query of Apache's state.
        if !super::record::server_metrics_enabled()
            || unsafe { sys::ap_exists_scoreboard_image() } == 0
        {
            return Ok(py.None());
        }
        // SAFETY: the scoreboard exists (checked); its global record lives
        // as long as the process.
        let Some(g) = (unsafe { sys::ap_get_scoreboard_global().as_ref() }) else {
            return Ok(py.None());
        };
        let now = super::record::now_us();
        let d = PyDict::new(py);
        d.set_item("server_limit", g.server_limit)?;
        d.set_item("thread_limit", g.thread_limit)?;
        d.set_item("running_generation", g.running_generation)?;
        d.set_item("restart_time", secs(g.restart_time))?;
        d.set_item("current_time", secs(now))?;
        d.set_item("running_time", (now - g.restart_time) / 1_000_000)?;
        let processes = PyList::empty(py);
        for i in 0..g.server_limit {
            // SAFETY: i < server_limit: a valid index of the scoreboard.
            let Some(ps) = (unsafe { sys::ap_get_scoreboard_process(i).as_ref() }) else {
                continue;
            };
            let p = PyDict::new(py);
            p.set_item("process_num", i)?;
            p.set_item("pid", ps.pid)?;
            p.set_item("generation", ps.generation)?;
            p.set_item("quiescing", ps.quiescing as i32)?;
            let workers = PyList::empty(py);
            for j in 0..g.thread_limit {
                // SAFETY: both indexes are within the scoreboard's limits;
                // the record is plain data other processes update (a racy
                // but harmless read, as mod_status does).
                let Some(ws) =
                    (unsafe { sys::ap_get_scoreboard_worker_from_indexes(i, j).as_ref() })
                else {
                    continue;
                };
                let w = PyDict::new(py);
                w.set_item("thread_num", ws.thread_num)?;
                w.set_item("generation", ws.generation)?;
                w.set_item(
                    "status",
                    STATUS.get(ws.status as usize).copied().unwrap_or("?"),
                )?;
                w.set_item("access_count", ws.access_count)?;
                w.set_item("bytes_served", ws.bytes_served)?;
                w.set_item("start_time", secs(ws.start_time))?;
                w.set_item("stop_time", secs(ws.stop_time))?;
                w.set_item("last_used", secs(ws.last_used))?;
                w.set_item("client", text(&ws.client))?;
                w.set_item("request", text(&ws.request))?;
                w.set_item("vhost", text(&ws.vhost))?;
                workers.append(w)?;
            }
            p.set_item("workers", workers)?;
            processes.append(p)?;
        }
        d.set_item("processes", processes)?;
        Ok(d.into_any().unbind())
    })
}
