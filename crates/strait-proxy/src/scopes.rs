//! Filter scopes: the filters configured globally, per cluster, per route, per listener and
//! per consumer, compiled into the chains requests run.
//!
//! A route's chain is its own filters, its cluster's (when it forwards to one cluster) and the
//! global ones, one filter per plugin name: the route's filter of a name replaces the
//! cluster's and the global one, the cluster's replaces the global one (Kong's precedence of
//! route over service over global). A consumer's filters replace the route chain's filters of
//! the same name, or join them, once an authentication filter has identified the consumer.
//! Every chain runs in priority order, higher first (each plugin's default, or the entry's
//! `priority:`), filters of equal priority in scope order (global, cluster, route) and then in
//! list order.

use std::collections::HashMap;
use std::sync::Arc;

use strait_config::{Config, FilterSpec};
use strait_http::registry::BuildEnv;
use strait_http::{FilterFactory, Registry};
use strait_plugins::headers::{HeaderEdits, HeaderEditsFactory};

use crate::chain::{ConsumerFilters, FilterList, Scoped};

/// Every chain of a configuration, built once per snapshot.
#[derive(Debug, Default)]
pub struct CompiledFilters {
    /// Per listener: its own chain, and the filters of each of its routes.
    pub listeners: Vec<(FilterList, Vec<RouteFilters>)>,
    /// Per consumer username: the filters its requests get once it is identified, on routes
    /// whose route and cluster lists have no filter for that consumer.
    pub consumers: ConsumerFilters,
}

/// The filters of one route.
#[derive(Debug, Default)]
pub struct RouteFilters {
    /// Its chain: route, cluster and global filters, one per plugin name.
    pub chain: FilterList,
    /// When the route or its cluster has filters for some consumers: those consumers' filters
    /// on this route (consumer and route over consumer and cluster over consumer alone), looked
    /// up before [`CompiledFilters::consumers`].
    pub consumers: Option<ConsumerFilters>,
}

/// Filters of one scope: those for every request, and those for one consumer's requests.
#[derive(Default)]
struct Split {
    every: Vec<Scoped>,
    by_consumer: HashMap<Arc<str>, Vec<Scoped>>,
}

/// Builds every configured filter; each error names the file, line and field.
pub fn compile_filters(config: &Config, registry: &Registry) -> Result<CompiledFilters, strait_config::ConfigErrors> {
    let env = BuildEnv { config };
    let errors = std::cell::RefCell::new(Vec::new());
    // Builds the filters of the list at `path` (`listeners[0].filters`), apart by consumer.
    let build = |specs: &[FilterSpec], path: &str| -> Split {
        let mut built = Split::default();
        for (index, spec) in specs.iter().enumerate() {
            match registry.build(spec, &format!("{path}[{index}]"), &env) {
                Ok(factory) => {
                    let scoped = Scoped::new(factory, registry.priority(spec));
                    match &spec.consumer {
                        Some(name) => built.by_consumer.entry(Arc::from(name.as_str())).or_default().push(scoped),
                        None => built.every.push(scoped),
                    }
                }
                Err(error) => errors.borrow_mut().push(error),
            }
        }
        built
    };
    let global = build(&config.filters, "filters");
    let clusters: HashMap<&str, Split> = config
        .clusters
        .iter()
        .enumerate()
        .map(|(c, cluster)| (cluster.name.as_str(), build(&cluster.filters, &format!("clusters[{c}].filters"))))
        .collect();
    // A consumer's own filters, then the top-level ones scoped to it.
    let mut consumer_only: HashMap<Arc<str>, Vec<Scoped>> = global.by_consumer.clone();
    for (u, consumer) in config.consumers.iter().enumerate() {
        let own = build(&consumer.filters, &format!("consumers[{u}].filters")).every;
        if !own.is_empty() {
            let list = consumer_only.entry(Arc::from(consumer.username.as_str())).or_default();
            list.splice(0..0, own);
        }
    }
    let consumers: ConsumerFilters =
        consumer_only.iter().map(|(name, list)| (name.clone(), FilterList::ordered(list.clone()))).collect();
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for (l, listener) in config.listeners.iter().enumerate() {
        let listener_path = format!("listeners[{l}]");
        let listener_filters = FilterList::ordered(build(&listener.filters, &format!("{listener_path}.filters")).every);
        let mut routes = Vec::with_capacity(listener.routes.len());
        for (r, route) in listener.routes.iter().enumerate() {
            let route_path = format!("{listener_path}.routes[{r}]");
            let Split { every: mut own, by_consumer: route_consumers } =
                build(&route.filters, &format!("{route_path}.filters"));
            // The `request_headers` / `response_headers` shorthands run after the route's list.
            let shorthand = [(&route.request_headers, true), (&route.response_headers, false)];
            for (edits, request_side) in shorthand {
                let factory: Arc<dyn FilterFactory> = match HeaderEdits::compile(edits) {
                    Ok(edits) if edits.is_empty() => continue,
                    Ok(edits) if request_side => Arc::new(HeaderEditsFactory::request(edits)),
                    Ok(edits) => Arc::new(HeaderEditsFactory::response(edits)),
                    Err(error) => {
                        let field = if request_side { "request_headers" } else { "response_headers" };
                        let path = format!("{route_path}.{field}.{}", error.path);
                        errors.borrow_mut().push(config.source.error(&path, error.message));
                        continue;
                    }
                };
                own.push(Scoped::new(factory, 0));
            }
            let cluster = route.forward.as_ref().and_then(|f| clusters.get(f.cluster.as_str()));
            let empty = Split::default();
            let cluster = cluster.unwrap_or(&empty);
            let chain = FilterList::ordered(merge(&global.every, &cluster.every, own));
            let consumers = route_consumers_filters(&consumer_only, &cluster.by_consumer, route_consumers);
            routes.push(RouteFilters { chain, consumers });
        }
        listeners.push((listener_filters, routes));
    }
    let errors = errors.into_inner();
    if errors.is_empty() {
        Ok(CompiledFilters { listeners, consumers })
    } else {
        Err(strait_config::ConfigErrors(errors).sorted())
    }
}

/// The filters on one route of the consumers that have filters for this route or its cluster
/// (`None` when none has: the consumers' own lists apply as they are). For each plugin name
/// the most specific scope wins: consumer and route, then consumer and cluster, then the
/// consumer alone (Kong's precedence). Other consumers find their own lists elsewhere.
fn route_consumers_filters(
    consumer_only: &HashMap<Arc<str>, Vec<Scoped>>,
    cluster: &HashMap<Arc<str>, Vec<Scoped>>,
    mut route: HashMap<Arc<str>, Vec<Scoped>>,
) -> Option<ConsumerFilters> {
    if cluster.is_empty() && route.is_empty() {
        return None;
    }
    let mut names: Vec<Arc<str>> = cluster.keys().cloned().collect();
    names.extend(route.keys().filter(|name| !cluster.contains_key(*name)).cloned());
    let mut merged = ConsumerFilters::new();
    for name in names {
        let alone = consumer_only.get(&name).map_or(&[][..], Vec::as_slice);
        let with_cluster = cluster.get(&name).map_or(&[][..], Vec::as_slice);
        let with_route = route.remove(&name).unwrap_or_default();
        merged.insert(name, FilterList::ordered(merge(alone, with_cluster, with_route)));
    }
    Some(merged)
}

/// The global, cluster and route filters of one route, one per plugin name: the most specific
/// scope's filters of a name replace the others'. In scope order, not yet by priority.
fn merge(global: &[Scoped], cluster: &[Scoped], route: Vec<Scoped>) -> Vec<Scoped> {
    if global.is_empty() && cluster.is_empty() {
        return route;
    }
    let named = |list: &[Scoped], name: &str| list.iter().any(|s| s.name() == name);
    let mut merged: Vec<Scoped> = global
        .iter()
        .filter(|s| !named(cluster, s.name()) && !named(&route, s.name()))
        .chain(cluster.iter().filter(|s| !named(&route, s.name())))
        .cloned()
        .collect();
    merged.extend(route);
    merged
}

#[cfg(test)]
mod tests {
    use strait_http::{Filter, Phases};

    use super::*;

    /// A factory named `.0`; `.1` tells the scope it came from in the assertions' `Debug` text.
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Named(&'static str, &'static str);

    impl FilterFactory for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn phases(&self) -> Phases {
            Phases::REQUEST_HEADERS
        }
        fn create(&self) -> Box<dyn Filter> {
            struct Nothing;
            impl Filter for Nothing {}
            Box::new(Nothing)
        }
    }

    fn scoped(name: &'static str, scope: &'static str, priority: i32) -> Scoped {
        Scoped::new(Arc::new(Named(name, scope)), priority)
    }

    fn labels(list: &FilterList) -> Vec<String> {
        list.entries().iter().map(|s| format!("{}@{:?}", s.name(), s.factory())).collect()
    }

    #[test]
    fn the_most_specific_scope_wins_and_priority_orders_the_chain() {
        let global = [scoped("cors", "global", 2000), scoped("jwt", "global", 1450), scoped("log", "global", 0)];
        let cluster = [scoped("jwt", "cluster", 1450), scoped("rate_limiting", "cluster", 910)];
        let route = vec![scoped("request_headers", "route", 0), scoped("rate_limiting", "route", 910)];
        let list = FilterList::ordered(merge(&global, &cluster, route));
        let got = labels(&list);
        let want = [
            "cors@Named(\"cors\", \"global\")",
            "jwt@Named(\"jwt\", \"cluster\")",
            "rate_limiting@Named(\"rate_limiting\", \"route\")",
            "log@Named(\"log\", \"global\")",
            "request_headers@Named(\"request_headers\", \"route\")",
        ];
        assert_eq!(got, want);
    }
}
