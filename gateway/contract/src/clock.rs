//! The one clock: every service, the identity directory and the web sessions read time
//! through [`Clock`], so a test can move time for all of them the same way.

use std::sync::RwLock;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, from a clock tests can replace.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Seconds since the Unix epoch (token claims).
    fn timestamp(&self) -> i64 {
        self.now().timestamp()
    }
}

/// The machine's clock, at the precision both databases keep (microseconds), so a time
/// read back equals the time written.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that moves only when told to (tests).
pub struct ManualClock(RwLock<DateTime<Utc>>);

impl ManualClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(RwLock::new(now))
    }

    pub fn advance(&self, seconds: i64) {
        let mut now = self.0.write().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::seconds(seconds);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}
