//! Every shipped example and benchmark configuration validates.

use std::path::Path;

#[test]
fn every_example_and_bench_config_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut checked = 0;
    for dir in ["examples", "bench"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                if let Err(errors) = strait_config::load_file(&path) {
                    panic!("{} does not validate:\n{errors}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "expected the example configs, found {checked}");
}
