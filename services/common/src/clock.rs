//! The services' clock: one per process, the system's unless a test injects another
//! (`set`), read by every timestamp a service writes and every scope it evaluates (a share
//! expires by it).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, SubsecRound, Utc};

pub use crm_contract::clock::{Clock, ManualClock, SystemClock};

static CLOCK: RwLock<Option<Arc<dyn Clock>>> = RwLock::new(None);

/// The time now, at the precision both databases keep (microseconds).
pub fn now() -> DateTime<Utc> {
    match CLOCK.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(clock) => clock.now().trunc_subsecs(6),
        None => SystemClock.now(),
    }
}

/// Replaces this process's clock (`None`: back to the system's). A test that moves it
/// runs in a test binary of its own, since every service of the process reads it.
pub fn set(clock: Option<Arc<dyn Clock>>) {
    *CLOCK.write().unwrap_or_else(|e| e.into_inner()) = clock;
}
