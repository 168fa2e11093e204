//! mod_wsgi 6's application signals: SIGHUP or SIGUSR2 sent to a
//! request-handling daemon process is published, in every interpreter, as
//! the `process_signal` event (to `subscribe_events` callbacks, then to
//! `subscribe_signals` ones), on a thread of its own so slow callbacks never
//! delay the process's supervision. Like Unix signals (and mod_wsgi's
//! non-blocking pipe), signals coming faster than callbacks take them are
//! dropped. Apache's children and service-script processes deliver none.
use crate::python::interp::Interp;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// Signals waiting for the dispatcher before more are dropped.
const BACKLOG: usize = 16;

pub struct Dispatcher {
    tx: Option<SyncSender<i32>>,
    done: Receiver<()>,
}

impl Dispatcher {
    /// Starts the dispatcher thread (which inherits the caller's signal
    /// mask); None, logged, if it cannot be created.
    pub fn start(group: &str) -> Option<Dispatcher> {
        let (tx, rx) = sync_channel::<i32>(BACKLOG);
        let (done_tx, done) = sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("wsgi-signals".into())
            .spawn(move || {
                while let Ok(sig) = rx.recv() {
                    publish(sig);
                }
                let _ = done_tx.send(());
            });
        if spawned.is_err() {
            crate::apache::log::server(
                crate::wsgi::transport::Level::Error,
                &format!(
                    "WSGI0207: Unable to create signal dispatcher thread in daemon process '{group}'; SIGHUP and SIGUSR2 signals will not be delivered to mod_wsgi.subscribe_signals subscribers."
                ),
            );
            return None;
        }
        Some(Dispatcher { tx: Some(tx), done })
    }

    /// Hands a signal to the dispatcher, or drops it if it is behind.
    pub fn deliver(&self, sig: i32) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(sig);
        }
    }

    /// Takes no more signals and waits, up to `limit`, for the callbacks
    /// still running (before process_stopping is published).
    pub fn stop(mut self, limit: Duration) {
        self.tx = None;
        let _ = self.done.recv_timeout(limit);
    }
}

/// mod_wsgi's name for a delivered signal.
pub fn name(sig: i32) -> Option<&'static str> {
    match sig {
        libc::SIGHUP => Some("SIGHUP"),
        libc::SIGUSR2 => Some("SIGUSR2"),
        _ => None,
    }
}

fn publish(sig: i32) {
    let Some(signame) = name(sig) else {
        return;
    };
    for interp in Interp::all() {
        if interp.ready() {
            interp
                .run(|py| crate::wsgi::events::process_signal(py, interp.objects(), sig, signame));
        }
    }
}
