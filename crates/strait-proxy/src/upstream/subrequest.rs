//! Sub-requests for filters: a whole request to a cluster, a whole response back.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
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

/// Sub-requests against the clusters of one snapshot, on this worker's pools.
pub(crate) struct SnapshotSubrequests {
    snapshot: Arc<Snapshot>,
}

impl SnapshotSubrequests {
    /// Sub-requests to the clusters of `snapshot`.
    pub(crate) fn new(snapshot: Arc<Snapshot>) -> SnapshotSubrequests {
        SnapshotSubrequests { snapshot }
    }

    async fn send_to(
        &self,
        cluster: &str,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, Reason> {
        let upstream = self.snapshot.upstreams.get(cluster).ok_or(Reason::NoHealthyUpstream)?;
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
        let collected = tokio::time::timeout_at(deadline, body::collect(&mut upstream_body, MAX_SUBRESPONSE)).await;
        match collected {
            Ok(Ok((data, _))) => Ok(http::Response::from_parts(head, data)),
            Ok(Err(BodyError(reason))) => Err(reason),
            Err(_) => Err(Reason::UpstreamTimeout),
        }
    }
}

impl Subrequests for SnapshotSubrequests {
    fn send<'a>(
        &'a self,
        cluster: &'a str,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> LocalFuture<'a, Result<http::Response<Bytes>, Reason>> {
        Box::pin(self.send_to(cluster, request, timeout))
    }
}
