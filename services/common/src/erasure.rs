//! Erasure of a data subject (a contact or a lead, and everyone with their email) across
//! services.
//!
//! The account service holds the person: its job tombstones their contacts and leads,
//! blanks the free text of the records about them (their interactions, cases and comments,
//! tasks, notifications), forgets the field history of all of those, and scrubs their
//! email from any other free text it keeps. It then publishes `person.erased` through its
//! outbox, and every other service scrubs the email from its own free text when it applies
//! the event ([`Eraser`]), in the same transaction as its checkpoint.
//!
//! **No personal value travels.** Events outlive the erasure (the outbox feeds rebuilds,
//! Redis keeps its streams), so the event names the person by salted SHA-256 digests of
//! their email addresses, not the addresses. A service finds the email-shaped words of its
//! text ([`email_words`]), digests each with the event's salt, and replaces those that
//! match with [`TOMBSTONE`]. The salt is in the event too: the digests keep an address
//! from being read off the event, not from being confirmed by someone who already has it.
//!
//! **The history forgets too.** The audit log keeps each changed value beside its chain
//! (`audit_values`); erasure deletes the values about the person (the whole history of
//! the records about them, and any other kept value with their email), so the chain still
//! verifies and shows that something was erased, not what. Each service records the
//! erasure in its chain (`erased`, with counts) and in `erasures_applied`, which the
//! administrators' page reads to show where it is done.
//!
//! **Nothing lingers on disk.** On SQLite every connection runs with `secure_delete` (what
//! a write removes is overwritten with zeros) and the WAL is emptied once the erasure
//! committed ([`crate::db::wipe_freed`]).

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Range;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    ExprTrait, IdenStatic, Iterable, QueryFilter, QuerySelect, UpdateMany,
};
use serde::{Deserialize, Serialize};

use crate::ApiResult;
use crate::audit::{self, chain};
use crate::events::{Consumer, Event, EventBus, EventHandler, HttpFeed, NewEvent};
use crate::principal::Principal;

/// The policy type whose rules decide who erases people.
pub const POLICY_TYPE: &str = "DataErasure";

/// The event the account service publishes once it erased a person.
pub const EVENT: &str = "person.erased";

/// The service whose events carry erasures.
pub const SOURCE: &str = "account";

/// What an erased value or word reads as afterwards.
pub const TOMBSTONE: &str = "[erased]";

/// One erasure as every service applies it: which request, the contacts and leads it
/// tombstoned, and the person's email addresses as digests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    pub erasure_id: String,
    pub contact_ids: Vec<String>,
    pub lead_ids: Vec<String>,
    /// The salt of every digest (random per erasure).
    pub salt: String,
    /// SHA-256 over the salt and each lower-cased email address.
    pub digests: Vec<String>,
}

impl Erasure {
    pub fn new(
        erasure_id: &str,
        contact_ids: Vec<String>,
        lead_ids: Vec<String>,
        emails: &crate::privacy::Terms,
    ) -> Self {
        let salt = chain::new_salt();
        let mut digests: Vec<String> = emails
            .0
            .iter()
            .map(|email| chain::value_digest(&salt, email))
            .collect();
        digests.sort();
        Self {
            erasure_id: erasure_id.to_owned(),
            contact_ids,
            lead_ids,
            salt,
            digests,
        }
    }

    /// The event that tells the other services.
    pub fn event(&self) -> NewEvent {
        NewEvent::new(
            "DataErasure",
            &self.erasure_id,
            EVENT,
            serde_json::to_value(self).unwrap_or_default(),
        )
    }

    /// Whether `word` is one of the person's email addresses.
    fn names(&self, word: &str) -> bool {
        let digest = chain::value_digest(&self.salt, &word.to_lowercase());
        self.digests.binary_search(&digest).is_ok()
    }

    /// `text` with the person's email addresses replaced by [`TOMBSTONE`]; `None` when it
    /// holds none of them.
    pub fn scrub(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for word in email_words(text) {
            if self.names(&text[word.clone()]) {
                out.push_str(&text[last..word.start]);
                out.push_str(TOMBSTONE);
                last = word.end;
            }
        }
        if last == 0 {
            return None;
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

/// The email-shaped words of `text`: runs of letters, digits and `._%+-@` holding an `@`,
/// without the punctuation that ends a sentence around them.
pub fn email_words(text: &str) -> Vec<Range<usize>> {
    let in_word = |c: char| c.is_alphanumeric() || "._%+-@".contains(c);
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, in_word(c) && i < text.len()) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                let word = &text[s..i];
                let trimmed_start = word.len() - word.trim_start_matches(['.', '-']).len();
                let trimmed = word.trim_matches(['.', '-']);
                if trimmed.contains('@') {
                    let from = s + trimmed_start;
                    words.push(from..from + trimmed.len());
                }
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// Rows whose `column` may hold an email address (its text has an `@`): what a service
/// that knows the person only by digests looks through.
pub fn may_hold_email<C: ColumnTrait>(column: C) -> Condition {
    Condition::all().add(Expr::col(column).like("%@%"))
}

/// `update` that also moves the rows' version and `updated_at` (where `E` has them), as
/// every write of a record does: a client holding the old text can't write it back
/// unnoticed, and incremental sync sees the change.
pub fn touched<E: EntityTrait>(update: UpdateMany<E>) -> UpdateMany<E> {
    let column = |name: &str| E::Column::iter().find(|c| c.as_str() == name);
    let mut update = update;
    if let Some(version) = column("version") {
        update = update.col_expr(version, Expr::col(version).add(1));
    }
    if let Some(updated_at) = column("updated_at") {
        update = update.col_expr(updated_at, Expr::val(crate::clock::now()));
    }
    update
}

/// Replaces the person's email addresses in `column` of `E`, in the rows `candidates`
/// picks (every distinct text is scrubbed once, and every row holding it rewritten,
/// [`touched`]). Returns the rows changed.
pub async fn scrub_text<E: EntityTrait>(
    txn: &DatabaseTransaction,
    erasure: &Erasure,
    column: E::Column,
    candidates: Condition,
) -> ApiResult<u64> {
    let texts: Vec<Option<String>> = E::find()
        .select_only()
        .column(column)
        .distinct()
        .filter(candidates)
        .into_tuple()
        .all(txn)
        .await?;
    let mut changed = 0;
    for text in texts.into_iter().flatten() {
        let Some(clean) = erasure.scrub(&text) else {
            continue;
        };
        changed += touched(E::update_many().col_expr(column, Expr::val(clean)))
            .filter(Expr::col(column).eq(text))
            .exec(txn)
            .await?
            .rows_affected;
    }
    Ok(changed)
}

/// Replaces the whole of `columns` with `value` (a tombstone or null) in the rows of `E`
/// whose `key` is one of `ids` ([`touched`]). Returns the rows changed.
pub async fn tombstone<E: EntityTrait>(
    txn: &DatabaseTransaction,
    key: E::Column,
    ids: &[String],
    columns: &[(E::Column, sea_orm::Value)],
) -> ApiResult<u64> {
    let mut changed = 0;
    for chunk in ids.chunks(500) {
        let mut update = E::update_many();
        for (column, value) in columns {
            update = update.col_expr(*column, Expr::val(value.clone()));
        }
        changed += touched(update)
            .filter(key.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?
            .rows_affected;
    }
    Ok(changed)
}

/// Forgets the kept values of the whole field history of `records` (by id). Returns how
/// many values were deleted.
pub async fn forget_history_of(txn: &DatabaseTransaction, records: &[String]) -> ApiResult<u64> {
    let mut forgotten = 0;
    for chunk in records.chunks(500) {
        let entries = Query::select()
            .column(audit::entry::Column::Id)
            .from(audit::entry::Entity)
            .and_where(Expr::col(audit::entry::Column::RecordId).is_in(chunk.iter().cloned()))
            .to_owned();
        forgotten += audit::value::Entity::delete_many()
            .filter(Expr::col(audit::value::Column::EntryId).in_subquery(entries))
            .exec(txn)
            .await?
            .rows_affected;
    }
    Ok(forgotten)
}

/// Forgets every kept value (of any record's history) that holds one of the person's
/// email addresses, among those `candidates` picks. Returns how many were deleted.
pub async fn forget_values_naming(
    txn: &DatabaseTransaction,
    erasure: &Erasure,
    candidates: Condition,
) -> ApiResult<u64> {
    let kept: Vec<(String, String, String)> = audit::value::Entity::find()
        .select_only()
        .columns([
            audit::value::Column::EntryId,
            audit::value::Column::Side,
            audit::value::Column::Value,
        ])
        .filter(candidates)
        .into_tuple()
        .all(txn)
        .await?;
    let mut forgotten = 0;
    for (entry_id, side, value) in kept {
        if erasure.scrub(&value).is_some() {
            forgotten += audit::value::Entity::delete_many()
                .filter(Expr::col(audit::value::Column::EntryId).eq(entry_id))
                .filter(Expr::col(audit::value::Column::Side).eq(side))
                .exec(txn)
                .await?
                .rows_affected;
        }
    }
    Ok(forgotten)
}

/// Records that this service applied `erasure`, having changed `records` records: in its
/// audit chain (without any value) and in `erasures_applied`. Callers apply an erasure
/// once (the account job stops at a done request, [`Eraser`] at an applied one).
pub async fn record_applied(
    txn: &DatabaseTransaction,
    erasure: &Erasure,
    service: &str,
    records: u64,
) -> ApiResult<()> {
    audit::record_erasure(
        txn,
        ("data_erasures", &erasure.erasure_id),
        serde_json::json!({ "service": service, "records": records }),
    )
    .await?;
    applied::Entity::insert(applied::ActiveModel {
        erasure_id: Set(erasure.erasure_id.clone()),
        records: Set(i32::try_from(records).unwrap_or(i32::MAX)),
        applied_at: Set(crate::clock::now()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

pub mod applied {
    use sea_orm::entity::prelude::*;

    /// An erasure this service applied.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "erasures_applied")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub erasure_id: String,
        pub records: i32,
        pub applied_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Whether this service applied an erasure yet.
pub async fn applied_part(
    db: &DatabaseConnection,
    service: &str,
    erasure_id: &str,
) -> ApiResult<Option<ErasurePart>> {
    Ok(applied::Entity::find_by_id(erasure_id.to_owned())
        .one(db)
        .await?
        .map(|row| ErasurePart {
            service: service.to_owned(),
            records: row.records,
            applied_at: row.applied_at,
        }))
}

/// Refuses anyone but the callers the `DataErasure` read rule gives every row.
pub async fn check_may_erase(who: &Principal) -> ApiResult<()> {
    crate::privacy::check_grants_all(who, POLICY_TYPE, "erasures are for administrators").await
}

/// One service's part of an erasure: how many of its records it changed, and when.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct ErasurePart {
    pub service: String,
    pub records: i32,
    pub applied_at: DateTime<Utc>,
}

/// What a service (other than the account service) scrubs when a person is erased.
pub trait ErasureScope: Send + Sync + 'static {
    /// The service, as its part reads.
    const SERVICE: &'static str;

    /// Scrubs the person's email addresses from this service's free text; returns the
    /// records changed.
    fn scrub(
        txn: &DatabaseTransaction,
        erasure: &Erasure,
    ) -> impl Future<Output = ApiResult<u64>> + Send;
}

/// The event handler that applies `person.erased` with `S`: its free text scrubbed, the
/// kept values of its history that name the person forgotten, the erasure recorded, and
/// (after the commit) the database's freed space wiped.
pub struct Eraser<S>(PhantomData<S>);

impl<S: ErasureScope> EventHandler for Eraser<S> {
    async fn apply(&self, txn: &DatabaseTransaction, event: &Event) -> ApiResult<()> {
        if event.event_type != EVENT {
            return Ok(());
        }
        let erasure: Erasure = event.payload_as()?;
        if applied::Entity::find_by_id(erasure.erasure_id.clone())
            .one(txn)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let mut records = S::scrub(txn, &erasure).await?;
        records += forget_values_naming(txn, &erasure, may_hold_email(audit::value::Column::Value))
            .await?;
        record_applied(txn, &erasure, S::SERVICE, records).await
    }

    fn wants(&self, event: &Event) -> bool {
        event.event_type == EVENT
    }

    fn wipes_after(&self, event: &Event) -> bool {
        event.event_type == EVENT
    }
}

/// The consumer `name` that applies the account service's erasures to a service with `S`.
pub fn consumer<S: ErasureScope>(
    name: &str,
    db: DatabaseConnection,
    bus: EventBus,
    feed: HttpFeed,
) -> Consumer<Eraser<S>> {
    Consumer::new(name, SOURCE, db, bus, feed, Eraser(PhantomData))
}

/// Declares the `ErasureProgress` entity (keyed by the erasure's id) and this service's
/// (`$service`) part of it, `$field`: whether (and how) the service applied the erasure.
#[macro_export]
macro_rules! erasure_progress_entity {
    ($field:ident, $service:expr) => {
        /// Where an erasure is done: every service adds its part once it applied it.
        #[derive(async_graphql::SimpleObject, Clone, Debug)]
        #[graphql(complex)]
        pub struct ErasureProgress {
            pub erasure_id: async_graphql::ID,
        }

        #[async_graphql::ComplexObject]
        impl ErasureProgress {
            /// This service's part (null: not applied yet).
            async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<$crate::erasure::ErasurePart>> {
                let who = $crate::principal::Principal::of(ctx);
                $crate::erasure::check_may_erase(&who).await?;
                Ok($crate::erasure::applied_part(
                    $crate::graphql::db(ctx)?,
                    $service,
                    &self.erasure_id,
                )
                .await?)
            }
        }

        #[derive(Default)]
        pub struct ErasureProgressEntityQuery;

        #[async_graphql::Object]
        impl ErasureProgressEntityQuery {
            /// Federation: an erasure's progress by its id.
            #[graphql(entity)]
            async fn find_erasure_progress_by_erasure_id(
                &self,
                erasure_id: async_graphql::ID,
            ) -> ErasureProgress {
                ErasureProgress { erasure_id }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::Terms;

    fn erasure(emails: &[&str]) -> Erasure {
        Erasure::new(
            "dse_1",
            Vec::new(),
            Vec::new(),
            &Terms::new(emails.iter().map(|e| (*e).to_owned())),
        )
    }

    #[test]
    fn email_words_are_found_without_the_punctuation_around_them() {
        let text = "Ask <Ann.Lee@Example.com>, or mailto:bo@x.io. Not a@ or @b; joann@example.com.";
        let words: Vec<&str> = email_words(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            words,
            vec![
                "Ann.Lee@Example.com",
                "bo@x.io",
                "a@",
                "@b",
                "joann@example.com"
            ]
        );
    }

    #[test]
    fn only_the_persons_addresses_are_scrubbed_whatever_their_case() {
        let e = erasure(&["ann.lee@example.com"]);
        assert_eq!(
            e.scrub("Ask ANN.LEE@example.com first; cc joann.lee@example.com.")
                .as_deref(),
            Some("Ask [erased] first; cc joann.lee@example.com.")
        );
        assert_eq!(e.scrub("nothing here, not@even.close"), None);
        assert_eq!(
            e.scrub("ann.lee@example.com").as_deref(),
            Some(TOMBSTONE),
            "a text that is only the address"
        );
    }

    #[test]
    fn the_event_carries_digests_not_addresses() {
        let e = erasure(&["ann.lee@example.com"]);
        let payload = e.event().payload.to_string();
        assert!(!payload.contains("ann.lee"), "{payload}");
        let other = erasure(&["ann.lee@example.com"]);
        assert_ne!(e.digests, other.digests, "a fresh salt per erasure");
    }
}
