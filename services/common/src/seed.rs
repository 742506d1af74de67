//! Building blocks of the deterministic demo seeds: one random source per seed, one clock
//! start, chunked inserts. The same seed gives the same rows, ids and timestamps.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::ActiveValue::{self, Set};
use sea_orm::{ConnectionTrait, EntityTrait};

/// The internal staff of the demo who own records: `(user id, persona)`. The account seed
/// makes them owners; the identity seed makes them users.
pub const INTERNAL_USERS: &[(&str, &str)] = &[
    ("usr_admin", "admin"),
    ("usr_management", "management"),
    ("usr_sales", "sales"),
    ("usr_sales2", "sales2"),
    ("usr_marketing", "marketing"),
    ("usr_support", "support"),
];

/// A demo partner organisation, as the seeds of other services refer to it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeededPartner {
    pub id: String,
    pub name: String,
    /// `Supplier` or `Distributor`.
    pub kind: crate::principal::PrincipalKind,
    /// The persona prefix of its users' emails, e.g. `supplier1`.
    pub persona: String,
    pub email_domain: String,
    /// Codes of the territories it covers (distributors).
    pub territories: Vec<String>,
}

/// The seed's "now": the start of the current day (UTC). The demo world sits around it
/// (past interactions and orders, open cases from the last days, future close dates), and
/// two seeds run on the same day write the same timestamps.
pub fn today() -> DateTime<Utc> {
    let now = Utc::now();
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// The world's clock starts here: 400 days before [`today`], at 09:00.
pub fn epoch() -> DateTime<Utc> {
    today() - Duration::days(400) + Duration::hours(9)
}

/// `(id, external_id, version, created_at, updated_at, archived_at)` of a seeded record.
pub type RecordColumns = (
    ActiveValue<String>,
    ActiveValue<Option<String>>,
    ActiveValue<i32>,
    ActiveValue<DateTime<Utc>>,
    ActiveValue<DateTime<Utc>>,
    ActiveValue<Option<DateTime<Utc>>>,
);

/// The deterministic random source of a seed.
pub struct World {
    pub rng: ChaCha8Rng,
}

impl World {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn id(&mut self, prefix: &str) -> String {
        let bytes: [u8; 16] = self.rng.random();
        format!(
            "{prefix}_{}",
            uuid::Builder::from_random_bytes(bytes).into_uuid().simple()
        )
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // The lists above are constants and never empty.
        items.choose(&mut self.rng).unwrap_or(&items[0])
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// The columns every record has, for a record created at `at`: a fresh id, no
    /// external id, version 1, not archived.
    pub fn columns(&mut self, prefix: &str, at: DateTime<Utc>) -> RecordColumns {
        (
            Set(self.id(prefix)),
            Set(None),
            Set(1),
            Set(at),
            Set(at),
            Set(None),
        )
    }

    pub fn time(&mut self, max_days: i64) -> DateTime<Utc> {
        epoch() + Duration::minutes(self.rng.random_range(0..max_days * 24 * 60))
    }

    /// A time between `after` (plus a day) and [`today`]: something that already
    /// happened.
    pub fn since(&mut self, after: DateTime<Utc>) -> DateTime<Utc> {
        let span = (today() - after).num_minutes().max(24 * 60 + 1);
        after + Duration::minutes(self.rng.random_range(24 * 60..span))
    }
}

/// Inserts rows in chunks (SQLite caps bound parameters per statement).
pub async fn insert_all<E, C>(db: &C, rows: Vec<E::ActiveModel>) -> anyhow::Result<()>
where
    E: EntityTrait,
    C: ConnectionTrait,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(200).collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}
