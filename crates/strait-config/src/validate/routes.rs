//! Checks of routes: one action, valid conditions, known clusters, valid header edits.

use std::collections::{BTreeMap, HashSet};

use super::{syntax, Checker};
use crate::model::{
    Aggregate, AggregateMode, HeaderEdits, PathMatch, Redirect, Rewrite, Route, RouteMatch, ValueMatch,
};
use crate::path_index::{child_path, item_path};

/// Statuses a redirect may use.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Most cluster names listed in an "unknown cluster" message.
const LISTED_CLUSTERS: usize = 10;

impl Checker<'_> {
    /// Checks one route at `path`.
    pub(super) fn route(&mut self, path: &str, route: &Route, cluster_names: &HashSet<&str>) {
        self.route_action_count(path, route);
        self.route_match(&child_path(path, "match"), &route.matches);
        if let Some(forward) = &route.forward {
            self.cluster_reference(&child_path(path, "forward.cluster"), &forward.cluster, cluster_names);
        }
        if let Some(split) = &route.split {
            let split_path = child_path(path, "split");
            if split.is_empty() {
                self.error(&split_path, "split lists no clusters");
            }
            for (position, share) in split.iter().enumerate() {
                let share_path = item_path(&split_path, position);
                self.cluster_reference(&child_path(&share_path, "cluster"), &share.cluster, cluster_names);
                if share.weight == 0 {
                    self.error(&child_path(&share_path, "weight"), "weight must be at least 1");
                }
            }
        }
        if let Some(redirect) = &route.redirect {
            self.redirect(&child_path(path, "redirect"), redirect);
        }
        if let Some(aggregate) = &route.aggregate {
            self.aggregate(&child_path(path, "aggregate"), aggregate, cluster_names);
        }
        if let Some(transcode) = &route.grpc_transcode {
            self.grpc_transcode(&child_path(path, "grpc_transcode"), transcode, cluster_names);
        }
        if let Some(direct) = &route.direct {
            let direct_path = child_path(path, "direct");
            let status_path = child_path(&direct_path, "status");
            if (100..=199).contains(&direct.status) {
                // An interim (1xx) status is not an answer: the client would wait for another.
                self.error(
                    &status_path,
                    format!("{} is an interim status; a direct answer needs 200 to 599", direct.status),
                );
            } else {
                self.check_status(&status_path, direct.status);
            }
            self.header_map(&child_path(&direct_path, "headers"), &direct.headers);
        }
        if let Some(static_files) = &route.static_files {
            if static_files.root.is_empty() {
                self.error(&child_path(path, "static.root"), "root directory is empty");
            }
        }
        if let Some(rewrite) = &route.rewrite {
            self.rewrite(&child_path(path, "rewrite"), rewrite, &route.matches);
        }
        self.header_edits(&child_path(path, "request_headers"), &route.request_headers);
        self.header_edits(&child_path(path, "response_headers"), &route.response_headers);
        if let Some(timeout) = route.timeout {
            self.check_positive(&child_path(path, "timeout"), timeout);
        }
        if let Some(retries) = &route.retries {
            let retries_path = child_path(path, "retries");
            if retries.attempts == 0 {
                self.error(&child_path(&retries_path, "attempts"), "attempts must be at least 1 (the first try)");
            }
            for (position, status) in retries.on_status.iter().enumerate() {
                self.check_status(&item_path(&child_path(&retries_path, "on_status"), position), *status);
            }
        }
    }

    fn route_action_count(&mut self, path: &str, route: &Route) {
        let actions = [
            ("forward", route.forward.is_some(), "forward: { cluster: NAME }"),
            ("split", route.split.is_some(), "split: [{ cluster: NAME, weight: 1 }]"),
            ("redirect", route.redirect.is_some(), "redirect: { scheme: https }"),
            ("direct", route.direct.is_some(), "direct: {}"),
            ("static", route.static_files.is_some(), "static: { root: DIR }"),
            ("echo", route.echo.is_some(), "echo: {}"),
            ("aggregate", route.aggregate.is_some(), "aggregate: { calls: [{ key: K, cluster: NAME, path: / }] }"),
            (
                "grpc_transcode",
                route.grpc_transcode.is_some(),
                "grpc_transcode: { cluster: NAME, descriptor_set: FILE, services: [pkg.Service] }",
            ),
            ("forward_proxy", route.forward_proxy.is_some(), "forward_proxy: {}"),
        ];
        let mut given = Vec::new();
        let mut empty = 0;
        for (name, present, example) in actions {
            let action_path = child_path(path, name);
            if present {
                given.push(name);
            } else if self.index.has_key(&action_path) {
                self.error(&action_path, format!("`{name}` has no value; write for example `{example}`"));
                empty += 1;
            }
        }
        match given.len() {
            1 => {}
            0 if empty > 0 => {}
            0 => self.error(
                path,
                "route has no action: give exactly one of `forward`, `split`, `redirect`, `direct`, `static`, `echo`, `aggregate`, `grpc_transcode`, `forward_proxy`",
            ),
            count => {
                self.error(path, format!("route has {count} actions (`{}`): keep exactly one", given.join("`, `")))
            }
        }
    }

    pub(super) fn cluster_reference(&mut self, path: &str, name: &str, cluster_names: &HashSet<&str>) {
        if cluster_names.contains(name) {
            return;
        }
        let mut known: Vec<&str> = cluster_names.iter().copied().collect();
        known.sort_unstable();
        let hint = match known.len() {
            0 => "no clusters are defined".to_owned(),
            count if count <= LISTED_CLUSTERS => format!("defined clusters: `{}`", known.join("`, `")),
            count => format!("{count} clusters are defined"),
        };
        self.error(path, format!("unknown cluster `{name}` ({hint})"));
    }

    fn route_match(&mut self, path: &str, matches: &RouteMatch) {
        for (position, host) in matches.hosts.iter().enumerate() {
            self.check(&item_path(&child_path(path, "hosts"), position), syntax::host_pattern_problem(host));
        }
        if let Some(path_match) = &matches.path {
            self.path_match(&child_path(path, "path"), path_match);
        }
        for (position, method) in matches.methods.iter().enumerate() {
            self.check(&item_path(&child_path(path, "methods"), position), syntax::method_problem(method));
        }
        for (position, header) in matches.headers.iter().enumerate() {
            let header_path = item_path(&child_path(path, "headers"), position);
            if !header.name.is_empty() {
                self.check(&child_path(&header_path, "name"), syntax::header_name_problem(&header.name));
            }
            self.value_match(&header_path, header);
        }
        for (position, parameter) in matches.query.iter().enumerate() {
            self.value_match(&item_path(&child_path(path, "query"), position), parameter);
        }
    }

    fn path_match(&mut self, path: &str, path_match: &PathMatch) {
        let given: Vec<(&str, &str)> = [
            ("exact", path_match.exact.as_deref()),
            ("prefix", path_match.prefix.as_deref()),
            ("regex", path_match.regex.as_deref()),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.map(|value| (field, value)))
        .collect();
        if given.len() != 1 {
            self.error(path, "give exactly one of `exact`, `prefix` or `regex`");
        }
        for (field, value) in given {
            let field_path = child_path(path, field);
            if field == "regex" {
                self.check_regex(&field_path, value);
            } else if !value.starts_with('/') {
                self.error(&field_path, format!("path `{value}` must start with `/`"));
            }
        }
    }

    fn value_match(&mut self, path: &str, condition: &ValueMatch) {
        if condition.name.is_empty() {
            self.error(&child_path(path, "name"), "name is empty");
        }
        let operators = [condition.exact.is_some(), condition.regex.is_some(), condition.present.is_some()];
        if operators.into_iter().filter(|&given| given).count() > 1 {
            self.error(path, "give at most one of `exact`, `regex` or `present`");
        }
        if let Some(pattern) = &condition.regex {
            self.check_regex(&child_path(path, "regex"), pattern);
        }
    }

    fn redirect(&mut self, path: &str, redirect: &Redirect) {
        if !REDIRECT_STATUSES.contains(&redirect.status) {
            self.error(
                &child_path(path, "status"),
                format!("redirect status {} is not one of 301, 302, 303, 307, 308", redirect.status),
            );
        }
        if redirect.scheme.is_none() && redirect.host.is_none() && redirect.path.is_none() {
            self.error(path, "redirect changes nothing: give at least one of `scheme`, `host` or `path`");
        }
        if let Some(scheme) = &redirect.scheme {
            let mut chars = scheme.chars();
            let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if !valid {
                self.error(&child_path(path, "scheme"), format!("`{scheme}` is not a URL scheme such as `https`"));
            }
        }
        if let Some(host) = &redirect.host {
            if host.is_empty() || host.contains(['/', ' ', '?', '#']) {
                self.error(&child_path(path, "host"), format!("`{host}` is not a host name (with optional port)"));
            }
        }
        if let Some(target) = &redirect.path {
            if !target.starts_with('/') {
                self.error(&child_path(path, "path"), format!("path `{target}` must start with `/`"));
            }
        }
    }

    fn rewrite(&mut self, path: &str, rewrite: &Rewrite, matches: &RouteMatch) {
        let given = [rewrite.strip_prefix.is_some(), rewrite.replace_prefix.is_some(), rewrite.regex.is_some()];
        if given.into_iter().filter(|&given| given).count() != 1 {
            self.error(path, "give exactly one of `strip_prefix`, `replace_prefix` or `regex`");
        }
        if let Some(prefix) = &rewrite.strip_prefix {
            if !prefix.starts_with('/') {
                self.error(&child_path(path, "strip_prefix"), format!("prefix `{prefix}` must start with `/`"));
            }
        }
        if rewrite.replace_prefix.is_some() && matches.path.as_ref().and_then(|p| p.prefix.as_ref()).is_none() {
            self.error(&child_path(path, "replace_prefix"), "`replace_prefix` needs a `match.path.prefix` to replace");
        }
        if let Some(regex) = &rewrite.regex {
            self.check_regex(&child_path(path, "regex.pattern"), &regex.pattern);
        }
    }

    fn header_edits(&mut self, path: &str, edits: &HeaderEdits) {
        self.header_map(&child_path(path, "set"), &edits.set);
        self.header_map(&child_path(path, "add"), &edits.add);
        for name in edits.set.keys().chain(edits.add.keys()) {
            let problem = managed_header_problem(name);
            if let Some(problem) = problem {
                let section = if edits.set.contains_key(name) { "set" } else { "add" };
                self.key_error(&child_path(&child_path(path, section), name), problem);
            }
        }
        for (position, name) in edits.remove.iter().enumerate() {
            let item = item_path(&child_path(path, "remove"), position);
            self.check(&item, syntax::header_name_problem(name).or_else(|| managed_header_problem(name)));
        }
    }

    /// Checks a `name: value` map of headers.
    fn header_map(&mut self, path: &str, headers: &BTreeMap<String, String>) {
        for (name, value) in headers {
            let header_path = child_path(path, name);
            if let Some(problem) = syntax::header_name_problem(name) {
                self.key_error(&header_path, problem);
            }
            self.check(&header_path, syntax::header_value_problem(value));
        }
    }
}

/// Headers Strait writes itself (framing, connection management, Host): route edits of them
/// would desynchronize the connection or silently lose, so they are refused.
fn managed_header_problem(name: &str) -> Option<String> {
    const MANAGED: [&str; 9] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "host",
        "expect",
    ];
    let lower = name.to_ascii_lowercase();
    if MANAGED.contains(&lower.as_str()) || lower.starts_with("proxy-") {
        let hint = if lower == "host" { "; set the upstream Host with the cluster's `host_header`" } else { "" };
        return Some(format!("`{name}` is managed by Strait and cannot be edited{hint}"));
    }
    None
}

/// Every problem of a set of header edits, as (path inside the edits, message): for plugins
/// that take [`HeaderEdits`] in their own `config:` block.
pub fn header_edit_problems(edits: &HeaderEdits) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (section, map) in [("set", &edits.set), ("add", &edits.add)] {
        for (name, value) in map {
            let path = child_path(section, name);
            let problem = syntax::header_name_problem(name)
                .or_else(|| managed_header_problem(name))
                .or_else(|| syntax::header_value_problem(value));
            problems.extend(problem.map(|p| (path, p)));
        }
    }
    for (position, name) in edits.remove.iter().enumerate() {
        let problem = syntax::header_name_problem(name).or_else(|| managed_header_problem(name));
        problems.extend(problem.map(|p| (item_path("remove", position), p)));
    }
    problems
}

impl Checker<'_> {
    /// Checks an `aggregate` action: keys, clusters, paths and their placeholders.
    fn aggregate(&mut self, path: &str, aggregate: &Aggregate, cluster_names: &HashSet<&str>) {
        let calls_path = child_path(path, "calls");
        if aggregate.calls.is_empty() {
            self.error(&calls_path, "an aggregation needs at least one call");
        }
        let mut keys: Vec<&str> = Vec::new();
        for (position, call) in aggregate.calls.iter().enumerate() {
            let call_path = item_path(&calls_path, position);
            let key_path = child_path(&call_path, "key");
            if call.key.is_empty()
                || call.key.contains(['.', '{', '}'])
                || call.key.starts_with('_')
                || call.key == "query"
            {
                self.error(
                    &key_path,
                    "a key is a non-empty name without `.`, `{`, `}`, not starting with `_`, and not `query`",
                );
            } else if keys.contains(&call.key.as_str()) {
                self.error(&key_path, format!("key `{}` is used by an earlier call", call.key));
            }
            self.cluster_reference(&child_path(&call_path, "cluster"), &call.cluster, cluster_names);
            let path_path = child_path(&call_path, "path");
            if !call.path.starts_with('/') {
                self.error(&path_path, "the path must start with `/`");
            }
            match aggregate_placeholders(&call.path) {
                Err(message) => self.error(&path_path, message),
                Ok(names) => {
                    for name in names {
                        let source = name.split('.').next().unwrap_or_default();
                        if source == "query" {
                            if name.split('.').count() != 2 || name.ends_with('.') {
                                self.error(
                                    &path_path,
                                    format!("`{{{name}}}`: write `{{query.NAME}}` for a query parameter"),
                                );
                            }
                            continue;
                        }
                        let earlier = aggregate.mode == AggregateMode::Sequence && keys.contains(&source);
                        if !earlier {
                            let why = if aggregate.mode == AggregateMode::Parallel {
                                "parallel calls cannot use each other's answers (use `mode: sequence`)"
                            } else {
                                "it names no earlier call"
                            };
                            self.error(
                                &path_path,
                                format!("`{{{name}}}`: {why}; `{{query.NAME}}` reads the client's query"),
                            );
                        }
                    }
                }
            }
            if call.method.is_empty() || !call.method.bytes().all(|b| b.is_ascii_uppercase()) {
                self.error(
                    &child_path(&call_path, "method"),
                    format!("`{}` is not a method (GET, POST...)", call.method),
                );
            }
            if call.timeout.0.is_zero() {
                self.error(&child_path(&call_path, "timeout"), "must be greater than zero");
            }
            for (i, name) in call.forward_headers.iter().enumerate() {
                self.check(
                    &item_path(&child_path(&call_path, "forward_headers"), i),
                    syntax::header_name_problem(name),
                );
            }
            keys.push(&call.key);
        }
    }
}

/// The placeholders (`{name}`) of an aggregation call's path, or why the path is malformed.
pub fn aggregate_placeholders(path: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("`}` without `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("`{` without `}`")?;
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return Err(format!("`{{{name}}}` is not a placeholder"));
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Ok(names)
}
