//! Requests of one worker thread decided together: those that reach the store while a batch
//! is being gathered go to Redis in one script call.
//!
//! The first request of a batch spawns its flush as a task of the thread's runtime; the
//! task runs once the runtime gets to it, after the work queued before it, so the requests
//! the thread handles meanwhile join. It takes the queue (at most [`MAX_BATCH`] requests; a
//! fuller queue spawns the next flush) and sends one `EVALSHA`. (Yielding once more made
//! larger batches, about 37 instead of 17 on the bench, but cost more in waiting than it saved
//! Redis: about 0.72 of the local policy's requests a second instead of 0.77.) Each request waits for its own answer on a oneshot channel, within
//! its own timeout. The flush task owns what it sends, so a request that goes away (its
//! client closed, its timeout passed) never stops the others' batch.
//!
//! One script call costs Redis some microseconds however little it does; inside it, a
//! request is a `MGET` and an `INCR` per window, well under one. On the bench's loopback
//! setup a batch holds about seventeen requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, ServerErrorKind};
use tokio::sync::oneshot;

use super::super::window::{Limit, Usage};
use super::script::{self, Invoke, Reply, Request, MAX_BATCH};

/// Why a batch failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// Whether the connection is unusable (to be made again after the pause).
    pub connection_lost: bool,
}

/// What one request is told.
pub type Answer = Result<Usage, Failure>;

/// What every batch of one store shares: where counters are and against which limits.
#[derive(Debug)]
pub struct Filter {
    /// `strait:rl:<filter>`.
    pub prefix: String,
    /// The limits, shortest window first.
    pub limits: Vec<Limit>,
    /// The script's SHA-1.
    pub sha: &'static str,
}

/// One request waiting in a batch.
struct Waiting {
    request: Request,
    answer: oneshot::Sender<Answer>,
}

/// The requests of one thread and store waiting for the next flush.
#[derive(Default)]
pub struct Queue {
    waiting: Mutex<Vec<Waiting>>,
}

impl Queue {
    /// Queues `request` for Redis on `connection`, starting a flush when it is the first of
    /// its batch; the answer comes on the returned channel.
    pub fn submit(
        self: &Arc<Queue>,
        request: Request,
        filter: &Arc<Filter>,
        connection: &MultiplexedConnection,
    ) -> oneshot::Receiver<Answer> {
        let (answer, receiver) = oneshot::channel();
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.push(Waiting { request, answer });
            waiting.len() == 1
        };
        if first {
            spawn_flush(self.clone(), filter.clone(), connection.clone());
        }
        receiver
    }
}

/// Starts a flush of `queue` as a task of the thread's runtime.
fn spawn_flush(queue: Arc<Queue>, filter: Arc<Filter>, connection: MultiplexedConnection) {
    let flush: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(flush(queue, filter, connection));
    tokio::spawn(flush);
}

/// Sends the waiting requests and answers each.
async fn flush(queue: Arc<Queue>, filter: Arc<Filter>, mut connection: MultiplexedConnection) {
    let batch: Vec<Waiting> = {
        let mut waiting = queue.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = waiting.len().min(MAX_BATCH);
        let batch = waiting.drain(..taken).collect();
        if !waiting.is_empty() {
            spawn_flush(queue.clone(), filter.clone(), connection.clone());
        }
        batch
    };
    // A request that stopped waiting (its timeout passed) was let through or refused
    // already: it is not counted now.
    let (requests, answers): (Vec<Request>, Vec<oneshot::Sender<Answer>>) =
        batch.into_iter().filter(|w| !w.answer.is_closed()).map(|w| (w.request, w.answer)).unzip();
    if requests.is_empty() {
        return;
    }
    match decide(&filter, &requests, &mut connection).await {
        Ok(usages) => {
            for (answer, usage) in answers.into_iter().zip(usages) {
                let _ = answer.send(Ok(usage));
            }
        }
        Err(failure) => {
            for answer in answers {
                let _ = answer.send(Err(failure.clone()));
            }
        }
    }
}

/// One script call for `requests` (sent in full once if the server does not have it).
async fn decide(
    filter: &Filter,
    requests: &[Request],
    connection: &mut MultiplexedConnection,
) -> Result<Vec<Usage>, Failure> {
    let failed = |message: String| Failure { message, connection_lost: false };
    let mut invoke = Invoke::Sha(filter.sha);
    loop {
        let command = script::command(invoke, &filter.prefix, requests, &filter.limits);
        let reply = match connection.send_packed_command(&command).await {
            Ok(value) => script::reply(value, requests, &filter.limits).map_err(failed)?,
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => Reply::NoScript,
            Err(error) if error.is_unrecoverable_error() || error.is_io_error() => {
                return Err(Failure { message: format!("Redis connection failed: {error}"), connection_lost: true })
            }
            Err(error) => return Err(failed(format!("Redis failed: {error}"))),
        };
        match reply {
            Reply::Decided(usages) => return Ok(usages),
            Reply::NoScript if matches!(invoke, Invoke::Sha(_)) => invoke = Invoke::Source,
            Reply::NoScript => return Err(failed("Redis refused the script".to_owned())),
        }
    }
}
