//! Ordered `allow`/`deny` rules over named ACLs (Squid `http_access`): first match wins, and
//! what no rule matches is denied.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use strait_http::PluginError;

use super::acl::{builtin, Acl, AclSpec, Facts, Verdict};

/// A rule as configured: `allow` or `deny`, and the ACLs that must all match (`!` negates one;
/// no ACL at all matches every request).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSpec {
    /// Let the request through.
    Allow(Vec<String>),
    /// Refuse it.
    Deny(Vec<String>),
}

/// The rules Squid's default configuration ends with, used when `rules` is empty.
pub(super) const DEFAULT_RULES: [(bool, &[&str]); 4] =
    [(false, &["!Safe_ports"]), (false, &["CONNECT", "!SSL_ports"]), (true, &["localhost"]), (false, &["all"])];

/// One ACL of a rule, maybe negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Term {
    /// Index in [`Rules::acls`].
    pub(super) acl: usize,
    /// Whether it is `!name`.
    pub(super) negated: bool,
}

/// A compiled rule.
#[derive(Debug)]
pub(super) struct Rule {
    /// Whether it allows.
    pub(super) allow: bool,
    /// Its ACLs, in order, all to match.
    pub(super) terms: Vec<Term>,
    /// `rules[2]: deny blocked_sites`, for pages, logs and warnings.
    pub(super) text: String,
    /// Whether one of its ACLs is a `port` ACL: only such an `allow` lets a CONNECT through to
    /// a port outside `SSL_ports`.
    pub(super) names_port: bool,
}

/// The compiled ACLs and rules of one filter.
#[derive(Debug)]
pub(super) struct Rules {
    /// Every ACL, built-in ones included.
    pub(super) acls: Vec<Acl>,
    /// Their names, in the order of [`Rules::acls`].
    pub(super) names: Vec<String>,
    /// The rules, in order.
    pub(super) rules: Vec<Rule>,
    /// Index of the `SSL_ports` ACL.
    ssl_ports: usize,
    /// Whether the rules are the defaults (`rules` was empty).
    pub(super) defaults: bool,
}

/// What the rules decided for a request.
#[derive(Debug)]
pub(super) enum Decision<'a> {
    /// Let it through.
    Allow,
    /// Refused by this rule. `connect_port` as for [`Decision::NoMatch`].
    Deny { rule: &'a Rule, connect_port: Option<&'a Rule> },
    /// No rule matched. `connect_port` is the allow rule that matched a CONNECT to a port
    /// outside `SSL_ports` without naming a port, if one did.
    NoMatch { connect_port: Option<&'a Rule> },
    /// This rule needs an authenticated user to decide, and there is none.
    NeedsUser(&'a Rule),
}

impl Rules {
    /// Reads the ACLs and the rules; errors name the field (`acls.blocked.dstdomain[1]`,
    /// `rules[3].deny[0]`).
    pub(super) fn compile(acls: &BTreeMap<String, AclSpec>, rules: &[RuleSpec]) -> Result<Rules, PluginError> {
        let mut names = vec!["all".to_owned()];
        let mut compiled = vec![Acl::All];
        let mut index: HashMap<String, usize> = HashMap::from([("all".to_owned(), 0)]);
        for (name, acl) in builtin() {
            index.insert(name.to_owned(), compiled.len());
            names.push(name.to_owned());
            compiled.push(acl);
        }
        for (name, spec) in acls {
            let field = format!("acls.{name}");
            if name == "all" {
                return Err(PluginError::at(field, "`all` is built in (it matches every request)"));
            }
            if name.is_empty() || name.starts_with('!') || name.contains(char::is_whitespace) {
                return Err(PluginError::at(field, "an ACL name is a word that does not start with `!`"));
            }
            let acl = Acl::compile(spec)
                .map_err(|error| PluginError::at(format!("{field}.{}", error.path), error.message))?;
            if name == "SSL_ports" && !acl.is_port() {
                return Err(PluginError::at(
                    field,
                    "`SSL_ports` must be a `port` ACL (CONNECT is let through to its ports)",
                ));
            }
            match index.get(name) {
                Some(&built_in) => compiled[built_in] = acl,
                None => {
                    index.insert(name.clone(), compiled.len());
                    names.push(name.clone());
                    compiled.push(acl);
                }
            }
        }
        let defaults = rules.is_empty();
        let specs: Vec<(bool, Vec<String>)> = if defaults {
            DEFAULT_RULES
                .iter()
                .map(|(allow, terms)| (*allow, terms.iter().map(|t| (*t).to_owned()).collect()))
                .collect()
        } else {
            rules
                .iter()
                .map(|rule| match rule {
                    RuleSpec::Allow(terms) => (true, terms.clone()),
                    RuleSpec::Deny(terms) => (false, terms.clone()),
                })
                .collect()
        };
        let mut compiled_rules = Vec::with_capacity(specs.len());
        for (position, (allow, written)) in specs.iter().enumerate() {
            let action = if *allow { "allow" } else { "deny" };
            let mut terms = Vec::with_capacity(written.len());
            for (i, term) in written.iter().enumerate() {
                let (negated, name) = match term.strip_prefix('!') {
                    Some(name) => (true, name.trim_start()),
                    None => (false, term.as_str()),
                };
                let Some(&acl) = index.get(name) else {
                    let message = format!("unknown ACL `{name}`; ACLs: {}", names.join(", "));
                    return Err(PluginError::at(format!("rules[{position}].{action}[{i}]"), message));
                };
                terms.push(Term { acl, negated });
            }
            let names_port = terms.iter().any(|term| compiled[term.acl].is_port());
            let mut text = format!("{}rules[{position}]: {action}", if defaults { "default " } else { "" });
            for term in written {
                text.push(' ');
                text.push_str(term);
            }
            compiled_rules.push(Rule { allow: *allow, terms, text, names_port });
        }
        let ssl_ports = index["SSL_ports"];
        Ok(Rules { acls: compiled, names, rules: compiled_rules, ssl_ports, defaults })
    }

    /// The first rule that matches decides; an `allow` that matches a CONNECT to a port
    /// outside `SSL_ports` decides only if it names a port ACL (others are passed over).
    pub(super) fn decide(&self, facts: &Facts<'_>) -> Decision<'_> {
        let unsafe_connect =
            *facts.method == http::Method::CONNECT && self.acls[self.ssl_ports].check(facts) != Verdict::Yes;
        let mut connect_port = None;
        for rule in &self.rules {
            match self.matches(rule, facts) {
                Verdict::No => continue,
                Verdict::NeedsUser => return Decision::NeedsUser(rule),
                Verdict::Yes if !rule.allow => return Decision::Deny { rule, connect_port },
                Verdict::Yes if unsafe_connect && !rule.names_port => {
                    connect_port.get_or_insert(rule);
                }
                Verdict::Yes => return Decision::Allow,
            }
        }
        Decision::NoMatch { connect_port }
    }

    /// Whether every ACL of `rule` matches, left to right (the first that does not ends it; one
    /// that needs a user when there is none stops there).
    fn matches(&self, rule: &Rule, facts: &Facts<'_>) -> Verdict {
        for term in &rule.terms {
            match (self.acls[term.acl].check(facts), term.negated) {
                (Verdict::NeedsUser, _) => return Verdict::NeedsUser,
                (Verdict::Yes, true) | (Verdict::No, false) => return Verdict::No,
                (Verdict::Yes, false) | (Verdict::No, true) => {}
            }
        }
        Verdict::Yes
    }
}
