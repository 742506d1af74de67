//! Rate limits at the door: every operation spends one request and its estimated cost
//! (the same estimate [`crate::limits`] caps) from two budgets, the caller's own (its user
//! or API key; an anonymous caller's address) and its client address's (every caller
//! behind one address together). Each budget is a bucket that holds a window's worth and
//! refills evenly, so a caller may burst up to its budget and then goes at the budget's
//! pace. A request either spends from both budgets or from none: a refused request costs
//! nothing.
//!
//! Where the counts live is a [`RateStore`]: this process ([`MemoryRates`]) or a store
//! every gateway shares (the system's Redis store), so that N gateways behind a load
//! balancer give a caller one budget, not N. Both run the same arithmetic ([`refill`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crm_contract::CallerKind;

/// What one budget allows per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Operations.
    pub requests: u64,
    /// Estimated cost (fields × page sizes), summed over operations.
    pub cost: u64,
}

/// The configured limits: a budget per caller kind (`anonymous`, `internal`, `partner`,
/// `integrator`), optionally per role (the most generous of a caller's roles that has one
/// wins over its kind's), and one per client address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub window: Duration,
    pub kinds: HashMap<CallerKind, Budget>,
    pub roles: HashMap<String, Budget>,
    /// Every caller from one client address together; `None`: not limited by address.
    pub per_source: Option<Budget>,
}

impl Default for RateLimits {
    /// Budgets a person or a well-behaved integration does not reach (100 operations a
    /// second sustained for staff, 50 for partners and keys, 2 for signing in), that
    /// still stop a runaway script or a scraper.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            kinds: HashMap::from([
                (
                    CallerKind::Anonymous,
                    Budget {
                        requests: 120,
                        cost: 60_000,
                    },
                ),
                (
                    CallerKind::Internal,
                    Budget {
                        requests: 6_000,
                        cost: 6_000_000,
                    },
                ),
                (
                    CallerKind::Partner,
                    Budget {
                        requests: 3_000,
                        cost: 3_000_000,
                    },
                ),
                (
                    CallerKind::Integrator,
                    Budget {
                        requests: 3_000,
                        cost: 3_000_000,
                    },
                ),
            ]),
            roles: HashMap::new(),
            per_source: Some(Budget {
                requests: 30_000,
                cost: 30_000_000,
            }),
        }
    }
}

/// Why a limits setting could not be read.
#[derive(Debug, thiserror::Error)]
#[error("rate limits: {0}")]
pub struct BadLimits(String);

impl RateLimits {
    /// Reads `name=requests:cost` entries, comma-separated, over the defaults: `name` is a
    /// caller kind, `source` (per client address) or a role; `source=off` stops limiting
    /// by address. E.g. `partner=600:600000,admin=20000:20000000`.
    pub fn parse(text: &str, window: Duration) -> Result<Self, BadLimits> {
        if window.is_zero() {
            return Err(BadLimits("the window must be at least a second".into()));
        }
        let mut limits = Self {
            window,
            ..Self::default()
        };
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry
                .split_once('=')
                .ok_or_else(|| BadLimits(format!("{entry:?} is not name=requests:cost")))?;
            let name = name.trim();
            if name == "source" && value.trim() == "off" {
                limits.per_source = None;
                continue;
            }
            let budget = parse_budget(value.trim()).ok_or_else(|| {
                BadLimits(format!(
                    "{entry:?}: the budget is not requests:cost (two whole numbers above 0)"
                ))
            })?;
            let kind = match name {
                "source" => {
                    limits.per_source = Some(budget);
                    continue;
                }
                "" => return Err(BadLimits(format!("{entry:?} names nothing"))),
                "anonymous" => CallerKind::Anonymous,
                "internal" => CallerKind::Internal,
                "partner" => CallerKind::Partner,
                "integrator" => CallerKind::Integrator,
                role => {
                    limits.roles.insert(role.to_owned(), budget);
                    continue;
                }
            };
            limits.kinds.insert(kind, budget);
        }
        Ok(limits)
    }

    /// The budget of a caller of `kind` with `roles`.
    pub fn budget_of(&self, kind: CallerKind, roles: &[String]) -> Option<Budget> {
        let by_role = roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .max_by_key(|b| (b.requests, b.cost));
        by_role.or_else(|| self.kinds.get(&kind)).copied()
    }
}

fn parse_budget(text: &str) -> Option<Budget> {
    let (requests, cost) = text.split_once(':')?;
    let budget = Budget {
        requests: requests.trim().parse().ok()?,
        cost: cost.trim().parse().ok()?,
    };
    (budget.requests > 0 && budget.cost > 0).then_some(budget)
}

/// One budget a request asks to spend from: the bucket's key and what it holds when full.
#[derive(Clone, Debug)]
pub struct Ask {
    pub key: String,
    pub budget: Budget,
}

/// A bucket's level after an admission: what it holds now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub requests: f64,
    pub cost: f64,
}

/// A store's answer: whether the request was admitted (and spent from every bucket) and
/// each bucket's level afterwards, in the order asked.
#[derive(Clone, Debug)]
pub struct Taken {
    pub admitted: bool,
    pub levels: Vec<Level>,
}

pub type StoreFuture<'a> = Pin<Box<dyn Future<Output = Result<Taken, String>> + Send + 'a>>;

/// Where buckets are kept.
pub trait RateStore: Send + Sync {
    /// Spends one request and `cost` from every bucket of `asks`, or from none when any
    /// lacks it, over `window`.
    fn take<'a>(&'a self, asks: &'a [Ask], cost: u64, window: Duration) -> StoreFuture<'a>;
}

/// A bucket's level `elapsed` after it was `level`, refilled evenly to `budget` over
/// `window` (never past the budget).
pub fn refill(level: Level, budget: Budget, elapsed: Duration, window: Duration) -> Level {
    let share = elapsed.as_secs_f64() / window.as_secs_f64();
    Level {
        requests: (level.requests + share * budget.requests as f64).min(budget.requests as f64),
        cost: (level.cost + share * budget.cost as f64).min(budget.cost as f64),
    }
}

/// Whether `level` holds one request and `cost` of `budget` (a cost above the budget asks
/// for a full bucket, so that no operation the door accepts is refused forever).
pub fn holds(level: Level, budget: Budget, cost: u64) -> bool {
    level.requests >= 1.0 && level.cost >= cost.min(budget.cost) as f64
}

/// Buckets kept in this process's memory.
#[derive(Default)]
pub struct MemoryRates {
    buckets: Mutex<HashMap<String, (Level, Instant)>>,
}

/// Past this many buckets, full ones are forgotten (a full bucket and no bucket mean the
/// same).
const FORGET_ABOVE: usize = 100_000;

impl RateStore for MemoryRates {
    fn take<'a>(&'a self, asks: &'a [Ask], cost: u64, window: Duration) -> StoreFuture<'a> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut levels: Vec<Level> = asks
            .iter()
            .map(|ask| match buckets.get(&ask.key) {
                Some((level, at)) => refill(*level, ask.budget, now - *at, window),
                None => full(ask.budget),
            })
            .collect();
        let admitted = asks
            .iter()
            .zip(&levels)
            .all(|(ask, level)| holds(*level, ask.budget, cost));
        if admitted {
            for (ask, level) in asks.iter().zip(levels.iter_mut()) {
                level.requests -= 1.0;
                level.cost -= cost.min(ask.budget.cost) as f64;
            }
        }
        for (ask, level) in asks.iter().zip(&levels) {
            // The key is copied only for a bucket seen for the first time.
            match buckets.get_mut(&ask.key) {
                Some(kept) => *kept = (*level, now),
                None => {
                    buckets.insert(ask.key.clone(), (*level, now));
                }
            }
        }
        if buckets.len() > FORGET_ABOVE {
            // A bucket left alone for a window is full again: forgetting it changes nothing.
            buckets.retain(|_, (_, at)| now - *at < window);
        }
        drop(buckets);
        Box::pin(std::future::ready(Ok(Taken { admitted, levels })))
    }
}

fn full(budget: Budget) -> Level {
    Level {
        requests: budget.requests as f64,
        cost: budget.cost as f64,
    }
}

/// The door's limiter: the limits and where their buckets are kept.
pub struct RateLimiter {
    pub limits: RateLimits,
    store: Box<dyn RateStore>,
}

/// What the door tells the caller: its budget and what is left of it (for the
/// `RateLimit-*` headers), and when refused, how long to wait.
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    pub admitted: bool,
    /// The budget the headers describe: the one nearest to running out.
    pub budget: Budget,
    pub remaining_requests: u64,
    pub remaining_cost: u64,
    /// Until that budget is full again.
    pub reset: Duration,
    /// Refused: until the request would be admitted.
    pub retry_after: Option<Duration>,
    pub window: Duration,
}

impl RateLimiter {
    pub fn new(limits: RateLimits, store: Box<dyn RateStore>) -> Self {
        Self { limits, store }
    }

    /// In this process's memory.
    pub fn in_memory(limits: RateLimits) -> Self {
        Self::new(limits, Box::new(MemoryRates::default()))
    }

    /// The buckets a caller spends from: its subject's (an anonymous caller's address
    /// stands for it) and its address's.
    pub fn asks(
        &self,
        kind: CallerKind,
        subject: &str,
        roles: &[String],
        source: Option<&str>,
    ) -> Vec<Ask> {
        let mut asks = Vec::with_capacity(2);
        if let Some(budget) = self.limits.budget_of(kind, roles) {
            let key = match (kind, source) {
                (CallerKind::Anonymous, Some(source)) => format!("anon:{source}"),
                (CallerKind::Anonymous, None) => "anon:unknown".to_owned(),
                _ => format!("who:{subject}"),
            };
            asks.push(Ask { key, budget });
        }
        if let (Some(budget), Some(source)) = (self.limits.per_source, source) {
            asks.push(Ask {
                key: format!("src:{source}"),
                budget,
            });
        }
        asks
    }

    /// Spends from `asks`; `None` when there is nothing to limit. A store that fails
    /// admits (and says so in the log): the limits protect the service, an outage of
    /// their store must not stop it.
    pub async fn admit(&self, asks: &[Ask], cost: u64) -> Option<Admission> {
        if asks.is_empty() {
            return None;
        }
        let window = self.limits.window;
        let taken = match self.store.take(asks, cost, window).await {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(%error, "the rate-limit store failed: the request is admitted unlimited");
                return None;
            }
        };
        Some(admission(asks, &taken, cost, window))
    }
}

/// The headers' view of a store's answer.
fn admission(asks: &[Ask], taken: &Taken, cost: u64, window: Duration) -> Admission {
    let per_second = |amount: u64| amount as f64 / window.as_secs_f64();
    // The budget nearest to running out, by the share of requests left.
    let (ask, level) = asks
        .iter()
        .zip(&taken.levels)
        .min_by(|(a, l), (b, m)| {
            let left = |ask: &Ask, level: &Level| {
                (level.requests / ask.budget.requests as f64)
                    .min(level.cost / ask.budget.cost as f64)
            };
            left(a, l).total_cmp(&left(b, m))
        })
        .map(|(a, l)| (a, *l))
        .unwrap_or((
            &asks[0],
            Level {
                requests: 0.0,
                cost: 0.0,
            },
        ));
    let until_full = |missing: f64, amount: u64| {
        Duration::from_secs_f64((missing.max(0.0) / per_second(amount)).min(1e9))
    };
    let reset = until_full(
        ask.budget.requests as f64 - level.requests,
        ask.budget.requests,
    )
    .max(until_full(
        ask.budget.cost as f64 - level.cost,
        ask.budget.cost,
    ));
    let retry_after = (!taken.admitted).then(|| {
        asks.iter()
            .zip(&taken.levels)
            .map(|(ask, level)| {
                let need = cost.min(ask.budget.cost) as f64;
                until_full(1.0 - level.requests, ask.budget.requests)
                    .max(until_full(need - level.cost, ask.budget.cost))
            })
            .max()
            .unwrap_or_default()
    });
    Admission {
        admitted: taken.admitted,
        budget: ask.budget,
        remaining_requests: level.requests.max(0.0).floor() as u64,
        remaining_cost: level.cost.max(0.0).floor() as u64,
        reset,
        retry_after,
        window,
    }
}

impl Admission {
    /// The `RateLimit-*` headers (IETF draft: limit, remaining, reset in seconds, and the
    /// policy, both budgets named) and, when refused, `Retry-After` in whole seconds.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let window = self.window.as_secs().max(1);
        let mut headers = vec![
            ("ratelimit-limit", self.budget.requests.to_string()),
            ("ratelimit-remaining", self.remaining_requests.to_string()),
            ("ratelimit-reset", ceil_seconds(self.reset).to_string()),
            (
                "ratelimit-policy",
                format!(
                    "{};w={window};comment=\"requests\", {};w={window};comment=\"cost\"",
                    self.budget.requests, self.budget.cost
                ),
            ),
            ("ratelimit-cost-remaining", self.remaining_cost.to_string()),
        ];
        if let Some(wait) = self.retry_after {
            headers.push(("retry-after", ceil_seconds(wait).max(1).to_string()));
        }
        headers
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(text: &str) -> RateLimiter {
        RateLimiter::in_memory(RateLimits::parse(text, Duration::from_secs(60)).expect("limits"))
    }

    #[tokio::test]
    async fn a_caller_bursts_to_its_budget_then_is_refused_with_the_wait() {
        let limiter = limiter("partner=3:1000,source=off");
        let asks = limiter.asks(CallerKind::Partner, "usr_1", &[], Some("10.0.0.1"));
        for left in [2, 1, 0] {
            let a = limiter.admit(&asks, 10).await.expect("limited");
            assert!(a.admitted);
            assert_eq!(a.remaining_requests, left);
        }
        let refused = limiter.admit(&asks, 10).await.expect("limited");
        assert!(!refused.admitted);
        // One request comes back every 20 s.
        let wait = refused.retry_after.expect("a wait");
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let headers = refused.headers();
        assert!(
            headers.contains(&("retry-after", "20".to_owned())),
            "{headers:?}"
        );
        assert!(headers.contains(&("ratelimit-remaining", "0".to_owned())));
        // Another caller has its own budget.
        let other = limiter.asks(CallerKind::Partner, "usr_2", &[], Some("10.0.0.1"));
        assert!(limiter.admit(&other, 10).await.expect("limited").admitted);
    }

    #[tokio::test]
    async fn cost_is_a_budget_of_its_own_and_a_refusal_spends_nothing() {
        let limiter = limiter("integrator=100:1000,source=off");
        let asks = limiter.asks(CallerKind::Integrator, "key_1", &[], None);
        assert!(limiter.admit(&asks, 600).await.expect("limited").admitted);
        let refused = limiter.admit(&asks, 600).await.expect("limited");
        assert!(!refused.admitted);
        assert_eq!(refused.remaining_cost, 400);
        // A cheaper one still fits: the refused one took nothing.
        let cheap = limiter.admit(&asks, 400).await.expect("limited");
        assert!(cheap.admitted);
        assert_eq!((cheap.remaining_requests, cheap.remaining_cost), (98, 0));
    }

    #[tokio::test]
    async fn callers_behind_one_address_share_its_budget() {
        let limiter = limiter("internal=100:100000,source=2:100000");
        let a = limiter.asks(CallerKind::Internal, "usr_a", &[], Some("192.0.2.7"));
        let b = limiter.asks(CallerKind::Internal, "usr_b", &[], Some("192.0.2.7"));
        assert!(limiter.admit(&a, 1).await.expect("limited").admitted);
        assert!(limiter.admit(&b, 1).await.expect("limited").admitted);
        let refused = limiter.admit(&a, 1).await.expect("limited");
        assert!(!refused.admitted);
        // The headers describe the budget that ran out: the address's.
        assert_eq!(refused.budget.requests, 2);
    }

    #[test]
    fn limits_are_read_per_kind_role_and_address_and_bad_ones_are_named() {
        let limits = RateLimits::parse(
            "partner=10:500, admin=900:9000, source=off",
            Duration::from_secs(30),
        )
        .expect("limits");
        assert_eq!(limits.per_source, None);
        assert_eq!(
            limits.budget_of(CallerKind::Partner, &[]),
            Some(Budget {
                requests: 10,
                cost: 500
            })
        );
        assert_eq!(
            limits.budget_of(CallerKind::Internal, &["sales".into(), "admin".into()]),
            Some(Budget {
                requests: 900,
                cost: 9000
            })
        );
        // Kinds not named keep their defaults.
        assert_eq!(
            limits.budget_of(CallerKind::Internal, &["sales".into()]),
            RateLimits::default()
                .kinds
                .get(&CallerKind::Internal)
                .copied()
        );
        for bad in [
            "partner",
            "partner=10",
            "partner=0:5",
            "partner=a:b",
            "=1:1",
        ] {
            let error = RateLimits::parse(bad, Duration::from_secs(60)).expect_err(bad);
            assert!(error.to_string().starts_with("rate limits: "), "{error}");
        }
        assert!(RateLimits::parse("", Duration::ZERO).is_err());
    }

    #[test]
    fn a_bucket_refills_evenly_and_never_past_its_budget() {
        let budget = Budget {
            requests: 60,
            cost: 600,
        };
        let empty = Level {
            requests: 0.0,
            cost: 0.0,
        };
        let half = refill(
            empty,
            budget,
            Duration::from_secs(30),
            Duration::from_secs(60),
        );
        assert_eq!(
            half,
            Level {
                requests: 30.0,
                cost: 300.0
            }
        );
        let over = refill(
            half,
            budget,
            Duration::from_secs(600),
            Duration::from_secs(60),
        );
        assert_eq!(over, full(budget));
        // An operation costlier than the whole budget needs a full bucket, not more.
        assert!(holds(full(budget), budget, 10_000));
        assert!(!holds(half, budget, 10_000));
    }
}
