//! The Redis server of `policy: redis`: Kong's flat `redis_*` fields and Kong 3.6's nested
//! `redis:` object, resolved into one [`RedisServer`].

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use strait_config::units::Dur;
use strait_http::PluginError;

/// Kong's default `redis_host`.
const DEFAULT_HOST: &str = "127.0.0.1";
/// Kong's default `redis_port`.
const DEFAULT_PORT: u16 = 6379;
/// Kong's default `redis_timeout`: 2000 ms.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2_000);

/// A value that stands for a secret: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// `redis_timeout`: an integer is milliseconds (Kong's unit); a string is a duration with
/// its unit (`50ms`, `2s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timeout, D::Error> {
        deserializer.deserialize_any(TimeoutVisitor)
    }
}

/// Reads a [`Timeout`].
struct TimeoutVisitor;

impl Visitor<'_> for TimeoutVisitor {
    type Value = Timeout;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("milliseconds (`2000`) or a duration with its unit (`50ms`, `2s`)")
    }

    fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Timeout, E> {
        Ok(Timeout(Duration::from_millis(ms)))
    }

    fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Timeout, E> {
        u64::try_from(ms).map(|ms| Timeout(Duration::from_millis(ms))).map_err(|_| E::custom("must not be negative"))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Timeout, E> {
        if text.trim().ends_with(|c: char| c.is_ascii_digit()) {
            return Err(E::custom(format!(
                "`{text}`: write milliseconds as a number (`2000`) or give the unit (`2000ms`, `2s`)"
            )));
        }
        Dur::parse(text).map(|d| Timeout(d.0)).map_err(E::custom)
    }
}

/// Kong 3.6's nested `redis:` object (the same settings as the `redis_*` fields).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFields {
    /// Host name or address of the server.
    pub host: Option<String>,
    /// Its port.
    pub port: Option<u16>,
    /// User name for `AUTH` (Redis 6 ACLs); without it, the password is the default user's.
    pub username: Option<String>,
    /// Password for `AUTH`; `{vault://env/NAME}` keeps it out of the file.
    pub password: Option<Secret>,
    /// The database number (`SELECT`).
    pub database: Option<u32>,
    /// Longest wait for Redis per request, connecting included.
    pub timeout: Option<Timeout>,
}

/// The flat fields of Kong's `rate-limiting` (`redis_host`, ...), as they sit in its config.
#[derive(Debug, Clone, Copy)]
pub struct FlatFields<'a> {
    /// `redis_host`.
    pub host: &'a Option<String>,
    /// `redis_port`.
    pub port: Option<u16>,
    /// `redis_username`.
    pub username: &'a Option<String>,
    /// `redis_password`.
    pub password: &'a Option<Secret>,
    /// `redis_database`.
    pub database: Option<u32>,
    /// `redis_timeout`.
    pub timeout: Option<Timeout>,
}

/// Where the counters of `policy: redis` live and how long a request waits for them.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisServer {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name for `AUTH`.
    pub username: Option<String>,
    /// Password for `AUTH`.
    pub password: Option<Secret>,
    /// Database number.
    pub database: u32,
    /// Longest wait per request (connecting, sending and the answer).
    pub timeout: Duration,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.database)
    }
}

impl RedisServer {
    /// The server the flat fields and the nested object name together, with Kong's defaults;
    /// a setting given both ways is refused.
    pub fn resolve(flat: FlatFields<'_>, nested: Option<&RedisFields>) -> Result<RedisServer, PluginError> {
        let nested = nested.cloned().unwrap_or_default();
        let host = one("host", flat.host.clone(), nested.host)?.unwrap_or_else(|| DEFAULT_HOST.to_owned());
        if host.is_empty() {
            return Err(PluginError::at("redis_host", "must not be empty"));
        }
        let port = one("port", flat.port, nested.port)?.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(PluginError::at("redis_port", "must be between 1 and 65535"));
        }
        let timeout = one("timeout", flat.timeout, nested.timeout)?.map_or(DEFAULT_TIMEOUT, |t| t.0);
        if timeout.is_zero() {
            return Err(PluginError::at("redis_timeout", "must be greater than zero"));
        }
        Ok(RedisServer {
            host,
            port,
            username: one("username", flat.username.clone(), nested.username)?,
            password: one("password", flat.password.clone(), nested.password)?,
            database: one("database", flat.database, nested.database)?.unwrap_or(0),
            timeout,
        })
    }
}

/// The setting `name` from `redis_<name>` or `redis.<name>`, refused when both are given.
fn one<T>(name: &str, flat: Option<T>, nested: Option<T>) -> Result<Option<T>, PluginError> {
    match (flat, nested) {
        (Some(_), Some(_)) => {
            Err(PluginError::at(format!("redis.{name}"), format!("also given as `redis_{name}`: keep one of them")))
        }
        (flat, nested) => Ok(flat.or(nested)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(value: serde_json::Value) -> Result<Duration, String> {
        serde_json::from_value::<Timeout>(value).map(|t| t.0).map_err(|e| e.to_string())
    }

    #[test]
    fn timeouts_are_kong_milliseconds_or_durations_with_a_unit() {
        assert_eq!(timeout(serde_json::json!(2000)), Ok(Duration::from_millis(2_000)));
        assert_eq!(timeout(serde_json::json!("50ms")), Ok(Duration::from_millis(50)));
        assert_eq!(timeout(serde_json::json!("2s")), Ok(Duration::from_secs(2)));
        assert!(timeout(serde_json::json!("2000")).unwrap_err().contains("give the unit"));
        assert!(timeout(serde_json::json!(-1)).unwrap_err().contains("negative"));
        assert!(timeout(serde_json::json!(true)).is_err());
    }

    #[test]
    fn defaults_are_kong_s_and_a_setting_is_given_one_way() {
        let none = None;
        let flat =
            FlatFields { host: &none, port: None, username: &None, password: &None, database: None, timeout: None };
        let server = RedisServer::resolve(flat, None).unwrap();
        assert_eq!((server.host.as_str(), server.port, server.database), ("127.0.0.1", 6379, 0));
        assert_eq!(server.timeout, Duration::from_secs(2));
        let nested = RedisFields { host: Some("redis.internal".into()), port: Some(6380), ..Default::default() };
        let server = RedisServer::resolve(flat, Some(&nested)).unwrap();
        assert_eq!((server.host.as_str(), server.port), ("redis.internal", 6380));
        let host = Some("other".to_owned());
        let error = RedisServer::resolve(FlatFields { host: &host, ..flat }, Some(&nested)).unwrap_err();
        assert_eq!(error.path, "redis.host");
        let error = RedisServer::resolve(FlatFields { port: Some(0), ..flat }, None).unwrap_err();
        assert_eq!(error.path, "redis_port");
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let secret = Secret("hunter2".into());
        assert_eq!(format!("{secret:?}"), "<secret>");
        let flat = FlatFields {
            host: &None,
            port: None,
            username: &None,
            password: &Some(secret),
            database: None,
            timeout: None,
        };
        let server = RedisServer::resolve(flat, None).unwrap();
        assert!(!format!("{server:?}").contains("hunter2"));
    }
}
