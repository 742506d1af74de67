//! Data-subject requests across services. The account service keeps the requests (a
//! `DataExport` per person, run as a job there); a person's data in the other services is
//! found by what identifies the person — the emails and full names of the contacts the
//! request matched, the request's **terms** — in the free text those services keep (an
//! order's internal note, a reader's feedback). Each service adds its part to one
//! federated entity, `DataSubject`, keyed by the terms, so one query assembles a person's
//! whole export; who may ask is the policy's `DataExport` read rule (administrators).
//!
//! The terms are the person's email addresses only: a name is shared by other people, and
//! an export that swept in someone else's data would itself be a breach.

use async_graphql::SimpleObject;
use crm_contract::ErrorCode;
use sea_orm::{ColumnTrait, Condition};
use serde::{Deserialize, Serialize};

use crate::access::{Action, decide};
use crate::principal::Principal;
use crate::{ApiError, ApiResult};

/// The policy type whose rules decide who runs exports (and, later, erasures).
pub const POLICY_TYPE: &str = "DataExport";

/// The shortest term searched for: shorter ones would match unrelated text.
pub const MIN_TERM: usize = 3;

/// What identifies one person in free text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms(pub Vec<String>);

impl Terms {
    /// The terms, lower-cased, without duplicates or ones too short to search for.
    pub fn new(terms: impl IntoIterator<Item = String>) -> Self {
        let mut out: Vec<String> = terms
            .into_iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| t.chars().count() >= MIN_TERM)
            .collect();
        out.sort();
        out.dedup();
        Self(out)
    }

    /// The entity key that carries the terms to every service.
    pub fn key(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    pub fn parse(key: &str) -> ApiResult<Self> {
        let terms: Vec<String> = serde_json::from_str(key)
            .map_err(|_| ApiError::validation("terms", "not a data subject's terms"))?;
        Ok(Self::new(terms))
    }

    /// Rows whose `columns` mention any term (case-insensitively); none when there are no
    /// terms.
    pub fn mentioned_in<C: ColumnTrait>(&self, columns: &[C]) -> Condition {
        if self.0.is_empty() {
            return Condition::all().add(crate::access::no_rows());
        }
        let mut any = Condition::any();
        for term in &self.0 {
            for column in columns {
                any = any.add(crate::pagination::contains_text(*column, term));
            }
        }
        any
    }
}

/// Refuses anyone but the callers the `DataExport` read rule gives every row.
pub async fn check_may_export(who: &Principal) -> ApiResult<()> {
    check_grants_all(
        who,
        POLICY_TYPE,
        "data-subject requests are for administrators",
    )
    .await
}

/// Refuses, with `refusal`, anyone but the callers the read rule of `ty` gives every row:
/// who may run data-subject requests of that kind (administrators).
pub async fn check_grants_all(who: &Principal, ty: &str, refusal: &str) -> ApiResult<()> {
    if decide(who, ty, Action::Read).await?.grants_all() {
        Ok(())
    } else {
        Err(ApiError::denied(ErrorCode::Forbidden, refusal.to_owned()))
    }
}

/// One service's part of a person's export: what it holds that mentions the person, as
/// JSON (its own shape per service), and how many records that is.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct SubjectPart {
    pub service: String,
    pub records: i32,
    /// JSON: the records, by kind.
    pub document: String,
}

/// Declares the `DataSubject` entity (keyed by its terms) and this service's part of it,
/// `$field`, made by `$part(ctx, &terms) -> ApiResult<SubjectPart>`.
#[macro_export]
macro_rules! data_subject_entity {
    ($field:ident, $part:path) => {
        /// A person, by what identifies them in free text: every service adds what it holds
        /// that mentions them.
        #[derive(async_graphql::SimpleObject, Clone, Debug)]
        #[graphql(complex)]
        pub struct DataSubject {
            /// The terms (email addresses), as every service reads them.
            pub terms: String,
        }

        #[async_graphql::ComplexObject]
        impl DataSubject {
            /// What this service holds that mentions the person.
            async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<$crate::privacy::SubjectPart> {
                let who = $crate::principal::Principal::of(ctx);
                $crate::privacy::check_may_export(&who).await?;
                let terms = $crate::privacy::Terms::parse(&self.terms)?;
                Ok($part(ctx, &terms).await?)
            }
        }

        #[derive(Default)]
        pub struct DataSubjectEntityQuery;

        #[async_graphql::Object]
        impl DataSubjectEntityQuery {
            /// Federation: a person by the terms that identify them.
            #[graphql(entity)]
            async fn find_data_subject_by_terms(&self, terms: String) -> DataSubject {
                DataSubject { terms }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_lower_cased_deduplicated_and_never_too_short() {
        let terms = Terms::new([
            "Ann.Lee@Example.com".to_owned(),
            " ann.lee@example.com ".to_owned(),
            "a@b".to_owned(),
            "al".to_owned(),
        ]);
        assert_eq!(terms.0, vec!["a@b", "ann.lee@example.com"]);
        assert_eq!(Terms::parse(&terms.key()).ok(), Some(terms));
        assert!(Terms::parse("not json").is_err());
    }
}
