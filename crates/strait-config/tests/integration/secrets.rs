//! Secret references: `{vault://env/NAME}` and `{vault://file/PATH}` values resolve, and no
//! error message shows a secret.

use strait_config::{load_file, load_str_with_env};

fn env(name: &str) -> Option<String> {
    match name {
        "PARTNER_KEY" => Some("k-0123456789".into()),
        "WORKERS" => Some("hunter2".into()),
        _ => None,
    }
}

const CONSUMER: &str = "consumers:\n  - username: partner\n    credentials:\n      key_auth:\n        - key: \"{vault://env/partner-key}\"\n";

#[test]
fn an_env_vault_reference_becomes_the_variables_value() {
    let config = load_str_with_env(CONSUMER, "secrets.yaml", &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.consumers[0].credentials.key_auth[0].key, "k-0123456789");
}

#[test]
fn an_unset_variable_is_an_error_at_the_reference() {
    let errors = load_str_with_env(CONSUMER, "secrets.yaml", &|_| None).unwrap_err().to_string();
    assert!(
        errors.contains("secrets.yaml:5:16: consumers[0].credentials.key_auth[0].key:")
            && errors.contains("`PARTNER_KEY` is not set"),
        "{errors}"
    );
}

#[test]
fn error_messages_never_show_a_secret() {
    // A secret where a number belongs: serde's message would quote it.
    let text = "workers: \"{vault://env/workers}\"\n";
    let errors = load_str_with_env(text, "secrets.yaml", &env).unwrap_err().to_string();
    assert!(errors.contains("secrets.yaml:1:10: workers:"), "{errors}");
    assert!(!errors.contains("hunter2") && errors.contains("<secret>"), "{errors}");
    // Two consumers with one key: the duplicate is reported without the key.
    let twice = format!("{CONSUMER}  - username: other\n    credentials:\n      key_auth:\n        - key: \"{{vault://env/partner-key}}\"\n");
    let errors = load_str_with_env(&twice, "secrets.yaml", &env).unwrap_err().to_string();
    assert!(errors.contains("API key is already used by consumers[0]"), "{errors}");
    assert!(!errors.contains("k-0123456789"), "{errors}");
}

#[test]
fn a_file_reference_is_read_beside_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("partner.key"), "from-a-file\n").unwrap();
    let yaml = CONSUMER.replace("{vault://env/partner-key}", "{vault://file/partner.key}");
    std::fs::write(dir.path().join("strait.yaml"), yaml).unwrap();
    let config = load_file(&dir.path().join("strait.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.consumers[0].credentials.key_auth[0].key, "from-a-file");
    std::fs::remove_file(dir.path().join("partner.key")).unwrap();
    let errors = load_file(&dir.path().join("strait.yaml")).unwrap_err().to_string();
    assert!(errors.contains("consumers[0].credentials.key_auth[0].key:") && errors.contains("cannot read"), "{errors}");
}
