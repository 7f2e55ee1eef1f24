//! Building filters by name from configuration: `filters: [{ name: ..., config: ... }]`.
//!
//! A plugin is registered once under its name; it turns its `config:` block into a
//! [`FilterFactory`]. A plugin with a typed configuration is one call to [`typed`]: the block is
//! deserialized into the plugin's own struct, and every error is reported with the file, line
//! and field path of the offending value, as the rest of the configuration is.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use strait_config::{Config, ConfigError, FilterSpec};

use crate::filter::FilterFactory;

/// What a plugin may look at while building: the whole configuration being applied.
#[derive(Debug, Clone, Copy)]
pub struct BuildEnv<'a> {
    /// The configuration the filter belongs to (cluster names, for instance).
    pub config: &'a Config,
}

/// A problem in a plugin's `config:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// Field path inside the block (`set.x-a`); empty for the block itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl PluginError {
    /// An error about the field at `path` inside the block.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> PluginError {
        PluginError { path: path.into(), message: message.into() }
    }
}

/// Something in a plugin's `config:` block that is valid but probably not what was meant (a
/// rule that can never take effect): reported by `strait validate` and logged when loading,
/// without refusing the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginWarning {
    /// Field path inside the block (`rules[2]`); empty for the block itself.
    pub path: String,
    /// What is suspicious.
    pub message: String,
}

impl PluginWarning {
    /// A warning about the field at `path` inside the block.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> PluginWarning {
        PluginWarning { path: path.into(), message: message.into() }
    }
}

/// A kind of filter that can be built from configuration.
pub trait Plugin: Send + Sync {
    /// The name configurations use.
    fn name(&self) -> &'static str;

    /// Builds a factory from the `config:` block (`Value::Null` when it is absent).
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError>;

    /// Where its filters run in a chain when the configuration does not say (`priority:`):
    /// higher first, as Kong's plugin priorities (see `docs/CONFIG.md`). Default 0.
    fn priority(&self) -> i32 {
        0
    }

    /// What looks wrong in a `config:` block that builds (see [`PluginWarning`]). Default: none.
    fn warnings(&self, _config: &Value, _env: &BuildEnv<'_>) -> Vec<PluginWarning> {
        Vec::new()
    }
}

/// `plugin` with the default chain priority `priority`.
pub fn prioritized(plugin: impl Plugin + 'static, priority: i32) -> impl Plugin {
    Prioritized { plugin, priority }
}

/// See [`prioritized`].
struct Prioritized<P> {
    plugin: P,
    priority: i32,
}

impl<P: Plugin> Plugin for Prioritized<P> {
    fn name(&self) -> &'static str {
        self.plugin.name()
    }

    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError> {
        self.plugin.build(config, env)
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn warnings(&self, config: &Value, env: &BuildEnv<'_>) -> Vec<PluginWarning> {
        self.plugin.warnings(config, env)
    }
}

/// The plugins a Strait binary knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    plugins: BTreeMap<&'static str, Arc<dyn Plugin>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a plugin; a later plugin with the same name replaces the earlier one.
    pub fn register(&mut self, plugin: impl Plugin + 'static) -> &mut Registry {
        self.plugins.insert(plugin.name(), Arc::new(plugin));
        self
    }

    /// The names of every registered plugin, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.plugins.keys().copied()
    }

    /// The chain priority of the filter `spec` configures: its `priority:`, or its plugin's.
    pub fn priority(&self, spec: &FilterSpec) -> i32 {
        spec.priority.unwrap_or_else(|| self.plugins.get(spec.name.as_str()).map_or(0, |p| p.priority()))
    }

    /// Builds the filter configured by `spec`, found at `path` (`listeners[0].filters[1]`).
    pub fn build(
        &self,
        spec: &FilterSpec,
        path: &str,
        env: &BuildEnv<'_>,
    ) -> Result<Arc<dyn FilterFactory>, ConfigError> {
        let source = &env.config.source;
        let Some(plugin) = self.plugins.get(spec.name.as_str()) else {
            let known: Vec<&str> = self.names().collect();
            return Err(source.error(
                &format!("{path}.name"),
                format!("unknown filter `{}`; known filters: {}", spec.name, known.join(", ")),
            ));
        };
        plugin.build(&spec.config, env).map_err(|error| {
            let config_path = format!("{path}.config");
            let field = if error.path.is_empty() { config_path } else { format!("{config_path}.{}", error.path) };
            source.locate(&field, error.message)
        })
    }

    /// The warnings about the filter configured by `spec`, found at `path`, each located at
    /// its field (`listeners[0].filters[1].config.rules[2]`); none for an unknown filter.
    pub fn warnings(&self, spec: &FilterSpec, path: &str, env: &BuildEnv<'_>) -> Vec<ConfigError> {
        let Some(plugin) = self.plugins.get(spec.name.as_str()) else { return Vec::new() };
        let config_path = format!("{path}.config");
        plugin
            .warnings(&spec.config, env)
            .into_iter()
            .map(|warning| {
                let field = if warning.path.is_empty() {
                    config_path.clone()
                } else {
                    format!("{config_path}.{}", warning.path)
                };
                env.config.source.error(&field, warning.message)
            })
            .collect()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.plugins.keys()).finish()
    }
}

/// A plugin whose `config:` block is the typed struct `C`; `build` turns a valid one into a
/// factory. An absent block is read as `{}`, so `C`'s defaults apply.
pub fn typed<C, B>(name: &'static str, build: B) -> impl Plugin
where
    C: DeserializeOwned + 'static,
    B: Fn(C, &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError> + Send + Sync + 'static,
{
    TypedPlugin { name, build, config: std::marker::PhantomData::<fn() -> C> }
}

/// See [`typed`].
struct TypedPlugin<C, B> {
    name: &'static str,
    build: B,
    config: std::marker::PhantomData<fn() -> C>,
}

impl<C, B> Plugin for TypedPlugin<C, B>
where
    C: DeserializeOwned + 'static,
    B: Fn(C, &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError> + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError> {
        let value = match config {
            Value::Null => Value::Object(Default::default()),
            other => other.clone(),
        };
        let typed: C = serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let path = if path == "." { String::new() } else { path };
            PluginError::at(path, error.inner().to_string())
        })?;
        (self.build)(typed, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Filter, Phases};

    /// A plugin that builds nothing useful and warns about every `suspicious` field.
    struct Wary;

    #[derive(Debug)]
    struct Nothing;

    impl FilterFactory for Nothing {
        fn name(&self) -> &'static str {
            "wary"
        }

        fn phases(&self) -> Phases {
            Phases::NONE
        }

        fn create(&self) -> Box<dyn Filter> {
            unreachable!("not run")
        }
    }

    impl Plugin for Wary {
        fn name(&self) -> &'static str {
            "wary"
        }

        fn build(&self, _config: &Value, _env: &BuildEnv<'_>) -> Result<Arc<dyn FilterFactory>, PluginError> {
            Ok(Arc::new(Nothing))
        }

        fn warnings(&self, config: &Value, _env: &BuildEnv<'_>) -> Vec<PluginWarning> {
            let flagged = config.get("suspicious").is_some();
            flagged.then(|| PluginWarning::at("suspicious", "looks wrong")).into_iter().collect()
        }
    }

    #[test]
    fn warnings_pass_through_a_priority_and_are_located_at_their_field() {
        let yaml = "listeners:\n  - name: web\n    bind: 127.0.0.1:0\n    filters:\n      - name: wary\n        config:\n          suspicious: 1\n    routes:\n      - direct: { status: 200 }\n";
        let config = strait_config::load_str(yaml, "w.yaml").unwrap();
        let mut registry = Registry::new();
        registry.register(prioritized(Wary, 5));
        let env = BuildEnv { config: &config };
        let spec = &config.listeners[0].filters[0];
        let warnings = registry.warnings(spec, "listeners[0].filters[0]", &env);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].to_string(), "w.yaml:7:23: listeners[0].filters[0].config.suspicious: looks wrong");
        let unknown = FilterSpec { name: "nope".into(), ..spec.clone() };
        assert!(registry.warnings(&unknown, "listeners[0].filters[0]", &env).is_empty());
    }
}
