//! Connection limits: in all (HAProxy `maxconn`) and per client address (nginx `limit_conn`).

use crate::support;

use std::time::Duration;

use support::{Proxy, RawConn};

fn proxy(limits: &str) -> Proxy {
    Proxy::start(&format!(
        "workers: 1\nserver:\n  limits: {{ {limits} }}\nlisteners:\n  - name: web\n    bind: 127.0.0.1:0\n    routes:\n      - direct: {{ body: ok }}\n"
    ))
}

/// A connection that has been served one request (so it is counted and open).
fn served(addr: std::net::SocketAddr) -> RawConn {
    let mut conn = RawConn::connect(addr);
    conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response().expect("served").status, 200);
    conn
}

#[test]
fn connections_over_the_per_address_limit_are_closed_and_room_frees_up() {
    let proxy = proxy("max_connections_per_ip: 2");
    let addr = proxy.addr("web");
    let first = served(addr);
    let _second = served(addr);
    let mut third = RawConn::connect(addr);
    assert!(third.closes_within(Duration::from_secs(5)), "a third connection from 127.0.0.1 is refused");
    drop(first);
    support::wait_until("room for another connection", || {
        let mut conn = RawConn::connect(addr);
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        conn.read_response().is_some_and(|r| r.status == 200)
    });
}

#[test]
fn connections_over_the_global_limit_are_closed() {
    let proxy = proxy("max_connections: 1");
    let addr = proxy.addr("web");
    let _only = served(addr);
    let mut second = RawConn::connect(addr);
    assert!(second.closes_within(Duration::from_secs(5)));
}
