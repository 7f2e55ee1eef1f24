//! `examples/dns-udp.yaml` (DNS on UDP and TCP of one port to a resolver pool) validates
//! without warnings.

use std::path::Path;

use crate::support::run_to_end;

#[test]
fn the_dns_udp_example_validates_without_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (code, stdout, stderr) = run_to_end(&root, &["validate", "-c", "examples/dns-udp.yaml"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "examples/dns-udp.yaml: ok (2 listeners, 0 routes, 1 clusters)\n");
    assert!(!stderr.contains("warning") && !stderr.contains("WARN"), "{stderr}");
}
