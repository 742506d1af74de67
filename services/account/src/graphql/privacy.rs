//! Data-subject access requests: an administrator asks for everything held about one
//! person (by contact or by email); a job gathers this service's records about them in
//! steps (the person, their activity, the audit log about them) with its progress kept on
//! the request; every service adds what its free text says about the person through the
//! federated `DataSubject` (`crm_service_common::privacy`). The request is a record like
//! any other, so who asked for whom, and when, is in the audit log.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Action};
use crm_service_common::domain::email;
use crm_service_common::graphql::db;
use crm_service_common::jobs::{self, NewJob};
use crm_service_common::principal::Principal;
use crm_service_common::privacy::{SubjectPart, Terms};
use crm_service_common::{ApiError, ApiResult};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use super::{ensure_exists, record_object};
use crate::domain::DataExportStatus;
use crate::entity::{account, case, case_comment, contact, data_export, interaction};
use crate::store::{self, set};

crm_service_common::data_subject_entity!(account, mentions);

/// The job that gathers a request's sections.
pub const EXPORT_JOB: &str = "privacy.export";

#[derive(Clone)]
pub struct DataExport(pub data_export::Model);

record_object!(DataExport {
    /// The contact asked for (null: asked for by email).
    async fn contact_id(&self) -> Option<ID> {
        self.0.contact_id.clone().map(ID)
    }
    /// The email asked for (null: asked for by contact).
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn status(&self) -> DataExportStatus {
        self.0.status
    }
    /// Percent of this service's part gathered.
    async fn progress(&self) -> i32 {
        self.0.progress
    }
    /// Who asked.
    async fn requested_by(&self) -> &str {
        &self.0.requested_by
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// The sections gathered so far (JSON): the person's contacts and leads with their
    /// consents, their interactions, cases, comments and tasks, and the audit log about
    /// them (field history with values, and what partners read).
    async fn document(&self) -> &str {
        &self.0.document
    }
    /// The person as every service knows them: what each holds that mentions them.
    async fn subject(&self) -> DataSubject {
        DataSubject {
            terms: self.0.terms.clone(),
        }
    }
});

/// Whom to export: a contact, or everyone (contacts and leads) with an email.
#[derive(InputObject, Clone, Debug, Default)]
pub struct DataExportInput {
    pub contact_id: Option<ID>,
    pub email: Option<String>,
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// Data-subject exports, newest first (administrators).
    async fn data_exports(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<DataExport>> {
        Ok(requests::<data_export::Entity>(ctx, first)
            .await?
            .into_iter()
            .map(DataExport)
            .collect())
    }

    /// One data-subject export.
    async fn data_export(&self, ctx: &Context<'_>, id: ID) -> Result<Option<DataExport>> {
        Ok(request::<data_export::Entity>(ctx, id)
            .await?
            .map(DataExport))
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Asks for everything held about one person, by contact or by email (exactly one):
    /// a job gathers it (`progress`), then `dataExport(id) { document subject { … } }` is
    /// the whole export.
    async fn request_data_export(
        &self,
        ctx: &Context<'_>,
        input: DataExportInput,
    ) -> Result<DataExport> {
        let ty = crm_service_common::privacy::POLICY_TYPE;
        access::check_may(ctx, ty, Action::Create).await?;
        let (contact_id, email) = match (&input.contact_id, &input.email) {
            (Some(id), None) => {
                ensure_exists::<contact::Entity>(ctx, "input.contactId", id).await?;
                (Some(id.0.clone()), None)
            }
            (None, Some(address)) => (None, Some(email("input.email", address)?.to_lowercase())),
            _ => {
                return Err(ApiError::validation(
                    "input",
                    "name the person by contactId or by email (one of them)",
                )
                .into());
            }
        };
        let who = Principal::of(ctx);
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let model = store::create::<data_export::Entity, _>(&txn, None, |m, _| {
            set(&mut m.contact_id, contact_id.clone());
            set(&mut m.email, email.clone());
            set(&mut m.status, DataExportStatus::Pending);
            set(&mut m.progress, 0);
            set(&mut m.document, "{}".to_owned());
            set(&mut m.terms, Terms::new(email.clone()).key());
            set(&mut m.requested_by, who.subject.clone());
            set(&mut m.finished_at, None);
            Ok(())
        })
        .await?;
        jobs::schedule(
            &txn,
            NewJob::new(
                EXPORT_JOB,
                format!("privacy-export:{}", model.id),
                store::now(),
                json!({ "exportId": model.id }),
            ),
        )
        .await?;
        crm_service_common::db::commit(txn).await?;
        Ok(DataExport(model))
    }
}

/// Data-subject requests of one kind (exports, erasures) the caller may read, newest
/// first, at most `first` (1 to 200).
pub(super) async fn requests<E>(ctx: &Context<'_>, first: i32) -> ApiResult<Vec<E::Model>>
where
    E: access::Scoped,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::{IdenStatic, Iterable};
    if !(1..=200).contains(&first) {
        return Err(ApiError::validation("first", "between 1 and 200"));
    }
    let column = |name: &str| E::Column::iter().find(|c| c.as_str() == name);
    let (Some(created_at), Some(id)) = (column("created_at"), column("id")) else {
        return Err(ApiError::internal(
            "a request type without created_at and id",
        ));
    };
    let visible = access::visible_in::<E>(ctx, Action::Read).await?;
    Ok(E::find()
        .filter(visible)
        .order_by_desc(created_at)
        .order_by_desc(id)
        .limit(first as u64)
        .all(db(ctx)?)
        .await?)
}

/// One data-subject request the caller may read.
pub(super) async fn request<E>(ctx: &Context<'_>, id: ID) -> ApiResult<Option<E::Model>>
where
    E: access::Scoped,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<String>,
{
    let visible = access::visible_in::<E>(ctx, Action::Read).await?;
    Ok(E::find_by_id(id.0).filter(visible).one(db(ctx)?).await?)
}

/// This service's free text that mentions the person: account notes, interactions, cases
/// and case comments (whoever they are about).
async fn mentions(ctx: &Context<'_>, terms: &Terms) -> ApiResult<SubjectPart> {
    let db = db(ctx)?;
    let accounts = account::Entity::find()
        .select_only()
        .columns([
            account::Column::Id,
            account::Column::Name,
            account::Column::InternalNote,
        ])
        .filter(terms.mentioned_in(&[account::Column::InternalNote]))
        .into_json()
        .all(db)
        .await?;
    let interactions = interaction::Entity::find()
        .filter(terms.mentioned_in(&[interaction::Column::Subject, interaction::Column::Body]))
        .into_json()
        .all(db)
        .await?;
    let cases = case::Entity::find()
        .filter(terms.mentioned_in(&[case::Column::Subject, case::Column::Description]))
        .into_json()
        .all(db)
        .await?;
    let comments = case_comment::Entity::find()
        .filter(terms.mentioned_in(&[case_comment::Column::Body]))
        .into_json()
        .all(db)
        .await?;
    let records = accounts.len() + interactions.len() + cases.len() + comments.len();
    Ok(SubjectPart {
        service: crate::SERVICE.to_owned(),
        records: records as i32,
        document: json!({
            "accountNotes": accounts,
            "interactions": interactions,
            "cases": cases,
            "caseComments": comments,
        })
        .to_string(),
    })
}

/// The ids of the contacts a request is about.
pub(crate) async fn contacts_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    request: &data_export::Model,
) -> ApiResult<Vec<contact::Model>> {
    let by = match (&request.contact_id, &request.email) {
        (Some(id), _) => Expr::col(contact::Column::Id).eq(id.as_str()),
        (None, Some(email)) => Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(
            contact::Column::Email,
        )))
        .eq(email.as_str()),
        (None, None) => return Ok(Vec::new()),
    };
    Ok(contact::Entity::find().filter(by).all(db).await?)
}
