//! Unix signals turned into events for the main loop.

use std::sync::mpsc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM or SIGINT: drain and stop.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGUSR1: reopen the access log.
    ReopenLogs,
}

/// Receives signal events from a small background thread.
pub struct Signals {
    events: mpsc::Receiver<Event>,
}

impl Signals {
    /// Installs handlers for SIGTERM, SIGINT, SIGHUP and SIGUSR1.
    pub fn install() -> std::io::Result<Signals> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (tx, events) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        std::thread::Builder::new().name("strait-signals".into()).spawn(move || {
            runtime.block_on(async move {
                let installed = (|| {
                    Ok::<_, std::io::Error>((
                        signal(SignalKind::terminate())?,
                        signal(SignalKind::interrupt())?,
                        signal(SignalKind::hangup())?,
                        signal(SignalKind::user_defined1())?,
                    ))
                })();
                let (mut term, mut int, mut hup, mut usr1) = match installed {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                loop {
                    let event = tokio::select! {
                        _ = term.recv() => Event::Stop,
                        _ = int.recv() => Event::Stop,
                        _ = hup.recv() => Event::Reload,
                        _ = usr1.recv() => Event::ReopenLogs,
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            });
        })?;
        ready.recv().map_err(|_| std::io::Error::other("signal thread ended"))??;
        Ok(Signals { events })
    }

    /// Waits up to `timeout` for the next event.
    pub fn wait(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }
}
