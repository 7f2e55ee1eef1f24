//! A real `redis-server` for a test: on a free loopback port, in its own temporary
//! directory, without persistence; stopped (killed) on drop. It can be stopped and started
//! again on the same port, to test what Strait does while Redis is away.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

/// A `redis-server` process owned by the test.
pub struct Redis {
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server on a free port; panics with a clear message when `redis-server` is
    /// not installed (`scripts/test.sh` installs it).
    pub fn start() -> Redis {
        Redis::start_with(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with(password: Option<&str>) -> Redis {
        let dir = tempfile::tempdir().expect("temporary directory for redis-server");
        let mut redis = Redis { port: 0, password: password.map(str::to_owned), dir, child: None };
        // A port read back from the kernel may be taken again before redis-server binds it:
        // try a few.
        for _ in 0..5 {
            redis.port = free_port();
            if redis.launch() {
                return redis;
            }
        }
        panic!("redis-server did not start; its log:\n{}", redis.log());
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server and waits for it to exit: connections to it are closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (with no data: nothing is persisted).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + WAIT;
        while !self.launch() {
            assert!(Instant::now() < deadline, "redis-server did not restart on port {}: {}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends one command and returns the reply's first line (`+PONG`, `:3`, `$-1`...), or
    /// a bulk string's text (`EVAL "return 'x'" 0` gives `x`).
    pub fn command(&self, args: &[&str]) -> String {
        let stream = TcpStream::connect_timeout(&self.addr(), WAIT).expect("connect to redis-server");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(stream);
        if let Some(password) = &self.password {
            send(reader.get_mut(), &["AUTH", password]);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
        }
        send(reader.get_mut(), args);
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply from redis-server");
        if line.starts_with('$') && !line.starts_with("$-1") {
            line.clear();
            reader.read_line(&mut line).expect("bulk string from redis-server");
        }
        line.trim_end().to_owned()
    }

    /// Runs the server process and waits until it answers `PING`; false if it exited first.
    fn launch(&mut self) -> bool {
        let port = self.port.to_string();
        let dir = self.dir.path().to_str().expect("UTF-8 temporary path").to_owned();
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir])
            .args(["--logfile", log.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the tests of `policy: redis` need it \
                 (`apt-get install redis-server`; scripts/test.sh installs it)"
            ),
            Err(error) => panic!("cannot run redis-server: {error}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if self.answers_ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING within {WAIT:?}: {}", self.port, self.log());
    }

    /// Whether the server answers `PING` now (`-NOAUTH` counts: it is up).
    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        send(&mut stream, &["PING"]);
        let mut reply = [0u8; 16];
        matches!(stream.read(&mut reply), Ok(n) if n > 0 && (reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH")))
    }

    /// The server's log, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port on 127.0.0.1 nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Writes `args` as a RESP command.
fn send(stream: &mut TcpStream, args: &[&str]) {
    let mut bytes = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        bytes.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    stream.write_all(&bytes).expect("send to redis-server");
}
