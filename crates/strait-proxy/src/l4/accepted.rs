//! A connection just accepted on a TCP listener: the PROXY header read when the listener
//! accepts one, then the session served as plain TCP (`tcp`) or passthrough (`passthrough`).

use std::sync::Arc;

use tokio::net::TcpStream;

use super::drain::ListenerDrain;
use super::log::Session;
use super::TcpPlan;

/// Serves a connection just accepted on a TCP listener, with the snapshot's access log; with
/// `accept` (the listener's `proxy_protocol`), the PROXY header is read first. Passthrough
/// listeners (with `tcp.sni` routes) go on in `passthrough`, others here.
pub(crate) async fn serve_accepted(
    mut client: TcpStream,
    peer: std::net::SocketAddr,
    listener: Arc<str>,
    shared: &Arc<crate::shared::Shared>,
    plan: Arc<TcpPlan>,
    accept: Option<&crate::proxy_protocol::AcceptPlan>,
) {
    // No TCP_NODELAY call (accepted sockets inherit it from the listening socket), and no
    // local address read unless a PROXY header is sent: each is a system call per session.
    let access_log = shared.snapshot.load().access_log.clone();
    // Taken before the first wait, so a removal while the PROXY header or the ClientHello is
    // read still reaches this session.
    let drain = ListenerDrain::of(&listener);
    let mut session = Session::start(peer, listener);
    if let Some(accept) = accept {
        match crate::proxy_protocol::accept(&mut client, peer, accept).await {
            // The header names the client and the address it connected to, for the log and
            // for a header sent on upstream.
            Ok(Some(endpoints)) => (session.client, session.local) = (endpoints.source, Some(endpoints.destination)),
            Ok(None) => {}
            Err(refused) => {
                tracing::debug!(%peer, reason = refused.reason.code(), detail = refused.detail, "TCP session refused");
                return session.refused(&access_log, refused.reason);
            }
        }
    }
    if plan.sni.is_empty() {
        super::tcp::serve(client, session, plan, access_log, &drain).await;
    } else {
        super::passthrough::serve(client, session, plan, access_log, shared, &drain).await;
    }
}
