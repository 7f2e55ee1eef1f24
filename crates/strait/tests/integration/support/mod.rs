//! Test support: the real `strait` binary as a child process, a hyper backend, a raw HTTP client.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;

/// Longest any helper waits for anything (the test machine may be loaded).
pub const WAIT: Duration = Duration::from_secs(20);

/// Path of the binary under test.
pub fn strait_bin() -> &'static str {
    env!("CARGO_BIN_EXE_strait")
}

/// Writes `text` to `path` atomically (temporary file, then rename), so a watcher never
/// reads a half-written file.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Removes ANSI escape sequences (`ESC [ ... letter`) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `key=value` among the whitespace-separated words of a log line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

// === the binary ===

/// Lines read from one output stream of the child, as they arrive.
#[derive(Default)]
struct Lines {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    fn collect(self: Arc<Self>, stream: impl Read + Send + 'static) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                self.lines.lock().unwrap().0.push(line);
                self.changed.notify_all();
            }
            self.lines.lock().unwrap().1 = true;
            self.changed.notify_all();
        });
    }
}

/// A running `strait` process; killed (SIGKILL) on drop if still running.
pub struct Strait {
    child: Child,
    stderr: Arc<Lines>,
    stdout: Arc<Lines>,
    exited: Option<ExitStatus>,
}

impl Strait {
    /// Starts `strait` with these arguments (at log level info) in `dir`, with extra
    /// environment variables.
    pub fn spawn(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Strait {
        let mut command = Command::new(strait_bin());
        command
            .args(args)
            .current_dir(dir)
            .env_remove("STRAIT_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn strait");
        let (stderr, stdout) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        stderr.clone().collect(child.stderr.take().unwrap());
        stdout.clone().collect(child.stdout.take().unwrap());
        Strait { child, stderr, stdout, exited: None }
    }

    /// `strait run -c CONFIG` plus `extra` arguments; waits until it has started (signal
    /// handlers installed, listeners bound).
    pub fn run(config: &Path, extra: &[&str]) -> Strait {
        let dir = config.parent().unwrap();
        let mut args = vec!["--log-level", "info", "run", "-c", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        let strait = Strait::spawn(dir, &args, &[]);
        strait.wait_stderr(0, "the `strait started` line", |l| l.contains("strait started"));
        strait
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal (`libc::SIGHUP`...).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Number of stderr lines received so far (a position for [`Strait::wait_stderr`]).
    pub fn stderr_len(&self) -> usize {
        self.stderr.lines.lock().unwrap().0.len()
    }

    /// All stderr so far, colour codes removed.
    pub fn stderr_text(&self) -> String {
        self.stderr.lines.lock().unwrap().0.iter().map(|l| strip_ansi(l) + "\n").collect()
    }

    /// All stderr so far, exactly as written.
    pub fn stderr_text_raw(&self) -> String {
        self.stderr.lines.lock().unwrap().0.iter().map(|l| l.clone() + "\n").collect()
    }

    /// All stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lines.lock().unwrap().0.clone()
    }

    /// Waits for a stderr line at index `from` or later (colour codes removed) for which
    /// `check` holds; returns its index and text. Panics with the whole log after `WAIT`.
    pub fn wait_stderr(&self, from: usize, what: &str, check: impl Fn(&str) -> bool) -> (usize, String) {
        let deadline = Instant::now() + WAIT;
        let mut guard = self.stderr.lines.lock().unwrap();
        loop {
            let (lines, closed) = &*guard;
            if let Some((i, line)) =
                lines.iter().enumerate().skip(from).map(|(i, l)| (i, strip_ansi(l))).find(|(_, l)| check(l))
            {
                return (i, line);
            }
            let now = Instant::now();
            if *closed || now >= deadline {
                let closed = *closed;
                let log: String = lines.iter().map(|l| strip_ansi(l) + "\n").collect();
                drop(guard);
                panic!("no stderr line with {what} (stream closed: {closed}); stderr:\n{log}");
            }
            guard = self.stderr.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// The address of listener `name` from the last `listening` line at index `from` or later.
    pub fn listener_after(&self, from: usize, name: &str) -> SocketAddr {
        let is_it = |l: &str| l.contains(" listening ") && field(l, "listener") == Some(name);
        let (mut i, mut line) = self.wait_stderr(from, &format!("`listening listener={name}`"), is_it);
        // A later line for the same listener (a rebind) wins.
        while let Some(next) = self.find_stderr(i + 1, is_it) {
            (i, line) = next;
        }
        field(&line, "addr").unwrap_or_else(|| panic!("no addr in {line:?}")).parse().unwrap()
    }

    /// The address listener `name` was bound to at start.
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.listener_after(0, name)
    }

    /// The first stderr line at index `from` or later for which `check` holds, without waiting.
    pub fn find_stderr(&self, from: usize, check: impl Fn(&str) -> bool) -> Option<(usize, String)> {
        let guard = self.stderr.lines.lock().unwrap();
        guard.0.iter().enumerate().skip(from).map(|(i, l)| (i, strip_ansi(l))).find(|(_, l)| check(l))
    }

    /// Sends SIGHUP and waits until `configuration applied generation=N` is logged.
    pub fn reload_to(&self, generation: u64) {
        let from = self.stderr_len();
        self.signal(libc::SIGHUP);
        self.wait_generation(from, generation);
    }

    /// Waits for `configuration applied generation=N` at index `from` or later.
    pub fn wait_generation(&self, from: usize, generation: u64) -> usize {
        let want = generation.to_string();
        let what = format!("`configuration applied generation={generation}`");
        self.wait_stderr(from, &what, |l| {
            l.contains("configuration applied") && field(l, "generation") == Some(want.as_str())
        })
        .0
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait().unwrap() {
            Some(status) => {
                self.exited = Some(status);
                false
            }
            None => true,
        }
    }

    /// Waits up to `limit` for the process to exit; panics (with the log) if it does not.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while self.is_running() {
            if Instant::now() >= deadline {
                panic!("strait did not exit within {limit:?}; stderr:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.exited.unwrap()
    }
}

impl Drop for Strait {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `strait ARGS` in `dir` to completion; returns the exit code, stdout and stderr.
pub fn run_to_end(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(strait_bin());
    command.args(args).current_dir(dir).env_remove("STRAIT_LOG").stdin(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command.output().expect("run strait");
    let code = out.status.code().unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status));
    (code, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A temporary directory with a configuration file `strait.yaml` in it.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    /// A new directory with `strait.yaml` holding `yaml`.
    pub fn new(yaml: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("strait.yaml"), yaml).unwrap();
        Workdir { dir }
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("strait.yaml")
    }

    /// A path in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the configuration file atomically.
    pub fn rewrite(&self, yaml: &str) {
        write_atomic(&self.config(), yaml);
    }
}

// === backend ===

/// What the backend answers.
#[derive(Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Wait for a permit of this semaphore before answering.
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Reply {
    /// 200 with a text body.
    pub fn text(body: &str) -> Reply {
        Reply { status: 200, body: body.to_owned(), ..Reply::default() }
    }

    /// A status with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply { status, ..Reply::default() }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&str) -> Reply + Send + Sync;

/// A real HTTP/1.1 server (hyper) on 127.0.0.1; the handler sees each request target.
pub struct Backend {
    pub addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
    arrived: Mutex<mpsc::Receiver<String>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Backend {
    /// Starts a backend answering every request with `handler(target)`.
    pub fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Backend {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (arrived_tx, arrived) = mpsc::channel();
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = targets.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (handler, recorded, arrived_tx) = (handler.clone(), recorded.clone(), arrived_tx.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let target = req.uri().to_string();
                        recorded.lock().unwrap().push(target.clone());
                        let _ = arrived_tx.send(target.clone());
                        let reply = handler(&target);
                        async move { Ok::<_, Infallible>(answer(reply).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Backend { addr, targets, arrived: Mutex::new(arrived), runtime: Some(runtime) }
    }

    /// A backend answering 200 with `name` as the body and an `x-backend: name` header.
    pub fn named(name: &str) -> Backend {
        let name = name.to_owned();
        Backend::start(move |_| Reply::text(&name).header("x-backend", &name))
    }

    /// Request targets received so far.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }

    /// Waits until a request whose target satisfies `check` arrives (or arrived earlier and
    /// was not waited for yet).
    pub fn wait_request(&self, check: impl Fn(&str) -> bool) -> String {
        let arrived = self.arrived.lock().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match arrived.recv_timeout(left) {
                Ok(target) if check(&target) => return target,
                Ok(_) => {}
                Err(_) => panic!("backend {}: expected request did not arrive", self.addr),
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn answer(reply: Reply) -> hyper::Response<Full<Bytes>> {
    if let Some(gate) = &reply.gate {
        let _permit = gate.acquire().await;
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = hyper::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k, v);
    }
    response.body(Full::new(Bytes::from(reply.body))).unwrap()
}

// === raw HTTP client ===

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking client connection with timeouts.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, WAIT)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.set_write_timeout(Some(WAIT))?;
        Ok(Conn { reader: BufReader::new(stream) })
    }

    /// Sends a keep-alive GET and reads its response.
    pub fn get(&mut self, path: &str) -> Result<Response, String> {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n\r\n"))
    }

    /// Sends raw request bytes and reads one response.
    pub fn request(&mut self, raw: &str) -> Result<Response, String> {
        self.reader.get_mut().write_all(raw.as_bytes()).map_err(|e| format!("send: {e}"))?;
        self.read_response()
    }

    /// Reads one response (bodies framed by Content-Length, chunked, or close).
    pub fn read_response(&mut self) -> Result<Response, String> {
        let mut status_line = String::new();
        match self.reader.read_line(&mut status_line) {
            Ok(0) => return Err("connection closed before a response".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading status line: {e}")),
        }
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers = self.read_headers()?;
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            self.read_chunked()?
        } else if let Some(len) = get("content-length") {
            let mut body = vec![0; len.parse().map_err(|_| format!("bad content-length {len}"))?];
            self.reader.read_exact(&mut body).map_err(|e| format!("reading body: {e}"))?;
            body
        } else {
            let mut body = Vec::new();
            self.reader.read_to_end(&mut body).map_err(|e| format!("reading body: {e}"))?;
            body
        };
        Ok(Response { status, headers, body })
    }

    fn read_headers(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).map_err(|e| format!("reading headers: {e}"))? == 0 {
                return Err("connection closed inside the response head".into());
            }
            let line = line.trim_end();
            if line.is_empty() {
                return Ok(headers);
            }
            let (k, v) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).map_err(|e| format!("reading chunk size: {e}"))?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                self.read_headers()?;
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..]).map_err(|e| format!("reading chunk: {e}"))?;
            let mut crlf = [0u8; 2];
            self.reader.read_exact(&mut crlf).map_err(|e| format!("reading chunk end: {e}"))?;
        }
    }

    /// Whether the server closed the connection (EOF or reset within the wait).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// A GET on a new connection (`Connection: close`); panics on any failure.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.request(&format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n"))
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

/// Whether a TCP connection to `addr` is refused.
pub fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect_timeout(&addr, WAIT), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Polls `check` every 20 ms until it holds; panics after `WAIT`.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
