//! The access log handle: formats on the caller thread, writes on a background thread.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use strait_config::{AccessLogFormat, AccessLogSettings};

use crate::format::write_line;
use crate::record::LogRecord;

/// Lines that may wait for the writer before new ones are dropped.
const QUEUE_LINES: usize = 32 * 1024;
/// Size of the writer's output buffer.
const WRITE_BUFFER: usize = 64 * 1024;
/// Longest time a written line may sit in the output buffer.
const MAX_FLUSH_DELAY: Duration = Duration::from_millis(100);
/// Quiet time after which the writer flushes early.
const IDLE_FLUSH: Duration = Duration::from_millis(10);
/// Longest time [`AccessLog::flush`] waits for the writer.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// A per-thread line buffer larger than this is released after use.
const LINE_BUFFER_KEEP: usize = 16 * 1024;

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Cheaply clonable access log handle shared by all worker threads.
#[derive(Debug, Clone)]
pub struct AccessLog {
    inner: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    format: AccessLogFormat,
    tx: SyncSender<Msg>,
    reopen: Arc<AtomicBool>,
    dropped: AtomicU64,
}

#[derive(Debug)]
enum Msg {
    /// A formatted line, newline included.
    Line(Vec<u8>),
    /// Nothing to write; makes the writer look at its reopen flag.
    Wake,
    /// Flush everything received so far, then acknowledge.
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
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            rx,
            out: BufWriter::with_capacity(WRITE_BUFFER, sink),
            target,
            reopen: Arc::clone(&reopen),
            failing: false,
        };
        thread::Builder::new().name("strait-access-log".into()).spawn(move || writer.run())?;
        let shared = Shared { format: settings.format, tx, reopen, dropped: AtomicU64::new(0) };
        Ok(AccessLog { inner: Some(Arc::new(shared)) })
    }

    /// A log that records nothing.
    pub fn disabled() -> AccessLog {
        AccessLog { inner: None }
    }

    /// Whether lines are being recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Formats `record` and queues it for writing; never blocks (drops the line when full).
    pub fn log(&self, record: &LogRecord<'_>) {
        let Some(shared) = &self.inner else { return };
        let line = LINE.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                write_line(shared.format, record, &mut buf);
                let line = buf.to_vec();
                if buf.capacity() > LINE_BUFFER_KEEP {
                    *buf = Vec::with_capacity(512);
                }
                line
            }
            Err(_) => {
                let mut line = Vec::with_capacity(512);
                write_line(shared.format, record, &mut line);
                line
            }
        });
        if shared.tx.try_send(Msg::Line(line)).is_err() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }

    /// Asks the writer to reopen the file path (after rotation); returns without waiting.
    pub fn reopen(&self) {
        let Some(shared) = &self.inner else { return };
        shared.reopen.store(true, Ordering::Release);
        // A full queue means the writer is busy and will see the flag anyway.
        let _ = shared.tx.try_send(Msg::Wake);
    }

    /// Waits (at most a few seconds) until every line logged so far has been written out.
    pub fn flush(&self) {
        let Some(shared) = &self.inner else { return };
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let mut msg = Msg::Flush(ack_tx);
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
    out: BufWriter<Sink>,
    target: Target,
    reopen: Arc<AtomicBool>,
    /// Set after an I/O error was reported, so a broken disk reports once, not per line.
    failing: bool,
}

impl Writer {
    fn run(mut self) {
        let mut unflushed_since: Option<Instant> = None;
        loop {
            let msg = match unflushed_since {
                None => match self.rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
                Some(since) if since.elapsed() >= MAX_FLUSH_DELAY => {
                    self.flush();
                    unflushed_since = None;
                    continue;
                }
                Some(since) => {
                    let left = (since + MAX_FLUSH_DELAY).saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(left.min(IDLE_FLUSH)) {
                        Ok(msg) => msg,
                        Err(RecvTimeoutError::Timeout) => {
                            self.flush();
                            unflushed_since = None;
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            if self.reopen.swap(false, Ordering::AcqRel) {
                self.flush();
                unflushed_since = None;
                self.reopen_target();
            }
            match msg {
                Msg::Line(line) => {
                    if let Err(err) = self.out.write_all(&line) {
                        self.report(err);
                    }
                    unflushed_since.get_or_insert_with(Instant::now);
                }
                Msg::Wake => {}
                Msg::Flush(ack) => {
                    self.flush();
                    unflushed_since = None;
                    let _ = ack.try_send(());
                }
            }
        }
        self.flush();
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
