//! Worker threads, listening sockets, live reload and draining.
//!
//! Each worker is one OS thread running a single-threaded Tokio runtime. Every listener has
//! one socket per worker, bound with `SO_REUSEPORT` so the kernel spreads connections across
//! workers and a connection stays on the thread that accepted it (its upstream pool is that
//! thread's, without locks). A separate control runtime runs health checks and DNS.
//!
//! A reload compiles a new snapshot, binds any new listeners first (a failure leaves the
//! running configuration untouched), swaps the snapshot, then tells workers which
//! listeners to start and stop. Requests in flight finish on the snapshot they started with.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use strait_cluster::ClusterRegistry;
use strait_config::Config;
use strait_http::Registry;
use strait_observe::AccessLog;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, LocalSet};

use crate::driver::{serve_tcp, serve_tls};
use crate::listener_tls::TlsCache;
use crate::shared::Shared;
use crate::snapshot::Snapshot;

/// How often each worker closes expired and upstream-closed idle upstream connections.
const POOL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Listen backlog of every socket.
const BACKLOG: i32 = 4096;

/// Why the server could not start or apply a configuration.
#[derive(Debug)]
pub struct ServerError(pub String);

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

/// What the control side tells a worker.
enum WorkerCommand {
    /// Accept connections on this socket for the named listener.
    Listen { name: Arc<str>, socket: std::net::TcpListener },
    /// Serve the datagrams of this socket for the named UDP listener.
    ListenUdp { name: Arc<str>, socket: std::net::UdpSocket },
    /// Stop accepting for the named listener; its TCP sessions close at `deadline`.
    Unlisten { name: Arc<str>, deadline: Instant },
    /// Stop accepting everything, finish open connections by the deadline, exit.
    Stop { deadline: Instant },
}

/// A worker thread and its command channel.
struct Worker {
    commands: mpsc::UnboundedSender<WorkerCommand>,
    thread: JoinHandle<()>,
}

/// The sockets of one listener (one per worker) and the address they are bound to.
struct BoundListener {
    configured: String,
    /// UDP sockets rather than TCP ones (the same address may have both, as two listeners).
    udp: bool,
    local: SocketAddr,
}

/// A running Strait server.
pub struct Server {
    shared: Arc<Shared>,
    control: tokio::runtime::Runtime,
    registry: ClusterRegistry,
    workers: Vec<Worker>,
    bound: Mutex<HashMap<Arc<str>, BoundListener>>,
    generation: AtomicU64,
    current: Mutex<Config>,
    plugins: Registry,
    tls: TlsCache,
}

impl Server {
    /// Starts workers and listeners for a validated configuration, with the built-in plugins.
    pub fn start(config: Config) -> Result<Server, ServerError> {
        Server::start_with(config, strait_plugins::builtin())
    }

    /// Starts workers and listeners for a validated configuration; filters are built by name
    /// from `registry`.
    pub fn start_with(config: Config, plugins: Registry) -> Result<Server, ServerError> {
        let control = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("strait-control")
            .enable_all()
            .build()
            .map_err(|e| ServerError(format!("cannot start control runtime: {e}")))?;
        let registry = ClusterRegistry::new(control.handle().clone());
        let access_log = AccessLog::open(&config.access_log)
            .map_err(|e| ServerError(format!("access_log.path `{}`: {e}", config.access_log.path)))?;
        let clusters = control.block_on(registry.update(&config.clusters)).map_err(ServerError)?;
        let tls = TlsCache::default();
        let snapshot = Snapshot::compile(1, &config, clusters, access_log, &plugins, &tls).map_err(ServerError)?;
        let shared = Arc::new(Shared::new(snapshot));
        let count = worker_count(&config);
        let workers = (0..count).map(|i| spawn_worker(i, shared.clone())).collect::<Result<Vec<_>, _>>()?;
        let server = Server {
            shared,
            control,
            registry,
            workers,
            bound: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(1),
            current: Mutex::new(Config::default()),
            plugins,
            tls,
        };
        server.apply_listeners(&config)?;
        *server.current.lock().expect("config lock") = config;
        Ok(server)
    }

    /// Applies a new validated configuration without dropping connections or requests.
    ///
    /// On error nothing changes: the running configuration keeps serving.
    pub fn reload(&self, config: Config) -> Result<(), ServerError> {
        let mut current = self.current.lock().expect("config lock");
        if config.workers != current.workers {
            tracing::warn!("`workers` changes take effect after a restart");
        }
        let access_log = if config.access_log == current.access_log {
            self.shared.snapshot.load().access_log.clone()
        } else {
            AccessLog::open(&config.access_log)
                .map_err(|e| ServerError(format!("access_log.path `{}`: {e}", config.access_log.path)))?
        };
        // Fallible steps run in this order so that a failure leaves everything as it was: new
        // sockets are only dropped, and the cluster registry (which keeps its old states when
        // its own update fails) is touched only once the listeners are in hand.
        let new_sockets = self.bind_new_listeners(&config)?;
        let clusters = self.control.block_on(self.registry.update(&config.clusters)).map_err(ServerError)?;
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let snapshot = Snapshot::compile(generation, &config, clusters, access_log, &self.plugins, &self.tls)
            .map_err(ServerError)?;
        self.shared.snapshot.store(Arc::new(snapshot));
        self.generation.store(generation, Ordering::Relaxed);
        self.switch_listeners(&config, new_sockets);
        *current = config;
        tracing::info!(generation, "configuration applied");
        Ok(())
    }

    /// The generation of the configuration being served (1 at start, +1 per reload).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The bound address of every listener, by name.
    pub fn listener_addrs(&self) -> Vec<(String, SocketAddr)> {
        let bound = self.bound.lock().expect("listener lock");
        let mut addrs: Vec<_> = bound.iter().map(|(n, b)| (n.to_string(), b.local)).collect();
        addrs.sort();
        addrs
    }

    /// The bound address of one listener.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.bound.lock().expect("listener lock").get(name).map(|b| b.local)
    }

    /// Files besides the configuration whose change should reload it (certificates, keys).
    pub fn watched_files(&self) -> Vec<std::path::PathBuf> {
        self.tls.files()
    }

    /// Reopens the access log file (after log rotation).
    pub fn reopen_logs(&self) {
        self.shared.snapshot.load().access_log.reopen();
    }

    /// Open client connections.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }

    /// Stops accepting, lets in-flight requests finish within the configured drain timeout,
    /// and stops every thread.
    pub fn shutdown(self) {
        let drain = self.shared.snapshot.load().server.drain_timeout;
        let deadline = Instant::now() + drain;
        for worker in &self.workers {
            let _ = worker.commands.send(WorkerCommand::Stop { deadline });
        }
        for worker in self.workers {
            let _ = worker.thread.join();
        }
        self.shared.snapshot.load().access_log.flush();
        self.control.shutdown_timeout(Duration::from_secs(1));
    }

    /// Binds every listener of a fresh start.
    fn apply_listeners(&self, config: &Config) -> Result<(), ServerError> {
        let sockets = self.bind_new_listeners(config)?;
        self.switch_listeners(config, sockets);
        Ok(())
    }

    /// Binds sockets for listeners that are new or whose address changed.
    fn bind_new_listeners(&self, config: &Config) -> Result<HashMap<Arc<str>, BoundSockets>, ServerError> {
        let bound = self.bound.lock().expect("listener lock");
        let mut fresh = HashMap::new();
        for listener in &config.listeners {
            let udp = listener.udp.is_some();
            let unchanged =
                bound.get(listener.name.as_str()).is_some_and(|b| b.configured == listener.bind && b.udp == udp);
            if unchanged {
                continue;
            }
            let addr: SocketAddr = listener
                .bind
                .parse()
                .map_err(|_| ServerError(format!("listener `{}`: invalid bind `{}`", listener.name, listener.bind)))?;
            let sockets = if udp {
                crate::l4::udp::socket::bind_reuseport(addr, self.workers.len())
                    .map(|(sockets, local)| BoundSockets { sockets: Sockets::Udp(sockets), local })
            } else {
                bind_reuseport(addr, self.workers.len())
            };
            let sockets =
                sockets.map_err(|e| ServerError(format!("listener `{}`: cannot bind {addr}: {e}", listener.name)))?;
            fresh.insert(Arc::from(listener.name.as_str()), sockets);
        }
        Ok(fresh)
    }

    /// Starts the new listeners on every worker and stops removed or replaced ones.
    fn switch_listeners(&self, config: &Config, fresh: HashMap<Arc<str>, BoundSockets>) {
        let mut bound = self.bound.lock().expect("listener lock");
        let wanted: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        let removed: Vec<Arc<str>> =
            bound.keys().filter(|name| !wanted.contains(&&***name) || fresh.contains_key(&***name)).cloned().collect();
        let deadline = Instant::now() + self.shared.snapshot.load().server.drain_timeout;
        for name in removed {
            for worker in &self.workers {
                let _ = worker.commands.send(WorkerCommand::Unlisten { name: name.clone(), deadline });
            }
            bound.remove(&name);
            tracing::info!(listener = %name, "listener stopped");
        }
        for (name, sockets) in fresh {
            let configured =
                config.listeners.iter().find(|l| *l.name == *name).map(|l| l.bind.clone()).unwrap_or_default();
            let udp = matches!(sockets.sockets, Sockets::Udp(_));
            match sockets.sockets {
                Sockets::Tcp(listeners) => {
                    for (worker, socket) in self.workers.iter().zip(listeners) {
                        let _ = worker.commands.send(WorkerCommand::Listen { name: name.clone(), socket });
                    }
                }
                Sockets::Udp(sockets) => {
                    for (worker, socket) in self.workers.iter().zip(sockets) {
                        let _ = worker.commands.send(WorkerCommand::ListenUdp { name: name.clone(), socket });
                    }
                }
            }
            tracing::info!(listener = %name, addr = %sockets.local, udp, "listening");
            bound.insert(name, BoundListener { configured, udp, local: sockets.local });
        }
    }
}

/// One socket per worker, all bound to the same address.
struct BoundSockets {
    sockets: Sockets,
    local: SocketAddr,
}

/// A listener's sockets, one per worker: TCP listening sockets or UDP sockets.
enum Sockets {
    Tcp(Vec<std::net::TcpListener>),
    Udp(Vec<std::net::UdpSocket>),
}

/// Binds `count` listening sockets to `addr` with `SO_REUSEPORT`; port 0 is resolved by the
/// first socket and reused by the others.
fn bind_reuseport(addr: SocketAddr, count: usize) -> std::io::Result<BoundSockets> {
    let mut sockets = Vec::with_capacity(count);
    let mut local = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(local), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if local.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        socket.bind(&local.into())?;
        socket.listen(BACKLOG)?;
        let std_listener: std::net::TcpListener = socket.into();
        local = std_listener.local_addr()?;
        sockets.push(std_listener);
    }
    Ok(BoundSockets { sockets: Sockets::Tcp(sockets), local })
}

/// Number of worker threads for a configuration.
fn worker_count(config: &Config) -> usize {
    match config.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    }
}

/// Starts one worker thread with its own single-threaded runtime.
fn spawn_worker(index: usize, shared: Arc<Shared>) -> Result<Worker, ServerError> {
    let (commands, receiver) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServerError(format!("cannot start worker runtime: {e}")))?;
    let thread = std::thread::Builder::new()
        .name(format!("strait-worker-{index}"))
        .spawn(move || {
            let local = LocalSet::new();
            local.block_on(&runtime, run_worker(receiver, shared));
        })
        .map_err(|e| ServerError(format!("cannot start worker thread: {e}")))?;
    Ok(Worker { commands, thread })
}

/// A worker's main loop: follow commands, accept connections, drain at the end.
async fn run_worker(mut commands: mpsc::UnboundedReceiver<WorkerCommand>, shared: Arc<Shared>) {
    let mut accepting: HashMap<Arc<str>, AbortHandle> = HashMap::new();
    let sweeper = tokio::task::spawn_local(async {
        let mut every = tokio::time::interval(POOL_SWEEP_INTERVAL);
        loop {
            every.tick().await;
            crate::upstream::sweep_idle_connections();
        }
    });
    while let Some(command) = commands.recv().await {
        match command {
            WorkerCommand::Listen { name, socket } => {
                let listener = match tokio::net::TcpListener::from_std(socket) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(listener = %name, error = %e, "cannot register listener");
                        continue;
                    }
                };
                let task = tokio::task::spawn_local(accept_loop(listener, name.clone(), shared.clone()));
                if let Some(old) = accepting.insert(name, task.abort_handle()) {
                    old.abort();
                }
            }
            WorkerCommand::ListenUdp { name, socket } => {
                let task = tokio::task::spawn_local(crate::l4::udp::serve(socket, name.clone(), shared.clone()));
                if let Some(old) = accepting.insert(name, task.abort_handle()) {
                    old.abort();
                }
            }
            WorkerCommand::Unlisten { name, deadline } => {
                if let Some(task) = accepting.remove(&name) {
                    task.abort();
                }
                crate::l4::drain::start(&name, deadline.into());
                crate::l4::udp::end_listener(&name);
            }
            WorkerCommand::Stop { deadline } => {
                for (_, task) in accepting.drain() {
                    task.abort();
                }
                crate::driver::drain::start();
                crate::l4::drain::start_all(deadline.into());
                crate::l4::udp::end_all();
                while shared.open_connections() > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                sweeper.abort();
                return;
            }
        }
    }
}

/// Accepts connections for one listener and serves each on this worker.
async fn accept_loop(listener: tokio::net::TcpListener, name: Arc<str>, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((mut stream, peer)) => {
                let shared = shared.clone();
                let name = name.clone();
                let (tls, http2, tcp, accept, max, max_per_ip) = {
                    let snapshot = shared.snapshot.load();
                    let (max, max_per_ip) = (snapshot.server.max_connections, snapshot.server.max_connections_per_ip);
                    match snapshot.listener(&name) {
                        Some(plan) => (
                            plan.tls.as_ref().map(|t| t.acceptor()),
                            plan.http2,
                            plan.tcp.clone(),
                            plan.proxy_protocol.clone(),
                            max,
                            max_per_ip,
                        ),
                        None => (None, false, None, None, max, max_per_ip),
                    }
                };
                if let Some(tcp) = tcp {
                    tokio::task::spawn_local(async move {
                        let Some(_open) = shared.admit(peer.ip(), max, max_per_ip) else {
                            tracing::debug!(%peer, "connection refused: limit reached");
                            return;
                        };
                        crate::l4::accepted::serve_accepted(stream, peer, name, &shared, tcp, accept.as_deref()).await;
                    });
                    continue;
                }
                // Plain and TLS connections are tasks of their own types, so a plain
                // connection's task is not sized for a TLS handshake and session.
                match tls {
                    None => {
                        let task = async move {
                            let Some(_open) = shared.admit(peer.ip(), max, max_per_ip) else {
                                // Over a connection limit: closed at once, before any byte is read.
                                tracing::debug!(%peer, "connection refused: limit reached");
                                return;
                            };
                            let proxied = crate::proxy_protocol::http_client(&mut stream, peer, accept.as_deref());
                            let Some(peer) = proxied.await else { return };
                            serve_tcp(stream, peer, name, shared.clone(), http2).await;
                        };
                        tokio::task::spawn_local(task);
                    }
                    Some(acceptor) => {
                        tokio::task::spawn_local(async move {
                            let Some(_open) = shared.admit(peer.ip(), max, max_per_ip) else {
                                tracing::debug!(%peer, "connection refused: limit reached");
                                return;
                            };
                            let proxied = crate::proxy_protocol::http_client(&mut stream, peer, accept.as_deref());
                            let Some(peer) = proxied.await else { return };
                            serve_tls(stream, peer, name, shared.clone(), acceptor).await;
                        });
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
