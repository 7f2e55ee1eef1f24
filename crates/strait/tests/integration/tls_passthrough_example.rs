//! `examples/tls-passthrough.yaml` validates without warnings, with its names routed as its
//! comments say.

use std::path::Path;

use crate::support::{run_to_end, Workdir};

#[test]
fn the_tls_passthrough_example_validates_without_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Validation reads the certificate the example terminates www.example.com with: a copy of
    // the example whose certificate directory is a temporary one, with a certificate made there.
    let example = std::fs::read_to_string(root.join("examples/tls-passthrough.yaml")).unwrap();
    let work = Workdir::new("");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=www.example.com", "-keyout"])
        .arg(work.path("www.example.com.key"))
        .arg("-out")
        .arg(work.path("www.example.com.pem"))
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "openssl req: {}", String::from_utf8_lossy(&made.stderr));
    assert!(example.contains("/etc/strait/tls/"), "the example's certificate directory");
    work.rewrite(&example.replace("/etc/strait/tls/", &format!("{}/", work.dir.path().display())));
    let (code, stdout, stderr) = run_to_end(work.dir.path(), &["validate", "-c", "strait.yaml"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "strait.yaml: ok (1 listeners, 1 routes, 4 clusters)\n");
    assert!(!stderr.contains("warning") && !stderr.contains("WARN"), "{stderr}");
    let config = strait_config::load_file(&root.join("examples/tls-passthrough.yaml")).unwrap();
    let edge = &config.listeners[0];
    let tcp = edge.tcp.as_ref().expect("a passthrough listener");
    let routed: Vec<(&str, &str)> = tcp
        .sni
        .iter()
        .flat_map(|route| route.server_names.iter().map(|name| (name.as_str(), route.cluster.as_str())))
        .collect();
    assert_eq!(
        routed,
        [
            ("pay.example.com", "payments"),
            ("checkout.example.com", "payments"),
            ("*.api.example.com", "api"),
            ("git.example.com", "git")
        ]
    );
    assert_eq!(tcp.cluster, None, "names the list does not take are terminated by the listener's tls");
    assert!(edge.tls.is_some());
    assert_eq!(tcp.missing_sni, strait_config::Fallback::Refuse);
}
