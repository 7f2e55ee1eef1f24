//! The access log handle: formats on the caller thread into a buffer of that thread, and a
//! background thread writes the buffers out.
//!
//! Handing each line to the writer would wake it once per request (a context switch each: at
//! tens of thousands of requests a second, more than the formatting costs). Instead every
//! thread appends to its own buffer, and the writer collects them every
//! [`FLUSH_INTERVAL`], or sooner when one fills up, as nginx's `access_log ... buffer=`
//! does.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use strait_config::{AccessLogFormat, AccessLogSettings};

use crate::format::{write_line, write_stream_line};
use crate::record::{LogRecord, StreamRecord};

/// How often the writer collects the threads' lines.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// A thread's buffer this full wakes the writer early.
const WAKE_AT: usize = 64 * 1024;
/// A thread's buffer this full drops new lines (the writer cannot keep up).
const MAX_PENDING: usize = 4 * 1024 * 1024;
/// Size of the writer's output buffer.
const WRITE_BUFFER: usize = 64 * 1024;
/// Longest time [`AccessLog::flush`] waits for the writer.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages that may wait for the writer.
const QUEUE: usize = 64;

/// One thread's lines, waiting for the writer.
type Pending = Arc<Mutex<Vec<u8>>>;

/// The buffers of every thread that logged to one access log.
type Buffers = Arc<Mutex<Vec<Pending>>>;

/// Numbers access logs, so a thread tells apart the logs of successive configurations.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's buffer for each access log it wrote to, by log id.
    static LOCAL: RefCell<Vec<(u64, Pending)>> = const { RefCell::new(Vec::new()) };
}

/// Cheaply clonable access log handle shared by all worker threads.
#[derive(Debug, Clone)]
pub struct AccessLog {
    inner: Option<Arc<Shared>>,
    /// The format records the response's `Content-Type`: read once per request, so kept here
    /// rather than behind the pointer.
    content_type: bool,
}

#[derive(Debug)]
struct Shared {
    id: u64,
    format: AccessLogFormat,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    buffers: Buffers,
}

#[derive(Debug)]
enum Msg {
    /// Collect the lines now (a buffer filled up).
    Wake,
    /// Write out everything logged so far, reopen the file, then acknowledge.
    Reopen(SyncSender<()>),
    /// Write out everything logged so far, then acknowledge.
    Flush(SyncSender<()>),
}

impl AccessLog {
    /// Opens the log per `settings`: `off` disables it, `stdout`/`stderr`, or a file appended to.
    pub fn open(settings: &AccessLogSettings) -> io::Result<AccessLog> {
        let target = match settings.path.as_str() {
            "off" => return Ok(AccessLog::disabled()),
            "stdout" => Target::Stdout,
            "stderr" => Target::Stderr,
            path => Target::File(PathBuf::from(path)),
        };
        let sink = target.open()?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let buffers = Buffers::default();
        let writer = Writer {
            rx,
            buffers: Arc::clone(&buffers),
            spare: Vec::new(),
            out: BufWriter::with_capacity(WRITE_BUFFER, sink),
            target,
            failing: false,
        };
        thread::Builder::new().name("strait-access-log".into()).spawn(move || writer.run())?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Shared { id, format: settings.format, tx, dropped: AtomicU64::new(0), buffers };
        let content_type = settings.format == AccessLogFormat::Squid;
        Ok(AccessLog { inner: Some(Arc::new(shared)), content_type })
    }

    /// A log that records nothing.
    pub fn disabled() -> AccessLog {
        AccessLog { inner: None, content_type: false }
    }

    /// Whether lines are being recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The line format, when enabled.
    pub fn format(&self) -> Option<AccessLogFormat> {
        self.inner.as_ref().map(|shared| shared.format)
    }

    /// Whether lines carry the response's `Content-Type` (the squid format), so the exchange
    /// keeps it only then.
    pub fn records_content_type(&self) -> bool {
        self.content_type
    }

    /// Formats `record` into this thread's buffer; never blocks (drops the line when the
    /// writer is far behind).
    pub fn log(&self, record: &LogRecord<'_>) {
        self.append(|format, buffer| write_line(format, record, buffer));
    }

    /// Formats the line of a layer 4 session into this thread's buffer, as [`AccessLog::log`].
    pub fn log_stream(&self, record: &StreamRecord<'_>) {
        self.append(|format, buffer| write_stream_line(format, record, buffer));
    }

    /// Appends the line `write` formats to this thread's buffer for this log; drops it when
    /// the writer is far behind.
    #[inline]
    fn append(&self, write: impl FnOnce(AccessLogFormat, &mut Vec<u8>)) {
        let Some(shared) = &self.inner else { return };
        LOCAL.with(|local| {
            let Ok(mut local) = local.try_borrow_mut() else { return };
            let pending = match local.iter().position(|(id, _)| *id == shared.id) {
                Some(index) => &local[index].1,
                None => {
                    // Buffers of logs gone (an earlier configuration's) are let go here.
                    local.retain(|(_, pending)| Arc::strong_count(pending) > 1);
                    let pending = Pending::default();
                    shared.buffers.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&pending));
                    local.push((shared.id, pending));
                    &local.last().expect("just pushed").1
                }
            };
            let mut buffer = pending.lock().unwrap_or_else(PoisonError::into_inner);
            if buffer.len() >= MAX_PENDING {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let before = buffer.len();
            write(shared.format, &mut buffer);
            if before < WAKE_AT && buffer.len() >= WAKE_AT {
                let _ = shared.tx.try_send(Msg::Wake);
            }
        });
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }

    /// Has the writer reopen the file path (after rotation): lines logged before go to the old
    /// file, lines logged after to the new one. Waits for it (at most a few seconds).
    pub fn reopen(&self) {
        self.ask(Msg::Reopen);
    }

    /// Waits (at most a few seconds) until every line logged so far has been written out.
    pub fn flush(&self) {
        self.ask(Msg::Flush);
    }

    /// Sends the writer the message `make` builds around an acknowledgement, and waits for it.
    fn ask(&self, make: impl FnOnce(SyncSender<()>) -> Msg) {
        let Some(shared) = &self.inner else { return };
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let mut msg = make(ack_tx);
        loop {
            match shared.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        let _ = ack_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Where lines go, as configured.
#[derive(Debug)]
enum Target {
    Stdout,
    Stderr,
    File(PathBuf),
}

impl Target {
    fn open(&self) -> io::Result<Sink> {
        Ok(match self {
            Target::Stdout => Sink::Stdout(io::stdout()),
            Target::Stderr => Sink::Stderr(io::stderr()),
            Target::File(path) => Sink::File(open_append(path)?),
        })
    }

    fn name(&self) -> String {
        match self {
            Target::Stdout => "stdout".into(),
            Target::Stderr => "stderr".into(),
            Target::File(path) => path.display().to_string(),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// An open destination.
enum Sink {
    Stdout(io::Stdout),
    Stderr(io::Stderr),
    File(File),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::Stderr(s) => s.write(buf),
            Sink::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::Stderr(s) => s.flush(),
            Sink::File(f) => f.flush(),
        }
    }
}

/// The background thread's state.
struct Writer {
    rx: Receiver<Msg>,
    buffers: Buffers,
    /// An empty buffer swapped with a thread's, so collecting allocates nothing.
    spare: Vec<u8>,
    out: BufWriter<Sink>,
    target: Target,
    /// Set after an I/O error was reported, so a broken disk reports once, not per line.
    failing: bool,
}

impl Writer {
    fn run(mut self) {
        loop {
            let (ack, reopen) = match self.rx.recv_timeout(FLUSH_INTERVAL) {
                Ok(Msg::Flush(ack)) => (Some(ack), false),
                Ok(Msg::Reopen(ack)) => (Some(ack), true),
                Ok(Msg::Wake) | Err(RecvTimeoutError::Timeout) => (None, false),
                Err(RecvTimeoutError::Disconnected) => break,
            };
            self.collect();
            self.flush();
            if reopen {
                self.reopen_target();
            }
            if let Some(ack) = ack {
                let _ = ack.try_send(());
            }
        }
        self.collect();
        self.flush();
    }

    /// Writes out every thread's lines.
    fn collect(&mut self) {
        let buffers: Vec<Pending> = self.buffers.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for pending in buffers {
            {
                let mut buffer = pending.lock().unwrap_or_else(PoisonError::into_inner);
                if buffer.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *buffer, &mut self.spare);
            }
            let lines = std::mem::take(&mut self.spare);
            if let Err(err) = self.out.write_all(&lines) {
                self.report(err);
            }
            self.spare = lines;
            self.spare.clear();
            // A buffer that grew far during a burst is not kept at that size.
            if self.spare.capacity() > 4 * WAKE_AT {
                self.spare = Vec::new();
            }
        }
    }

    fn flush(&mut self) {
        match self.out.flush() {
            Ok(()) => self.failing = false,
            Err(err) => self.report(err),
        }
    }

    fn reopen_target(&mut self) {
        let Target::File(path) = &self.target else {
            return;
        };
        match open_append(path) {
            Ok(file) => {
                *self.out.get_mut() = Sink::File(file);
                self.failing = false;
            }
            Err(err) => eprintln!("strait: cannot reopen access log {}: {err}", path.display()),
        }
    }

    fn report(&mut self, err: io::Error) {
        if !self.failing {
            self.failing = true;
            eprintln!("strait: writing access log {}: {err}", self.target.name());
        }
    }
}
