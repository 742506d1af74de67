//! The door's rate-limit buckets in Redis, shared by every gateway of a deployment: N
//! gateways behind a load balancer give a caller one budget, not N.
//!
//! One script spends from every bucket of a request or from none, atomically, with the
//! same arithmetic as the in-process store (`crm_gateway::rate_limit::refill`): a bucket
//! is a hash of its two levels and the time (Redis's own clock, so gateways' clocks do
//! not matter) it was last spent from, and expires when it would be full again.

use std::time::Duration;

use anyhow::Context as _;
use crm_gateway::rate_limit::{Ask, Level, RateStore, StoreFuture, Taken};

/// KEYS: the buckets. ARGV: the window in ms, the request's cost, then per bucket its
/// budget's requests and cost. Returns 1 or 0 (admitted), then each bucket's two levels.
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local levels = {}
local admitted = 1
for i, key in ipairs(KEYS) do
  local cap_r = tonumber(ARGV[1 + 2 * i])
  local cap_c = tonumber(ARGV[2 + 2 * i])
  local kept = redis.call('HMGET', key, 'r', 'c', 't')
  local r = tonumber(kept[1]) or cap_r
  local c = tonumber(kept[2]) or cap_c
  local share = math.max(0, now - (tonumber(kept[3]) or now)) / window
  r = math.min(cap_r, r + share * cap_r)
  c = math.min(cap_c, c + share * cap_c)
  local need = math.min(cost, cap_c)
  if r < 1 or c < need then admitted = 0 end
  levels[i] = {r, c, need}
end
local out = {tostring(admitted)}
for i, key in ipairs(KEYS) do
  local r, c = levels[i][1], levels[i][2]
  if admitted == 1 then
    r = r - 1
    c = c - levels[i][3]
  end
  redis.call('HSET', key, 'r', tostring(r), 'c', tostring(c), 't', tostring(now))
  redis.call('PEXPIRE', key, window)
  out[#out + 1] = tostring(r)
  out[#out + 1] = tostring(c)
end
return out
"#;

/// Buckets in Redis under `<namespace>:rate:`.
pub struct RedisRates {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisRates {
    pub async fn connect(redis_url: &str, namespace: Option<&str>) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url).context("parsing REDIS_URL")?;
        let connection = redis::aio::ConnectionManager::new(client)
            .await
            .context("connecting to Redis for the rate limits")?;
        Ok(Self {
            connection,
            prefix: format!("{}:rate:", namespace.unwrap_or("crm")),
        })
    }
}

impl RateStore for RedisRates {
    fn take<'a>(&'a self, asks: &'a [Ask], cost: u64, window: Duration) -> StoreFuture<'a> {
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let mut script = redis::cmd("EVAL");
            script.arg(TAKE).arg(asks.len());
            for ask in asks {
                script.arg(format!("{}{}", self.prefix, ask.key));
            }
            script.arg(window.as_millis().max(1) as u64).arg(cost);
            for ask in asks {
                script.arg(ask.budget.requests).arg(ask.budget.cost);
            }
            let answer: Vec<String> = script
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            let number = |text: Option<&String>| -> Result<f64, String> {
                text.and_then(|t| t.parse().ok())
                    .ok_or_else(|| format!("the rate-limit script answered {answer:?}"))
            };
            let admitted = number(answer.first())? == 1.0;
            let levels = (0..asks.len())
                .map(|i| {
                    Ok(Level {
                        requests: number(answer.get(1 + 2 * i))?,
                        cost: number(answer.get(2 + 2 * i))?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Taken { admitted, levels })
        })
    }
}
