//! One multiplexed Redis connection per worker thread and store, made on first use and
//! remade after a failure, with a growing pause so a Redis that is down costs no connection
//! attempt per request.
//!
//! Why per thread: every worker runs its own single-threaded Tokio runtime, and a
//! multiplexed connection's driver is a task of the runtime that made it. A connection made
//! on one worker would make every other worker's requests wait for that worker's thread (and
//! cross threads twice per request); a connection per thread keeps each request on its own
//! worker, and the driver lives as long as that worker's runtime. Within a thread the
//! connection is shared by all its requests: concurrent commands are pipelined on it (sent
//! together, answered in order), so a burst costs few system calls and no new connection.
//!
//! States: **idle** (no connection yet), **connecting** (one attempt, which every request of
//! the thread that needs the connection meanwhile waits for), **ready**, and **down** (the
//! last attempt or the connection failed; requests fail at once until the pause is over, then
//! the next one tries again). The pause starts at [`FIRST_PAUSE`] and doubles per failed
//! attempt up to [`LONGEST_PAUSE`]; a successful connection resets it, so once Redis answers
//! again counting resumes within at most that pause.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::future::{FutureExt, Shared};
use redis::aio::MultiplexedConnection;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::batch::Queue;
use super::config::RedisServer;

/// Pause after the first failure before connecting again.
pub const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between attempts while Redis stays unreachable.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// What a store's link is given: the server, shared by the store and every thread's link.
pub type Target = Arc<RedisServer>;

/// An attempt to connect, awaited by every request that needs the connection meanwhile.
type Attempt = Shared<Pin<Box<dyn Future<Output = Result<MultiplexedConnection, String>>>>>;

/// The state of one thread's connection to one server.
enum State {
    /// Never connected.
    Idle,
    /// An attempt is under way.
    Connecting(Attempt),
    /// Connected; `generation` tells this connection from later ones.
    Ready { connection: MultiplexedConnection, generation: u64 },
    /// Failed: no attempt before `retry_at`; requests fail with `error` until then.
    Down { retry_at: Instant, error: String },
}

/// One thread's connection to one store's server.
pub struct Link {
    target: Weak<RedisServer>,
    /// Requests waiting for the next batch (see [`super::batch`]).
    pub queue: Arc<Queue>,
    state: RefCell<State>,
    /// Pause to wait after the next failure.
    pause: RefCell<Duration>,
    /// Counts connections made, for [`State::Ready`]'s generation.
    generation: RefCell<u64>,
}

thread_local! {
    /// This thread's links, one per live store.
    static LINKS: RefCell<Vec<Rc<Link>>> = const { RefCell::new(Vec::new()) };
}

/// A connection and the generation it belongs to, for [`Link::failed`].
pub struct Connected {
    /// The connection (a cheap handle onto the shared one).
    pub connection: MultiplexedConnection,
    /// Its generation.
    pub generation: u64,
}

impl Link {
    /// This thread's link for `target`, made on first use; links of stores that are gone (an
    /// earlier configuration) are dropped then, closing their connections.
    pub fn of(target: &Target) -> Rc<Link> {
        LINKS.with(|links| {
            let mut links = links.borrow_mut();
            if let Some(link) = links.iter().find(|l| l.target.as_ptr() == Arc::as_ptr(target)) {
                return link.clone();
            }
            links.retain(|l| l.target.strong_count() > 0);
            let link = Rc::new(Link {
                target: Arc::downgrade(target),
                queue: Arc::default(),
                state: RefCell::new(State::Idle),
                pause: RefCell::new(FIRST_PAUSE),
                generation: RefCell::new(0),
            });
            links.push(link.clone());
            link
        })
    }

    /// The connection, once there is one: at once when ready, after the attempt under way
    /// (or a new one) otherwise; an error while Redis is down.
    pub async fn connection(&self, server: &RedisServer) -> Result<Connected, String> {
        loop {
            let attempt = {
                let mut state = self.state.borrow_mut();
                match &*state {
                    State::Ready { connection, generation } => {
                        return Ok(Connected { connection: connection.clone(), generation: *generation })
                    }
                    State::Down { retry_at, error } if Instant::now() < *retry_at => {
                        return Err(error.clone());
                    }
                    State::Connecting(attempt) => attempt.clone(),
                    State::Idle | State::Down { .. } => {
                        let attempt = connect(server.clone()).boxed_local().shared();
                        *state = State::Connecting(attempt.clone());
                        attempt
                    }
                }
            };
            let result = attempt.clone().await;
            self.settle(&attempt, result);
        }
    }

    /// Records the outcome of `attempt`, unless another request already did.
    fn settle(&self, attempt: &Attempt, result: Result<MultiplexedConnection, String>) {
        let mut state = self.state.borrow_mut();
        if !matches!(&*state, State::Connecting(current) if current.ptr_eq(attempt)) {
            return;
        }
        *state = match result {
            Ok(connection) => {
                *self.pause.borrow_mut() = FIRST_PAUSE;
                let mut generation = self.generation.borrow_mut();
                *generation += 1;
                State::Ready { connection, generation: *generation }
            }
            Err(error) => self.down(error),
        };
    }

    /// Marks the connection of `generation` as broken (a lost connection, a timeout): the
    /// next attempt waits for the pause. Nothing happens if a later connection replaced it.
    pub fn failed(&self, generation: u64, error: &str) {
        let mut state = self.state.borrow_mut();
        if matches!(&*state, State::Ready { generation: current, .. } if *current == generation) {
            *state = self.down(error.to_owned());
        }
    }

    /// The down state after a failure, doubling the pause for the next one.
    fn down(&self, error: String) -> State {
        let mut pause = self.pause.borrow_mut();
        let this = *pause;
        *pause = (this * 2).min(LONGEST_PAUSE);
        State::Down { retry_at: Instant::now() + this, error }
    }
}

/// Connects to `server`: TCP, `AUTH` and `SELECT` as configured, within its timeout.
async fn connect(server: RedisServer) -> Result<MultiplexedConnection, String> {
    let mut redis = RedisConnectionInfo::default().set_db(i64::from(server.database));
    if let Some(username) = &server.username {
        redis = redis.set_username(username);
    }
    if let Some(password) = &server.password {
        redis = redis.set_password(&password.0);
    }
    // Without TCP_NODELAY, a command written while the previous one is unacknowledged would
    // wait for that acknowledgement (Nagle's algorithm).
    let info = ConnectionAddr::Tcp(server.host.clone(), server.port)
        .into_connection_info()
        .map_err(|e| e.to_string())?
        .set_tcp_settings(TcpSettings::default().set_nodelay(true))
        .set_redis_settings(redis);
    let client = Client::open(info).map_err(|e| e.to_string())?;
    // Requests bound their whole wait themselves; the connection adds no timer per command.
    let config = AsyncConnectionConfig::new().set_connection_timeout(Some(server.timeout)).set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("cannot connect to Redis at {}:{}: {e}", server.host, server.port))
}
