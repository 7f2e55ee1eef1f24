//! The basic path end to end: route, forward to a real backend, answer.

use crate::support;

use support::{get, Backend, Proxy};

#[test]
fn forwards_to_backend_and_answers_no_route() {
    let backend = Backend::named("b1");
    let proxy = Proxy::start(&format!(
        r#"
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: {{ path: {{ prefix: /api }} }}
        forward: {{ cluster: app }}
clusters:
  - name: app
    endpoints: [{{ address: "{}" }}]
"#,
        backend.addr
    ));
    let ok = get(proxy.addr("web"), "/api/x?y=1");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "b1");
    assert_eq!(backend.requests()[0].uri, "/api/x?y=1");
    let missing = get(proxy.addr("web"), "/other");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-strait-reason"), Some("no_route"));
}
