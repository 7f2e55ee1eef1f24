//! Sub-requests: a whole request to a cluster, a whole response back. Filters get the
//! response without trailers through [`Subrequests`], which a [`Snapshot`] is (a request's
//! context holds its snapshot's `Arc`, so handing it out allocates nothing); the proxy's own
//! actions that need the trailers (gRPC transcoding reads `grpc-status` there) call
//! [`Snapshot::subrequest`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use strait_cluster::PickContext;
use strait_http::subrequest::LocalFuture;
use strait_http::{Reason, Subrequests};
use tokio::time::Instant;

use super::client::{self, SendOptions};
use crate::body::{self, BodyError, Full};
use crate::snapshot::Snapshot;

/// Largest sub-response body read.
const MAX_SUBRESPONSE: u64 = 8 << 20;

/// A snapshot's sub-requests: to its clusters, on this worker's pools.
impl Snapshot {
    /// Sends `request` to `cluster` within `timeout` and reads the whole answer (at most
    /// `max` bytes of body): the head, the body and the trailers, if any.
    pub(crate) async fn subrequest(
        &self,
        cluster: &str,
        request: http::Request<Bytes>,
        timeout: Duration,
        max: u64,
    ) -> Result<WholeResponse, Reason> {
        let upstream = self.upstreams.get(cluster).ok_or(Reason::NoHealthyUpstream)?;
        let cluster = &upstream.state;
        let pick = PickContext { client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), hash_key: None };
        let endpoint = cluster.pick(&pick, &[]).ok_or(Reason::NoHealthyUpstream)?;
        let (mut parts, data) = request.into_parts();
        if !parts.headers.contains_key(header::HOST) {
            let host = match cluster.config.host_header.as_str() {
                "preserve" | "endpoint" => endpoint.addr.to_string(),
                literal => literal.to_owned(),
            };
            if let Ok(value) = http::HeaderValue::from_str(&host) {
                parts.headers.insert(header::HOST, value);
            }
        }
        let deadline = Instant::now() + timeout;
        let cfg = &cluster.config;
        let options = SendOptions {
            connect_timeout: cfg.timeouts.connect.0,
            deadline: Some(deadline),
            response_header_timeout: cfg.timeouts.response_header.0,
            body_timeout: cfg.timeouts.body.0,
            keepalive: cfg.keepalive,
            idle: cfg.timeouts.idle.0,
        };
        let _in_flight = endpoint.start_request();
        let response =
            match client::send(&upstream.connector, endpoint.addr, &parts, Full::new(data), &options, Instant::now())
                .await
            {
                Ok(response) => response,
                Err(failure) => {
                    if failure.endpoint_fault {
                        endpoint.report_failure();
                    }
                    return Err(failure.reason);
                }
            };
        endpoint.report_success();
        let (head, mut upstream_body) = response.into_parts();
        let collected = tokio::time::timeout_at(deadline, body::collect(&mut upstream_body, max)).await;
        match collected {
            Ok(Ok((body, trailers))) => Ok(WholeResponse { head, body, trailers }),
            Ok(Err(BodyError(reason))) => Err(reason),
            Err(_) => Err(Reason::UpstreamTimeout),
        }
    }
}

/// A whole upstream answer: head, body and trailers.
pub(crate) struct WholeResponse {
    /// Status and headers.
    pub(crate) head: http::response::Parts,
    /// The body.
    pub(crate) body: Bytes,
    /// The trailers, when the upstream sent some.
    pub(crate) trailers: Option<http::HeaderMap>,
}

impl Subrequests for Snapshot {
    fn send<'a>(
        &'a self,
        cluster: &'a str,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> LocalFuture<'a, Result<http::Response<Bytes>, Reason>> {
        Box::pin(async move {
            let whole = self.subrequest(cluster, request, timeout, MAX_SUBRESPONSE).await?;
            Ok(http::Response::from_parts(whole.head, whole.body))
        })
    }
}
