//! Data-subject erasure: an administrator erases one person (a contact, a lead, or
//! everyone with an email) in every service. The request is kept (who asked, whom, and
//! how far it is), a job erases the account service's part and publishes the event the
//! other services apply (`crm_service_common::erasure`); `DataErasure.progress` shows each
//! service's part once it is done.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Action};
use crm_service_common::domain::email;
use crm_service_common::graphql::db;
use crm_service_common::jobs::{self, NewJob};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, erasure};
use serde_json::json;

use super::{ensure_exists, record_object};
use crate::domain::DataErasureStatus;
use crate::entity::{contact, data_erasure, lead};
use crate::store::{self, set};

crm_service_common::erasure_progress_entity!(account, crate::SERVICE);

/// The job that erases the account service's part.
pub const ERASURE_JOB: &str = "privacy.erase";

#[derive(Clone)]
pub struct DataErasure(pub data_erasure::Model);

/// The records an erasure tombstoned.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErasedIds {
    #[serde(default)]
    contact_ids: Vec<String>,
    #[serde(default)]
    lead_ids: Vec<String>,
}

impl DataErasure {
    fn erased(&self) -> ErasedIds {
        serde_json::from_str(&self.0.erased_ids).unwrap_or_default()
    }
}

record_object!(DataErasure {
    /// The contact asked for.
    async fn contact_id(&self) -> Option<ID> {
        self.0.contact_id.clone().map(ID)
    }
    /// The lead asked for.
    async fn lead_id(&self) -> Option<ID> {
        self.0.lead_id.clone().map(ID)
    }
    /// The email asked for, until the erasure ran (then null: the request keeps no
    /// personal value).
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn status(&self) -> DataErasureStatus {
        self.0.status
    }
    /// Records and kept history values the account service changed or deleted.
    async fn records(&self) -> i32 {
        self.0.records
    }
    /// The contacts tombstoned.
    async fn erased_contact_ids(&self) -> Vec<ID> {
        self.erased().contact_ids.into_iter().map(ID).collect()
    }
    /// The leads tombstoned.
    async fn erased_lead_ids(&self) -> Vec<ID> {
        self.erased().lead_ids.into_iter().map(ID).collect()
    }
    /// Who asked.
    async fn requested_by(&self) -> &str {
        &self.0.requested_by
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// Every service's part, once it applied the erasure.
    async fn progress(&self) -> ErasureProgress {
        ErasureProgress {
            erasure_id: ID(self.0.id.clone()),
        }
    }
});

/// Whom to erase: a contact, a lead, or everyone (contacts and leads) with an email.
/// Every contact and lead sharing an email with the one named is the same person and is
/// erased too.
#[derive(InputObject, Clone, Debug, Default)]
pub struct DataErasureInput {
    pub contact_id: Option<ID>,
    pub lead_id: Option<ID>,
    pub email: Option<String>,
}

#[derive(Default)]
pub struct ErasureQuery;

#[Object]
impl ErasureQuery {
    /// Erasures, newest first (administrators).
    async fn data_erasures(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<DataErasure>> {
        Ok(super::privacy::requests::<data_erasure::Entity>(ctx, first)
            .await?
            .into_iter()
            .map(DataErasure)
            .collect())
    }

    /// One erasure.
    async fn data_erasure(&self, ctx: &Context<'_>, id: ID) -> Result<Option<DataErasure>> {
        Ok(super::privacy::request::<data_erasure::Entity>(ctx, id)
            .await?
            .map(DataErasure))
    }
}

#[derive(Default)]
pub struct ErasureMutation;

#[Object]
impl ErasureMutation {
    /// Erases one person in every service, named by exactly one of contact, lead or
    /// email: their contacts and leads become tombstones, the free text about them is
    /// blanked, their email is scrubbed from any other text, the history of their values
    /// is forgotten. It can't be undone. A job does the work (`status`, `progress`).
    async fn erase_data_subject(
        &self,
        ctx: &Context<'_>,
        input: DataErasureInput,
    ) -> Result<DataErasure> {
        access::check_may(ctx, erasure::POLICY_TYPE, Action::Create).await?;
        let (contact_id, lead_id, email) = match (&input.contact_id, &input.lead_id, &input.email) {
            (Some(id), None, None) => {
                ensure_exists::<contact::Entity>(ctx, "input.contactId", id).await?;
                (Some(id.0.clone()), None, None)
            }
            (None, Some(id), None) => {
                ensure_exists::<lead::Entity>(ctx, "input.leadId", id).await?;
                (None, Some(id.0.clone()), None)
            }
            (None, None, Some(address)) => (
                None,
                None,
                Some(email("input.email", address)?.to_lowercase()),
            ),
            _ => {
                return Err(ApiError::validation(
                    "input",
                    "name the person by contactId, leadId or email (one of them)",
                )
                .into());
            }
        };
        let who = Principal::of(ctx);
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let model = store::create::<data_erasure::Entity, _>(&txn, None, |m, _| {
            set(&mut m.contact_id, contact_id.clone());
            set(&mut m.lead_id, lead_id.clone());
            set(&mut m.email, email.clone());
            set(&mut m.status, DataErasureStatus::Pending);
            set(&mut m.records, 0);
            set(&mut m.erased_ids, "{}".to_owned());
            set(&mut m.requested_by, who.subject.clone());
            set(&mut m.finished_at, None);
            Ok(())
        })
        .await?;
        jobs::schedule(
            &txn,
            NewJob::new(
                ERASURE_JOB,
                format!("privacy-erase:{}", model.id),
                store::now(),
                json!({ "erasureId": model.id }),
            ),
        )
        .await?;
        crm_service_common::db::commit(txn).await?;
        Ok(DataErasure(model))
    }
}
