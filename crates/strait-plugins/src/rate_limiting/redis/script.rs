//! The Lua script that decides requests in Redis, atomically, with the sliding-window test
//! of [`crate::rate_limiting::window`]; the command that runs it and its reply.
//!
//! One call decides a batch of requests of one filter (those a worker thread had waiting at
//! once, see [`super::batch`]), in order, as if each were its own call: a script call costs
//! Redis some microseconds whatever it does, a request inside it well under one.
//!
//! For each request and limit the script gets two keys, the counters of the current and of
//! the previous fixed window (`strait:rl:<filter>:<window>:<window start>:<key>`), and the
//! milliseconds `e` since the current fixed window began; each limit's length `P` and
//! maximum are given once. For each request it reads the counters (one `MGET`), admits the
//! request when `c × P + p × (P − e) + P ≤ max × P` holds for every window (`c`, `p`: current
//! and previous counts), and then increments each current counter, giving a new one an
//! expiry of two windows (it is read as the previous window until then). It answers, per
//! request, the decision and the counts it read (after counting), from which
//! [`Usage::from_counts`] computes the remaining requests, resets and `Retry-After` exactly as
//! the local store does.
//!
//! Lua's numbers are doubles: the test is exact while `max × P` stays below 2^53, which
//! [`check_limit`] requires of every limit (up to some 104 million requests a day).

use std::fmt::Write as _;
use std::io::Write as _;

use redis::{Cmd, Value};
use sha1::{Digest, Sha1};

use super::super::window::{Limit, Usage, WindowCounts};

/// The script's source. `ARGV`: the number of limits `n`, each limit's length and maximum,
/// then `n` elapsed times per request; `KEYS`: `2 × n` counters per request.
pub const SCRIPT: &str = r#"
local n = tonumber(ARGV[1])
local period, max = {}, {}
for i = 1, n do
  period[i] = tonumber(ARGV[2 * i])
  max[i] = tonumber(ARGV[2 * i + 1])
end
local out = {}
for r = 0, #KEYS / (2 * n) - 1 do
  local k = r * 2 * n
  local a = 1 + 2 * n + r * n
  local counts = redis.call('MGET', unpack(KEYS, k + 1, k + 2 * n))
  local allowed = 1
  for i = 1, n do
    local current = tonumber(counts[2 * i - 1] or 0)
    local previous = tonumber(counts[2 * i] or 0)
    counts[2 * i - 1] = current
    counts[2 * i] = previous
    local p = period[i]
    if current * p + previous * (p - tonumber(ARGV[a + i])) + p > max[i] * p then
      allowed = 0
    end
  end
  if allowed == 1 then
    for i = 1, n do
      local current = redis.call('INCR', KEYS[k + 2 * i - 1])
      if current == 1 then
        redis.call('PEXPIRE', KEYS[k + 2 * i - 1], 2 * period[i])
      end
      counts[2 * i - 1] = current
    end
  end
  out[#out + 1] = allowed
  for i = 1, 2 * n do
    out[#out + 1] = counts[i]
  end
end
return out
"#;

/// Most requests one call decides (Lua's `unpack` and the reply stay small).
pub const MAX_BATCH: usize = 64;

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

/// One request to decide: its key and its time (milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request's key (`header:t1`).
    pub key: Vec<u8>,
    /// When it arrived.
    pub now: u64,
}

/// The command deciding `requests` against `limits`, their counters named with `prefix`
/// (`strait:rl:<filter>`).
pub fn command(invoke: Invoke<'_>, prefix: &str, requests: &[Request], limits: &[Limit]) -> Cmd {
    let n = limits.len();
    let keys: usize = requests.iter().map(|r| 2 * n * (prefix.len() + r.key.len() + 24)).sum();
    let mut cmd = Cmd::with_capacity(4 + 2 * n + 3 * n * requests.len(), 64 + keys + 16 * n * requests.len());
    match invoke {
        Invoke::Sha(sha) => cmd.arg("EVALSHA").arg(sha),
        Invoke::Source => cmd.arg("EVAL").arg(SCRIPT),
    };
    cmd.arg(2 * n * requests.len());
    for Request { key, now } in requests {
        for limit in limits {
            let start = WindowCounts::window_start(limit.window, *now);
            let field = limit.window.field();
            cmd.arg(CounterKey { prefix, field, start, key });
            cmd.arg(CounterKey { prefix, field, start: start.saturating_sub(limit.window.millis()), key });
        }
    }
    cmd.arg(n);
    for limit in limits {
        cmd.arg(limit.window.millis()).arg(limit.max);
    }
    for Request { now, .. } in requests {
        for limit in limits {
            cmd.arg(now - WindowCounts::window_start(limit.window, *now));
        }
    }
    cmd
}

/// One counter's key, written straight into the command.
struct CounterKey<'a> {
    prefix: &'a str,
    field: &'a str,
    start: u64,
    key: &'a [u8],
}

impl redis::ToRedisArgs for CounterKey<'_> {
    /// `<prefix>:<field>:<start>:<key>`, put together without the formatting machinery (which
    /// took about 850 instructions a key, two keys per window and request).
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let CounterKey { prefix, field, start, key } = self;
        let mut digits = itoa::Buffer::new();
        let mut arg = out.writer_for_next_arg();
        for part in [prefix.as_bytes(), b":", field.as_bytes(), b":", digits.format(*start).as_bytes(), b":", key] {
            // Into the command's own buffer: cannot fail.
            let _ = arg.write_all(part);
        }
    }
}

/// What a reply means.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Each request's decision and usage, in the order of the requests.
    Decided(Vec<Usage>),
    /// The server does not have the script cached: send it in full.
    NoScript,
}

/// Reads the script's reply for `requests` against `limits`.
pub fn reply(value: Value, requests: &[Request], limits: &[Limit]) -> Result<Reply, String> {
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
    let per_request = 1 + 2 * limits.len();
    if items.len() != per_request * requests.len() {
        return Err(format!("Redis answered {} values for {} requests", items.len(), requests.len()));
    }
    let mut usages = Vec::with_capacity(requests.len());
    for (request, items) in requests.iter().zip(items.chunks(per_request)) {
        let allowed = number(&items[0])? == 1;
        let mut counts = [WindowCounts::default(); 4];
        for (i, limit) in limits.iter().enumerate() {
            counts[i] = WindowCounts {
                start: WindowCounts::window_start(limit.window, request.now),
                current: number(&items[1 + 2 * i])?,
                previous: number(&items[2 + 2 * i])?,
            };
        }
        usages.push(Usage::from_counts(limits, request.now, allowed, &counts[..limits.len()]));
    }
    Ok(Reply::Decided(usages))
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

    fn request(key: &str, now: u64) -> Request {
        Request { key: key.as_bytes().to_vec(), now }
    }

    #[test]
    fn the_command_names_both_windows_of_every_limit_of_every_request() {
        let limits = [Limit { window: Window::Second, max: 5 }, Limit { window: Window::Minute, max: 100 }];
        let requests = [request("ip:10.0.0.1", 1_700_000_012_345), request("ip:10.0.0.2", 1_700_000_013_000)];
        let cmd = command(Invoke::Sha("abc"), "strait:rl:f1", &requests, &limits);
        assert_eq!(
            args(&cmd),
            [
                "EVALSHA",
                "abc",
                "8",
                "strait:rl:f1:second:1700000012000:ip:10.0.0.1",
                "strait:rl:f1:second:1700000011000:ip:10.0.0.1",
                "strait:rl:f1:minute:1699999980000:ip:10.0.0.1",
                "strait:rl:f1:minute:1699999920000:ip:10.0.0.1",
                "strait:rl:f1:second:1700000013000:ip:10.0.0.2",
                "strait:rl:f1:second:1700000012000:ip:10.0.0.2",
                "strait:rl:f1:minute:1699999980000:ip:10.0.0.2",
                "strait:rl:f1:minute:1699999920000:ip:10.0.0.2",
                "2",
                "1000",
                "5",
                "60000",
                "100",
                "345",
                "32345",
                "0",
                "33000",
            ]
        );
        let full = command(Invoke::Source, "p", &requests[..1], &limits[..1]);
        assert_eq!(args(&full)[..3], ["EVAL".to_owned(), SCRIPT.to_owned(), "2".to_owned()]);
    }

    #[test]
    fn replies_become_the_local_store_s_usage() {
        let limits = [Limit { window: Window::Minute, max: 3 }];
        let now = 1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 15_000;
        let requests = [request("a", now), request("b", now)];
        let value = Value::Array([0, 3, 0, 1, 1, 0].map(Value::Int).to_vec());
        let Reply::Decided(usages) = reply(value, &requests, &limits).unwrap() else { panic!("decided") };
        assert!(!usages[0].allowed);
        assert_eq!(usages[0].windows[0].remaining, 0);
        // As the local store says for the same counts: 45 s to the next minute, then 20 s.
        assert_eq!(usages[0].retry_after_ms, 65_000);
        assert!(usages[1].allowed);
        assert_eq!(usages[1].windows[0].remaining, 2);
    }

    #[test]
    fn odd_replies_are_errors_and_noscript_asks_for_the_source() {
        let limits = [Limit { window: Window::Second, max: 3 }];
        let requests = [request("a", 0)];
        assert!(reply(Value::Array(vec![Value::Int(1)]), &requests, &limits).is_err());
        assert!(reply(Value::Nil, &requests, &limits).is_err());
        let no_script = redis::parse_redis_value(b"-NOSCRIPT No matching script.\r\n").unwrap();
        assert_eq!(reply(no_script, &requests, &limits), Ok(Reply::NoScript));
        let other = redis::parse_redis_value(b"-ERR wrong number of arguments\r\n").unwrap();
        assert!(reply(other, &requests, &limits).unwrap_err().contains("wrong number"));
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
