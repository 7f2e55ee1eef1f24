//! Bytes per second per client address (Squid `delay_pools` with one bucket per client): one
//! token bucket per client, shared by all its responses and tunnels on every worker.
//!
//! A chunk is never held back before it is sent: it takes its bytes from the bucket, possibly
//! into debt, and the next chunk waits until the debt is paid. Over any period the client gets
//! at most the rate times the period, plus one bucket (a second's worth) and one chunk.

use std::collections::HashMap;
use std::future::Future as _;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Clients tracked before idle ones (with a full bucket) are forgotten.
const TRACKED: usize = 16 * 1024;

/// The buckets of one forward-proxy route's clients.
#[derive(Debug)]
pub(crate) struct ClientBandwidth {
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// One client's bucket: bytes it may still send now (negative: the debt), as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl ClientBandwidth {
    /// Buckets of `bytes_per_second` each, holding at most one second's worth.
    pub(crate) fn new(bytes_per_second: u64) -> ClientBandwidth {
        ClientBandwidth { rate: bytes_per_second.max(1) as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `bytes` from `client`'s bucket; returns how long its next chunk must wait.
    pub(crate) fn take(&self, client: IpAddr, bytes: usize) -> Duration {
        self.take_at(client, bytes, Instant::now())
    }

    fn take_at(&self, client: IpAddr, bytes: usize, now: Instant) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= TRACKED && !buckets.contains_key(&client) {
            let (rate, burst) = (self.rate, self.rate);
            buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket { tokens: self.rate, at: now });
        let refilled = bucket.tokens + self.rate * now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = refilled.min(self.rate) - bytes as f64;
        bucket.at = now;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.rate)
        }
    }
}

/// The pacing of one client's tunnel: its route's buckets and its address.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    /// The route's buckets.
    pub limit: std::sync::Arc<ClientBandwidth>,
    /// The client.
    pub client: IpAddr,
}

/// A response body sent no faster than its client's bandwidth allows.
pub(crate) struct Throttled<'a, B> {
    inner: B,
    limit: &'a ClientBandwidth,
    client: IpAddr,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a, B> Throttled<'a, B> {
    /// `inner`, paced by `client`'s bucket in `limit`.
    pub(crate) fn new(inner: B, limit: &'a ClientBandwidth, client: IpAddr) -> Throttled<'a, B> {
        Throttled { inner, limit, client, wait: None }
    }
}

impl<B> Body for Throttled<'_, B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if let Some(wait) = &mut this.wait {
            std::task::ready!(wait.as_mut().poll(cx));
            this.wait = None;
        }
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            if let Some(data) = frame.data_ref() {
                let pause = this.limit.take(this.client, data.len());
                if !pause.is_zero() {
                    this.wait = Some(Box::pin(tokio::time::sleep(pause)));
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_rate_and_one_burst_and_others_their_own() {
        let limit = ClientBandwidth::new(1000);
        let start = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        // The first second's worth goes at once; then each chunk waits for its bytes.
        assert_eq!(limit.take_at(a, 1000, start), Duration::ZERO);
        assert_eq!(limit.take_at(a, 500, start), Duration::from_millis(500));
        assert_eq!(limit.take_at(b, 1000, start), Duration::ZERO, "another client has its own bucket");
        // Half a second later the debt is paid: the next 500 bytes are a new debt.
        assert_eq!(limit.take_at(a, 500, start + Duration::from_millis(500)), Duration::from_millis(500));
        // After a long pause the bucket is full again, never fuller.
        assert_eq!(limit.take_at(a, 1000, start + Duration::from_secs(60)), Duration::ZERO);
        assert!(limit.take_at(a, 1, start + Duration::from_secs(60)) > Duration::ZERO);
    }
}
