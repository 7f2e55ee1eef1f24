//! The immutable, compiled form of a configuration that requests read.
//!
//! A reload compiles a new [`Snapshot`] and swaps it in; requests already running keep the
//! one they started with. Cluster state (health, counters) comes from the
//! [`strait_cluster::ClusterRegistry`] and survives swaps when its definition is unchanged.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use strait_cluster::ClusterState;
use strait_config::{Config, Route};
use strait_observe::AccessLog;
use strait_router::{PathRewrite, RouteTable};

use strait_http::{LocalResponse, Registry};

use crate::actions::aggregate::AggregatePlan;
use crate::actions::grpc_transcode::{self, TranscodePlan};
use crate::chain::{ConsumerFilters, FilterList};
use crate::h1::HeadLimits;
use crate::listener_tls::{ListenerTlsPlan, TlsCache};
use crate::scopes::{compile_filters, CompiledFilters, RouteFilters};
use crate::upstream::Connector;

/// A compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every applied configuration.
    pub generation: u64,
    /// Server-wide behaviour.
    pub server: ServerPlan,
    /// Listeners and their route tables.
    pub listeners: Vec<ListenerPlan>,
    /// Clusters by name.
    pub clusters: HashMap<String, Arc<ClusterState>>,
    /// Clusters with the connectors of their endpoints, by name.
    pub upstreams: HashMap<String, Upstream>,
    /// Access log.
    pub access_log: AccessLog,
    /// The filters of each consumer, once identified.
    pub consumer_filters: ConsumerFilters,
}

impl Snapshot {
    /// Compiles a validated configuration against the current cluster states, building its
    /// filters with `registry`.
    pub fn compile(
        generation: u64,
        config: &Config,
        clusters: HashMap<String, Arc<ClusterState>>,
        access_log: AccessLog,
        registry: &Registry,
        tls: &TlsCache,
    ) -> Result<Snapshot, String> {
        let server = ServerPlan::compile(config)?;
        let CompiledFilters { listeners: filters, consumers: consumer_filters } =
            compile_filters(config, registry).map_err(|errors| errors.to_string())?;
        let tls_plans = tls.plans(config).map_err(|errors| strait_config::ConfigErrors(errors).sorted().to_string())?;
        let connectors = crate::upstream::connector::build_all(config)
            .map_err(|errors| strait_config::ConfigErrors(errors).sorted().to_string())?;
        let mut transcoders = grpc_transcode::load_all(config)
            .map_err(|errors| strait_config::ConfigErrors(errors).sorted().to_string())?;
        let mut forward_proxies = crate::actions::forward_proxy::load_all(config)
            .map_err(|errors| strait_config::ConfigErrors(errors).sorted().to_string())?;
        let upstreams: HashMap<String, Upstream> = clusters
            .iter()
            .map(|(name, state)| {
                let connector = connectors.get(name).cloned().unwrap_or_else(|| Arc::new(Connector::plain()));
                (name.clone(), Upstream { state: state.clone(), connector })
            })
            .collect();
        let mut listeners = Vec::with_capacity(config.listeners.len());
        let mut filters = filters.into_iter();
        for (listener_index, (listener, tls)) in config.listeners.iter().zip(tls_plans).enumerate() {
            let bind: SocketAddr =
                listener.bind.parse().map_err(|_| format!("listener `{}`: invalid bind address", listener.name))?;
            let (listener_filters, route_filters) = filters.next().unwrap_or_default();
            let mut routes = Vec::with_capacity(listener.routes.len());
            for ((index, route), route_filters) in listener.routes.iter().enumerate().zip(route_filters) {
                let transcode = transcoders.remove(&(listener_index, index));
                let forward_proxy = forward_proxies.remove(&(listener_index, index));
                let plan = RoutePlan::compile(
                    &listener.name,
                    index,
                    route,
                    &upstreams,
                    route_filters,
                    transcode,
                    forward_proxy,
                )?;
                routes.push((route.matches.clone(), plan));
            }
            let table = RouteTable::build(routes).map_err(|e| format!("listener `{}`: {e}", listener.name))?;
            let tcp = listener
                .tcp
                .as_ref()
                .map(|tcp| crate::l4::TcpPlan::compile(&listener.name, tcp, tls.as_ref(), &clusters).map(Arc::new))
                .transpose()?;
            listeners.push(ListenerPlan {
                name: listener.name.as_str().into(),
                bind,
                routes: table,
                filters: listener_filters,
                tls,
                http2: listener.http2,
                path_normalization: strait_router::normalize::Options::from_config(&listener.path_normalization),
                tcp,
                proxy_protocol: listener
                    .proxy_protocol
                    .as_ref()
                    .map(|accept| crate::proxy_protocol::AcceptPlan::compile(&listener.name, accept).map(Arc::new))
                    .transpose()?,
                udp: listener
                    .udp
                    .as_ref()
                    .map(|udp| crate::l4::UdpPlan::compile(&listener.name, udp, &clusters).map(Arc::new))
                    .transpose()?,
            });
        }
        Ok(Snapshot { generation, server, listeners, clusters, upstreams, access_log, consumer_filters })
    }

    /// The listener plan with this name.
    pub fn listener(&self, name: &str) -> Option<&ListenerPlan> {
        self.listeners.iter().find(|l| &*l.name == name)
    }
}

/// Server-wide settings in the form the request path uses.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    /// Request head limits.
    pub head_limits: HeadLimits,
    /// Largest request body; `0` for no limit.
    pub max_body_bytes: u64,
    /// Most open client connections; `0` for no limit.
    pub max_connections: usize,
    /// Most open connections per client address; `0` for no limit.
    pub max_connections_per_ip: usize,
    /// Time to receive a request head.
    pub client_header_timeout: Duration,
    /// Time between two reads of a request body.
    pub client_body_timeout: Duration,
    /// Idle keep-alive time.
    pub idle_timeout: Duration,
    /// Longest whole exchange (`timeouts.exchange`); `None` for no limit.
    pub exchange_timeout: Option<Duration>,
    /// Slowest request body (`limits.min_request_body_rate`); `None` when unchecked.
    pub min_request_body_rate: Option<strait_config::MinRate>,
    /// Slowest response (`limits.min_response_body_rate`); `None` when unchecked.
    pub min_response_body_rate: Option<strait_config::MinRate>,
    /// Add `x-strait-reason` to Strait's own answers.
    pub reason_header: bool,
    /// Generate `x-request-id` when missing.
    pub request_id: bool,
    /// Keep a client's `x-request-id`.
    pub trust_request_id: bool,
    /// Add `Via`.
    pub via: bool,
    /// Add `X-Forwarded-*` and `X-Real-IP`.
    pub forwarded_headers: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Request trailer fields passed on to upstreams.
    pub request_trailers: Vec<HeaderName>,
    /// Deadline for in-flight requests at shutdown.
    pub drain_timeout: Duration,
    /// HTTP/2 limits.
    pub http2: strait_config::Http2Settings,
}

impl ServerPlan {
    fn compile(config: &Config) -> Result<ServerPlan, String> {
        let s = &config.server;
        let trusted_proxies = s
            .trusted_proxies
            .iter()
            .map(|t| {
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("invalid trusted proxy `{t}`"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ServerPlan {
            head_limits: HeadLimits {
                max_header_bytes: s.limits.max_header_bytes.0 as usize,
                max_uri_bytes: s.limits.max_uri_bytes.0 as usize,
                max_headers: s.limits.max_headers,
            },
            max_body_bytes: s.limits.max_body_bytes.0,
            max_connections: s.limits.max_connections,
            max_connections_per_ip: s.limits.max_connections_per_ip,
            client_header_timeout: s.timeouts.client_header.0,
            client_body_timeout: s.timeouts.client_body.0,
            idle_timeout: s.timeouts.idle.0,
            exchange_timeout: Some(s.timeouts.exchange.0).filter(|d| !d.is_zero()),
            min_request_body_rate: s.limits.min_request_body_rate,
            min_response_body_rate: s.limits.min_response_body_rate,
            reason_header: s.reason_header,
            request_id: s.request_id,
            trust_request_id: s.trust_request_id,
            via: s.via,
            forwarded_headers: s.forwarded_headers,
            trusted_proxies,
            request_trailers: s
                .request_trailers
                .iter()
                .map(|n| HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid trailer name `{n}`")))
                .collect::<Result<_, _>>()?,
            drain_timeout: s.drain_timeout.0,
            http2: s.http2.clone(),
        })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        !self.trusted_proxies.is_empty() && self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// A listener's name, configured address and routes.
#[derive(Debug)]
pub struct ListenerPlan {
    /// Listener name.
    pub name: Arc<str>,
    /// Configured bind address.
    pub bind: SocketAddr,
    /// Route table.
    pub routes: RouteTable<RoutePlan>,
    /// Filters run on every request before routing.
    pub filters: FilterList,
    /// TLS, on TLS listeners.
    pub tls: Option<Arc<ListenerTlsPlan>>,
    /// Cleartext HTTP/2 with prior knowledge is accepted beside HTTP/1.1.
    pub http2: bool,
    /// How request paths are normalized before routing; `None` when normalization is off.
    pub path_normalization: Option<strait_router::normalize::Options>,
    /// TCP forwarding (layer 4), instead of or (with passthrough routes) beside HTTP.
    pub(crate) tcp: Option<Arc<crate::l4::TcpPlan>>,
    /// PROXY protocol headers taken from trusted peers before the connection is served.
    pub(crate) proxy_protocol: Option<Arc<crate::proxy_protocol::AcceptPlan>>,
    /// UDP forwarding (layer 4): the listener's socket is a UDP one.
    pub(crate) udp: Option<Arc<crate::l4::UdpPlan>>,
}

/// A compiled route: its action and everything around it.
#[derive(Debug)]
pub struct RoutePlan {
    /// Route name (configured or `<listener>#<index>`).
    pub name: Arc<str>,
    /// What the route does.
    pub action: Action,
    /// Path rewrite before the action.
    pub rewrite: Option<PathRewrite>,
    /// Filters in order (the route's list, then its header-edit shorthands).
    pub filters: FilterList,
    /// The filters on this route of the consumers that have filters for it or its cluster,
    /// looked up before the snapshot's.
    pub consumer_filters: Option<ConsumerFilters>,
    /// Total time for the upstream exchange.
    pub timeout: Option<Duration>,
    /// The route's own whole-exchange limit, when it sets one (`Some(None)`: no limit).
    pub exchange_timeout: Option<Option<Duration>>,
    /// Retry policy.
    pub retries: RetryPolicy,
}

impl RoutePlan {
    fn compile(
        listener: &str,
        index: usize,
        route: &Route,
        clusters: &HashMap<String, Upstream>,
        filters: RouteFilters,
        transcode: Option<TranscodePlan>,
        forward_proxy: Option<crate::actions::forward_proxy::ForwardPlan>,
    ) -> Result<RoutePlan, String> {
        let RouteFilters { chain: filters, consumers: consumer_filters } = filters;
        let name: Arc<str> = match &route.name {
            Some(n) => n.as_str().into(),
            None => format!("{listener}#{index}").into(),
        };
        let cluster =
            |c: &str| clusters.get(c).cloned().ok_or_else(|| format!("route `{name}`: unknown cluster `{c}`"));
        let action = if let Some(f) = &route.forward {
            Action::Forward(cluster(&f.cluster)?)
        } else if let Some(split) = &route.split {
            let targets =
                split.iter().map(|w| Ok((cluster(&w.cluster)?, w.weight))).collect::<Result<Vec<_>, String>>()?;
            Action::Split(Split::new(targets))
        } else if let Some(r) = &route.redirect {
            Action::Redirect(RedirectPlan {
                scheme: r.scheme.clone(),
                host: r.host.clone(),
                path: r.path.clone(),
                status: StatusCode::from_u16(r.status).map_err(|_| format!("route `{name}`: bad status"))?,
            })
        } else if let Some(d) = &route.direct {
            let mut headers = HeaderMap::new();
            for (k, v) in &d.headers {
                let n =
                    HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("route `{name}`: bad header `{k}`"))?;
                let v = HeaderValue::from_str(v).map_err(|_| format!("route `{name}`: bad header value"))?;
                headers.insert(n, v);
            }
            Action::Direct(LocalResponse {
                status: StatusCode::from_u16(d.status).map_err(|_| format!("route `{name}`: bad status"))?,
                headers,
                body: Bytes::from(d.body.clone()),
                reason: None,
            })
        } else if let Some(s) = &route.static_files {
            Action::Static(StaticPlan {
                root: PathBuf::from(&s.root),
                index: s.index.clone(),
                expires: s.expires.map(|d| d.0),
            })
        } else if let Some(e) = &route.echo {
            Action::Echo(EchoPlan { name: e.name.clone() })
        } else if let Some(aggregate) = &route.aggregate {
            let plan = AggregatePlan::compile(aggregate).map_err(|e| format!("route `{name}`: {e}"))?;
            Action::Aggregate(Box::new(plan))
        } else if let Some(t) = &route.grpc_transcode {
            let plan = transcode.ok_or_else(|| format!("route `{name}`: grpc_transcode was not loaded"))?;
            Action::GrpcTranscode(Box::new(plan), cluster(&t.cluster)?)
        } else if route.forward_proxy.is_some() {
            let plan = forward_proxy.ok_or_else(|| format!("route `{name}`: forward_proxy was not loaded"))?;
            Action::ForwardProxy(Box::new(plan))
        } else {
            return Err(format!("route `{name}` has no action"));
        };
        let rewrite = route.rewrite.as_ref().map(PathRewrite::compile).transpose()?;
        let retries = match &route.retries {
            Some(r) => RetryPolicy {
                attempts: r.attempts.max(1),
                on_status: r.on_status.iter().filter_map(|s| StatusCode::from_u16(*s).ok()).collect(),
            },
            None => RetryPolicy { attempts: 2, on_status: Vec::new() },
        };
        let exchange_timeout = route.exchange_timeout.map(|d| Some(d.0).filter(|d| !d.is_zero()));
        Ok(RoutePlan {
            name,
            action,
            rewrite,
            filters,
            consumer_filters,
            timeout: route.timeout.map(|d| d.0),
            exchange_timeout,
            retries,
        })
    }
}

/// What a route does with a request.
#[derive(Debug)]
pub enum Action {
    /// Forward to a cluster.
    Forward(Upstream),
    /// Forward to a cluster chosen by weight.
    Split(Split),
    /// Answer with a redirect.
    Redirect(RedirectPlan),
    /// Answer with a fixed response.
    Direct(LocalResponse),
    /// Serve files.
    Static(StaticPlan),
    /// Describe the request back (demo upstream).
    Echo(EchoPlan),
    /// Call several clusters and merge their answers.
    Aggregate(Box<AggregatePlan>),
    /// Answer JSON requests by calling a gRPC service (requests it passes through go to the
    /// cluster as forwarded ones do).
    GrpcTranscode(Box<TranscodePlan>, Upstream),
    /// Send requests to the origins they name, open CONNECT tunnels (forward proxy).
    ForwardProxy(Box<crate::actions::forward_proxy::ForwardPlan>),
}

/// A cluster and how connections to its endpoints are made.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Endpoints, balancer and health.
    pub state: Arc<ClusterState>,
    /// Plain or TLS, HTTP/1.1 or HTTP/2.
    pub connector: Arc<Connector>,
}

/// Weighted choice among clusters.
#[derive(Debug)]
pub struct Split {
    targets: Vec<(Upstream, u32)>,
    total: u32,
}

impl Split {
    fn new(targets: Vec<(Upstream, u32)>) -> Split {
        let total = targets.iter().map(|(_, w)| *w).sum();
        Split { targets, total }
    }

    /// Picks a cluster in proportion to the weights.
    pub fn pick(&self) -> &Upstream {
        let mut n = fastrand::u32(0..self.total.max(1));
        for (cluster, weight) in &self.targets {
            if n < *weight {
                return cluster;
            }
            n -= weight;
        }
        &self.targets[0].0
    }
}

/// A compiled redirect.
#[derive(Debug)]
pub struct RedirectPlan {
    /// New scheme.
    pub scheme: Option<String>,
    /// New host.
    pub host: Option<String>,
    /// New path.
    pub path: Option<String>,
    /// Status.
    pub status: StatusCode,
}

/// A compiled static-files action.
#[derive(Debug)]
pub struct StaticPlan {
    /// Root directory.
    pub root: PathBuf,
    /// Index file for directories.
    pub index: String,
    /// Cache lifetime.
    pub expires: Option<Duration>,
}

/// A compiled echo action.
#[derive(Debug)]
pub struct EchoPlan {
    /// Name shown in the answer.
    pub name: String,
}

/// When to try again on another endpoint.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub attempts: u32,
    /// Upstream statuses that are retried for idempotent, bodyless requests.
    pub on_status: Vec<StatusCode>,
}
