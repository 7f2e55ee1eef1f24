//! Calling upstreams from a filter: auth callouts, JWKS fetches, aggregation, mirroring.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::reason::Reason;

/// A future on the worker's thread (filters run on a single-threaded `LocalSet`).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Sends requests to configured clusters over the worker's connection pools.
///
/// The request's URI is its path and query; the `host` header, when absent, is set from the
/// cluster's `host_header` policy. The response body is read whole, up to a bounded size.
pub trait Subrequests {
    /// Sends `request` to a healthy endpoint of `cluster` and waits at most `timeout` for the
    /// whole response. Fails with the reason the proxy would have given a client.
    fn send<'a>(
        &'a self,
        cluster: &'a str,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> LocalFuture<'a, Result<http::Response<Bytes>, Reason>>;
}
