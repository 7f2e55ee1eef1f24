//! The Lua script that decides one request in Redis, atomically, with the sliding-window
//! test of [`crate::rate_limiting::window`]; the command that runs it and its reply.
//!
//! Per limit the script gets two keys, the counters of the current and of the previous fixed
//! window (`strait:rl:<filter>:<window>:<window start>:<key>`), and three numbers: the
//! window's length `P` and limit in requests, and the milliseconds `e` since the current
//! fixed window began. It reads every counter (one `MGET`), admits the request when
//! `c × P + p × (P − e) + P ≤ max × P` holds for every window (`c`, `p`: current and previous
//! counts), and then increments each current counter, giving a new one an expiry of two
//! windows (it is read as the previous window until then). It answers the decision and the
//! counts it read (after counting), from which [`Usage::from_counts`] computes the remaining
//! requests, resets and `Retry-After` exactly as the local store does.
//!
//! Lua's numbers are doubles: the test is exact while `max × P` stays below 2^53, which
//! [`check_limit`] requires of every limit (up to some 104 million requests a day).

use std::fmt::Write as _;

use redis::{Cmd, Value};
use sha1::{Digest, Sha1};

use super::super::window::{Limit, Usage, WindowCounts};

/// The script's source.
pub const SCRIPT: &str = r#"
local counts = redis.call('MGET', unpack(KEYS))
local allowed = 1
for i = 1, #KEYS / 2 do
  local period = tonumber(ARGV[3 * i - 2])
  local max = tonumber(ARGV[3 * i - 1])
  local elapsed = tonumber(ARGV[3 * i])
  local current = tonumber(counts[2 * i - 1] or 0)
  local previous = tonumber(counts[2 * i] or 0)
  counts[2 * i - 1] = current
  counts[2 * i] = previous
  if current * period + previous * (period - elapsed) + period > max * period then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, #KEYS / 2 do
    local current = redis.call('INCR', KEYS[2 * i - 1])
    if current == 1 then
      redis.call('PEXPIRE', KEYS[2 * i - 1], 2 * tonumber(ARGV[3 * i - 2]))
    end
    counts[2 * i - 1] = current
  end
end
table.insert(counts, 1, allowed)
return counts
"#;

/// The largest number Lua's doubles hold exactly (2^53).
const EXACT: u64 = 1 << 53;

/// Refuses a limit whose arithmetic would not be exact in the script.
pub fn check_limit(limit: Limit) -> Result<(), String> {
    let period = limit.window.millis();
    let most = EXACT / period - 1;
    if limit.max > most {
        return Err(format!("with `policy: redis`, at most {most} requests per {}", limit.window.field()));
    }
    Ok(())
}

/// The script's SHA-1 in hex, as `EVALSHA` names it.
pub fn sha() -> String {
    let digest = Sha1::digest(SCRIPT.as_bytes());
    digest.iter().fold(String::with_capacity(40), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// How the script is named in the command: by its digest, or in full.
#[derive(Debug, Clone, Copy)]
pub enum Invoke<'a> {
    /// `EVALSHA <sha>`: the usual way, once the server has the script cached.
    Sha(&'a str),
    /// `EVAL <script>`: after `NOSCRIPT` (the server restarted or flushed its scripts).
    Source,
}

/// The command deciding a request of `key` at `now` against `limits`, its counters named
/// with `prefix` (`strait:rl:<filter>`).
pub fn command(invoke: Invoke<'_>, prefix: &str, key: &str, limits: &[Limit], now: u64) -> Cmd {
    let key_bytes = prefix.len() + key.len() + 24;
    let mut cmd = Cmd::with_capacity(3 + limits.len() * 5, 64 + limits.len() * (2 * key_bytes + 32));
    match invoke {
        Invoke::Sha(sha) => cmd.arg("EVALSHA").arg(sha),
        Invoke::Source => cmd.arg("EVAL").arg(SCRIPT),
    };
    cmd.arg(limits.len() * 2);
    for limit in limits {
        let start = WindowCounts::window_start(limit.window, now);
        let field = limit.window.field();
        cmd.arg(CounterKey { prefix, field, start, key });
        cmd.arg(CounterKey { prefix, field, start: start.saturating_sub(limit.window.millis()), key });
    }
    for limit in limits {
        let period = limit.window.millis();
        cmd.arg(period).arg(limit.max).arg(now - WindowCounts::window_start(limit.window, now));
    }
    cmd
}

/// One counter's key, written straight into the command.
struct CounterKey<'a> {
    prefix: &'a str,
    field: &'a str,
    start: u64,
    key: &'a str,
}

impl redis::ToRedisArgs for CounterKey<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let CounterKey { prefix, field, start, key } = self;
        out.write_arg_fmt(format_args!("{prefix}:{field}:{start}:{key}"));
    }
}

/// What a reply means.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The decision and its usage.
    Decided(Usage),
    /// The server does not have the script cached: send it in full.
    NoScript,
}

/// Reads the script's reply for `limits` at `now`.
pub fn reply(value: Value, limits: &[Limit], now: u64) -> Result<Reply, String> {
    let items = match value {
        Value::Array(items) => items,
        Value::ServerError(error) if error.code() == "NOSCRIPT" => return Ok(Reply::NoScript),
        Value::ServerError(error) => return Err(format!("Redis refused the script: {error}")),
        other => return Err(format!("unexpected reply from Redis: {other:?}")),
    };
    let number = |value: &Value| match value {
        Value::Int(n) => u64::try_from(*n).map_err(|_| format!("negative count {n} from Redis")),
        other => Err(format!("unexpected count from Redis: {other:?}")),
    };
    if items.len() != 1 + 2 * limits.len() {
        return Err(format!("Redis answered {} values for {} limits", items.len(), limits.len()));
    }
    let allowed = number(&items[0])? == 1;
    let mut counts = [WindowCounts::default(); 4];
    for (i, limit) in limits.iter().enumerate() {
        counts[i] = WindowCounts {
            start: WindowCounts::window_start(limit.window, now),
            current: number(&items[1 + 2 * i])?,
            previous: number(&items[2 + 2 * i])?,
        };
    }
    Ok(Reply::Decided(Usage::from_counts(limits, now, allowed, &counts[..limits.len()])))
}

#[cfg(test)]
mod tests {
    use super::super::super::window::Window;
    use super::*;

    fn args(cmd: &Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => "<other>".into(),
            })
            .collect()
    }

    #[test]
    fn the_command_names_both_windows_of_every_limit() {
        let limits = [Limit { window: Window::Second, max: 5 }, Limit { window: Window::Minute, max: 100 }];
        let now = 1_700_000_012_345;
        let cmd = command(Invoke::Sha("abc"), "strait:rl:f1", "ip:10.0.0.1", &limits, now);
        assert_eq!(
            args(&cmd),
            [
                "EVALSHA",
                "abc",
                "4",
                "strait:rl:f1:second:1700000012000:ip:10.0.0.1",
                "strait:rl:f1:second:1700000011000:ip:10.0.0.1",
                "strait:rl:f1:minute:1699999980000:ip:10.0.0.1",
                "strait:rl:f1:minute:1699999920000:ip:10.0.0.1",
                "1000",
                "5",
                "345",
                "60000",
                "100",
                "32345",
            ]
        );
        let full = command(Invoke::Source, "p", "k", &limits[..1], now);
        assert_eq!(args(&full)[..3], ["EVAL".to_owned(), SCRIPT.to_owned(), "2".to_owned()]);
    }

    #[test]
    fn replies_become_the_local_store_s_usage() {
        let limits = [Limit { window: Window::Minute, max: 3 }];
        let now = 1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 15_000;
        let reply = reply(Value::Array(vec![Value::Int(0), Value::Int(3), Value::Int(0)]), &limits, now).unwrap();
        let Reply::Decided(usage) = reply else { panic!("decided") };
        assert!(!usage.allowed);
        assert_eq!(usage.windows[0].remaining, 0);
        // As the local store says for the same counts: 45 s to the next minute, then 20 s.
        assert_eq!(usage.retry_after_ms, 65_000);
    }

    #[test]
    fn odd_replies_are_errors_and_noscript_asks_for_the_source() {
        let limits = [Limit { window: Window::Second, max: 3 }];
        assert!(reply(Value::Array(vec![Value::Int(1)]), &limits, 0).is_err());
        assert!(reply(Value::Nil, &limits, 0).is_err());
        let no_script = redis::parse_redis_value(b"-NOSCRIPT No matching script.\r\n").unwrap();
        assert_eq!(reply(no_script, &limits, 0), Ok(Reply::NoScript));
        let other = redis::parse_redis_value(b"-ERR wrong number of arguments\r\n").unwrap();
        assert!(reply(other, &limits, 0).unwrap_err().contains("wrong number"));
    }

    #[test]
    fn limits_are_kept_within_exact_arithmetic() {
        assert!(check_limit(Limit { window: Window::Day, max: 104_249_990 }).is_ok());
        let error = check_limit(Limit { window: Window::Day, max: 104_249_991 }).unwrap_err();
        assert!(error.contains("at most 104249990 requests per day"), "{error}");
        assert!(check_limit(Limit { window: Window::Second, max: 1_000_000_000 }).is_ok());
    }

    #[test]
    fn the_digest_is_the_script_s_sha1() {
        let sha = sha();
        assert_eq!(sha.len(), 40);
        assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
