//! The route table: routes grouped by host, indexed by path, and the lookup that walks them.

use std::cmp::Reverse;

use strait_config::RouteMatch;

use crate::conditions::Conditions;
use crate::host::{HostIndex, HostPattern};
use crate::path::{PathCondition, PathIndex};
use crate::{RequestView, RouteMatchResult};

/// Routes compiled for lookup by host, then path, then their other conditions.
#[derive(Debug)]
pub struct RouteTable<T> {
    routes: Vec<CompiledRoute<T>>,
    hosts: HostIndex<PathIndex>,
}

#[derive(Debug)]
struct CompiledRoute<T> {
    value: T,
    conditions: Conditions,
}

impl<T> RouteTable<T> {
    /// Compiles routes (config order matters for ties). Errors are strings naming the route
    /// index (e.g. invalid regex).
    pub fn build(routes: Vec<(RouteMatch, T)>) -> Result<RouteTable<T>, String> {
        let mut hosts: HostIndex<PathIndex> = HostIndex::default();
        let mut compiled = Vec::with_capacity(routes.len());
        for (index, (matches, value)) in routes.into_iter().enumerate() {
            let in_route = |e: String| format!("route {index}: {e}");
            let conditions = Conditions::compile(&matches).map_err(in_route)?;
            let path = PathCondition::compile(matches.path.as_ref()).map_err(in_route)?;
            if matches.hosts.is_empty() {
                hosts.group_mut(None).insert(&path, index);
            }
            let mut patterns = Vec::with_capacity(matches.hosts.len());
            for host in &matches.hosts {
                let pattern = HostPattern::parse(host).map_err(in_route)?;
                if !patterns.contains(&pattern) {
                    hosts.group_mut(Some(&pattern)).insert(&path, index);
                    patterns.push(pattern);
                }
            }
            compiled.push(CompiledRoute { value, conditions });
        }
        for group in hosts.groups_mut() {
            group.sort(|id| Reverse(compiled[id].conditions.count()));
        }
        Ok(RouteTable { routes: compiled, hosts })
    }

    /// The route for `req`, by the precedence described in the crate documentation.
    pub fn find(&self, req: &RequestView<'_>) -> Option<RouteMatchResult<'_, T>> {
        let (index, matched_prefix) = self
            .hosts
            .find_map(req.host, |group| group.find(req.path, |id| self.routes[id].conditions.hold_for(req)))?;
        Some(RouteMatchResult { route: &self.routes[index].value, index, matched_prefix })
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
