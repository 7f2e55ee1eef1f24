//! Semantic checks of a deserialized configuration, reporting every problem found.

mod clusters;
mod consumers;
mod l4;
mod listeners;
mod routes;
pub use routes::{aggregate_placeholders, header_edit_problems};
mod syntax;
mod tls;
mod transcode;

use std::collections::HashSet;
use std::time::Duration;

use regex::Regex;

use crate::model::{Config, MinRate};
use crate::path_index::{item_path, PathIndex};
use crate::report::Reporter;
use crate::units::Dur;

/// Most worker threads a configuration may ask for.
pub const MAX_WORKERS: usize = 1024;

/// Checks everything serde cannot: references, uniqueness, value syntax and ranges.
pub fn validate(config: &Config, index: &PathIndex, reporter: &mut Reporter) {
    let mut checker = Checker { index, reporter };
    checker.top_level(config);
    let cluster_names: HashSet<&str> = config.clusters.iter().map(|cluster| cluster.name.as_str()).collect();
    checker.listeners(&config.listeners, &cluster_names);
    checker.l4_clusters(config);
    checker.proxy_protocol_clusters(config);
    checker.clusters(&config.clusters);
    checker.consumers(&config.consumers);
    checker.filter_consumers(config);
}

/// Reports problems at the positions of the fields they concern.
struct Checker<'a> {
    index: &'a PathIndex,
    reporter: &'a mut Reporter,
}

impl Checker<'_> {
    /// Reports a problem with the value at `path`.
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let position = self.index.value_position(path);
        self.reporter.error(position, path, message);
    }

    /// Reports a problem with the key of the entry at `path` (for map keys such as header names).
    fn key_error(&mut self, path: &str, message: impl Into<String>) {
        let position = self.index.key_position(path);
        self.reporter.error(position, path, message);
    }

    /// Reports `problem`, if there is one, at `path`.
    fn check(&mut self, path: &str, problem: Option<String>) {
        if let Some(message) = problem {
            self.error(path, message);
        }
    }

    /// Reports a regular expression that does not compile.
    fn check_regex(&mut self, path: &str, pattern: &str) {
        if let Err(error) = Regex::new(pattern) {
            // Syntax errors span several lines (pattern, caret, reason); keep the reason.
            let text = error.to_string();
            let reason = text.lines().find_map(|line| line.strip_prefix("error: ")).unwrap_or(&text);
            self.error(path, format!("invalid regular expression `{pattern}`: {reason}"));
        }
    }

    /// Reports a zero duration where time must pass.
    fn check_positive(&mut self, path: &str, duration: Dur) {
        if duration.0 == Duration::ZERO {
            self.error(path, "must be greater than zero");
        }
    }

    /// Reports a minimum data rate that would refuse every transfer: no rate, or no grace (the
    /// first wait for the client would already be below any rate).
    fn min_rate(&mut self, path: &str, rate: &MinRate) {
        if rate.bytes_per_second.0 == 0 {
            self.error(
                &format!("{path}.bytes_per_second"),
                "must be at least 1 (remove the whole entry to turn the check off)",
            );
        }
        self.check_positive(&format!("{path}.grace"), rate.grace);
    }

    /// Reports a status code outside 100..=599.
    fn check_status(&mut self, path: &str, status: u16) {
        if !(100..=599).contains(&status) {
            self.error(path, format!("{status} is not an HTTP status code (100 to 599)"));
        }
    }

    fn top_level(&mut self, config: &Config) {
        if config.workers > MAX_WORKERS {
            self.error("workers", format!("{} workers is more than the maximum of {MAX_WORKERS}", config.workers));
        }
        let server = &config.server;
        for (position, entry) in server.trusted_proxies.iter().enumerate() {
            let path = item_path("server.trusted_proxies", position);
            self.check(&path, syntax::ip_or_cidr_problem(entry));
        }
        for (position, name) in server.request_trailers.iter().enumerate() {
            let path = item_path("server.request_trailers", position);
            self.check(&path, syntax::header_name_problem(name));
        }
        let h2 = &server.http2;
        if h2.max_concurrent_streams == 0 {
            self.error("server.http2.max_concurrent_streams", "must be at least 1");
        }
        if !(65_535..=(1u64 << 31) - 1).contains(&h2.initial_stream_window.0) {
            self.error("server.http2.initial_stream_window", "must be between 65535 bytes and 2 GiB - 1");
        }
        if !(65_535..=(1u64 << 31) - 1).contains(&h2.initial_connection_window.0) {
            self.error("server.http2.initial_connection_window", "must be between 65535 bytes and 2 GiB - 1");
        }
        if !(16_384..=16_777_215).contains(&h2.max_frame_size.0) {
            self.error("server.http2.max_frame_size", "must be between 16 KiB and 16 MiB - 1");
        }
        if h2.max_header_list_size.0 < 1024 || h2.max_header_list_size.0 > u64::from(u32::MAX) {
            self.error("server.http2.max_header_list_size", "must be between 1 KiB and 4 GiB - 1");
        }
        // A zero client timeout would end every connection before its first request;
        // `drain_timeout: 0` is allowed (stop at once), and so is `exchange: 0` (no limit).
        let timeouts = &server.timeouts;
        for (name, duration) in
            [("client_header", timeouts.client_header), ("client_body", timeouts.client_body), ("idle", timeouts.idle)]
        {
            self.check_positive(&format!("server.timeouts.{name}"), duration);
        }
        let limits = &server.limits;
        if limits.max_header_bytes.0 == 0 {
            self.error("server.limits.max_header_bytes", "must be greater than zero");
        }
        if limits.max_uri_bytes.0 == 0 {
            self.error("server.limits.max_uri_bytes", "must be greater than zero");
        }
        if limits.max_headers == 0 {
            self.error("server.limits.max_headers", "must be at least 1");
        }
        for (name, rate) in [
            ("min_request_body_rate", &limits.min_request_body_rate),
            ("min_response_body_rate", &limits.min_response_body_rate),
        ] {
            if let Some(rate) = rate {
                self.min_rate(&format!("server.limits.{name}"), rate);
            }
        }
        if config.access_log.path.is_empty() {
            self.error("access_log.path", "is empty: use `stdout`, `stderr`, `off` or a file path");
        }
    }
}
