//! Rules that can never take effect, and ACLs no rule uses: warnings for `strait validate`.

use std::collections::BTreeSet;

use super::rules::{Rule, Rules, Term};

/// One warning: the field it is about (`rules[2]`, `acls.unused`) and what is wrong.
pub(super) type Warning = (String, String);

/// The `all` ACL's index.
const ALL: usize = 0;

/// The rules that can never take effect (each shadowed by an earlier one, or never matching)
/// and the ACLs defined but not used by any rule.
pub(super) fn warnings(rules: &Rules, defined: impl Iterator<Item = String>) -> Vec<Warning> {
    let mut found = Vec::new();
    // A rule's ACLs as a set, without `all` (which every request matches).
    let sets: Vec<BTreeSet<Term>> = rules
        .rules
        .iter()
        .map(|rule| rule.terms.iter().copied().filter(|term| *term != Term { acl: ALL, negated: false }).collect())
        .collect();
    for (j, rule) in rules.rules.iter().enumerate() {
        let field = format!("rules[{j}]");
        if rule.terms.contains(&Term { acl: ALL, negated: true }) {
            found.push((field, format!("`{}` never matches: `!all` matches no request", rule.text)));
            continue;
        }
        let later_port_allow = rules.rules[j + 1..].iter().any(|later| later.allow && later.names_port);
        let shadowing = (0..j).find(|&i| {
            let earlier = &rules.rules[i];
            let passes_over_connects = earlier.allow && !earlier.names_port;
            let connect_left = passes_over_connects && (rule.names_port || (!rule.allow && later_port_allow));
            sets[i].is_subset(&sets[j]) && !connect_left
        });
        if let Some(i) = shadowing {
            let earlier: &Rule = &rules.rules[i];
            let how =
                if sets[i].is_empty() { "decides every request" } else { "already decides every request it matches" };
            found.push((field, format!("`{}` never takes effect: `{}` {how}", rule.text, earlier.text)));
        }
    }
    let used: BTreeSet<usize> = rules.rules.iter().flat_map(|rule| rule.terms.iter().map(|term| term.acl)).collect();
    for name in defined {
        let index = rules.names.iter().position(|known| *known == name);
        if index.is_some_and(|index| !used.contains(&index)) {
            let why =
                if rules.defaults { "the default rules do not use it (`rules` is empty)" } else { "no rule uses it" };
            found.push((format!("acls.{name}"), format!("ACL `{name}` is never used: {why}")));
        }
    }
    found
}
