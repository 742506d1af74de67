//! What the account service does later, on its job runner (`crm_service_common::jobs`):
//! a case's SLA check when its time runs out (escalation), a task's reminder. The jobs are
//! scheduled by the writes that set the times (`after_write` of cases and tasks), in the
//! write's transaction; each handler re-checks the record, since it may have changed since.
//! Also the notifications these and other changes send.

use chrono::{DateTime, Utc};
use crm_service_common::ApiResult;
use crm_service_common::jobs::{self, Job, JobRunner, NewJob, Outcome};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, ExprTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};

use crate::domain::{NotificationKind, RecordKind};
use crate::entity::*;
use crate::store;

/// A case's SLA check.
pub const CASE_SLA: &str = "case.sla";
/// A task's reminder.
pub const TASK_REMINDER: &str = "task.reminder";
/// A lead's score again, when a task it counts as recent activity ages out.
pub const LEAD_RESCORE: &str = "lead.rescore";
/// An approved deal registration's protection running out.
pub const REGISTRATION_EXPIRY: &str = "registration.expiry";
/// A routed lead's time to be accepted or declined running out.
pub const LEAD_RESPONSE: &str = "lead.response";

/// The account service's runner with its handlers.
pub fn runner(db: DatabaseConnection) -> JobRunner {
    JobRunner::new(db, crate::SERVICE)
        .handle(CASE_SLA, |txn, job| Box::pin(check_case_sla(txn, job)))
        .handle(TASK_REMINDER, |txn, job| Box::pin(remind_of_task(txn, job)))
        .handle(LEAD_RESCORE, |txn, job| {
            Box::pin(rescore_lead_job(txn, job))
        })
        .handle(REGISTRATION_EXPIRY, |txn, job| {
            Box::pin(expire_registration(txn, job))
        })
        .handle(LEAD_RESPONSE, |txn, job| {
            Box::pin(return_unanswered_lead(txn, job))
        })
        .handle(crate::graphql::privacy::EXPORT_JOB, |txn, job| {
            Box::pin(crate::data_export::step(txn, job))
        })
        .handle(crate::graphql::erasure::ERASURE_JOB, |txn, job| {
            Box::pin(crate::erasure::run(txn, job))
        })
        .wipe_after(crate::graphql::erasure::ERASURE_JOB)
        .handle(crate::retention::RETENTION, |txn, job| {
            Box::pin(crate::retention::apply(txn, job))
        })
        .recurring(crate::retention::RETENTION)
        .wipe_after(crate::retention::RETENTION)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaseRef {
    case_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskRef {
    task_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeadRef {
    lead_id: String,
}

/// The SLA clock of a case runs: open, not waiting on the customer, not yet escalated.
fn sla_running(case: &case::Model) -> Option<DateTime<Utc>> {
    let running = case.archived_at.is_none()
        && case.status.is_open()
        && case.sla_paused_at.is_none()
        && case.escalated_at.is_none();
    case.sla_due_at.filter(|_| running)
}

/// After a case is written: (re)schedule its SLA check when its clock runs.
pub async fn case_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&case::Model>,
    after: &case::Model,
) -> ApiResult<()> {
    let due = sla_running(after);
    if before.map(sla_running) == Some(due) {
        return Ok(());
    }
    if let Some(due) = due {
        let payload = serde_json::to_value(CaseRef {
            case_id: after.id.clone(),
        })
        .unwrap_or_default();
        jobs::schedule(
            db,
            NewJob::new(CASE_SLA, format!("case-sla:{}", after.id), due, payload),
        )
        .await?;
    }
    Ok(())
}

/// A case whose SLA ran out is escalated: its priority goes up a level, `escalatedAt` is
/// set, and its owner is told.
async fn check_case_sla(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    let CaseRef { case_id } = job.payload()?;
    let Some(case) = case::Entity::find_by_id(case_id).one(txn).await? else {
        return Ok(Outcome::Done);
    };
    let Some(due) = sla_running(&case) else {
        return Ok(Outcome::Done);
    };
    let now = store::now();
    if due > now {
        return Ok(Outcome::RunAgainAt(due));
    }
    let escalated = store::update_versioned::<case::Entity, _>(
        txn,
        &case.id,
        case.version,
        case::ActiveModel {
            priority: Set(case.priority.raised()),
            escalated_at: Set(Some(now)),
            ..Default::default()
        },
    )
    .await?;
    if let Some(owner) = &escalated.owner_user_id {
        notify(
            txn,
            owner,
            NotificationKind::SlaBreached,
            format!("SLA breached: {}", escalated.subject),
            Some(format!(
                "The response was due {}; the case is escalated to {} priority.",
                due.format("%Y-%m-%d %H:%M UTC"),
                crm_service_common::domain::label(escalated.priority).to_lowercase()
            )),
            RecordKind::Case,
            &escalated.id,
        )
        .await?;
    }
    Ok(Outcome::Done)
}

/// After a case comment is written: the case's owner hears of a new comment by someone
/// else; the partner's user who opened a partner's case hears of our partner-visible
/// replies (never of internal comments).
pub async fn comment_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&case_comment::Model>,
    after: &case_comment::Model,
) -> ApiResult<()> {
    if before.is_some() {
        return Ok(());
    }
    let Some(case) = case::Entity::find_by_id(after.case_id.clone())
        .one(db)
        .await?
    else {
        return Ok(());
    };
    if let Some(owner) = &case.owner_user_id
        && after.author_user_id.as_ref() != Some(owner)
    {
        notify(
            db,
            owner,
            NotificationKind::CaseComment,
            format!("New comment on {}", case.subject),
            Some(preview(&after.body)),
            RecordKind::Case,
            &case.id,
        )
        .await?;
    }
    let our_reply = after.partner_visible && after.author_partner_id.is_none();
    if let (true, Some(opener)) = (our_reply, &case.opened_by_user_id) {
        notify(
            db,
            opener,
            NotificationKind::CaseReply,
            format!("Reply on your case: {}", case.subject),
            Some(preview(&after.body)),
            RecordKind::Case,
            &case.id,
        )
        .await?;
    }
    Ok(())
}

/// The first line of a text, at most 140 characters.
fn preview(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut cut: String = line.chars().take(140).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

/// After a task is written: tell an assignee someone else gave it to, and (re)schedule its
/// reminder.
pub async fn task_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&task::Model>,
    after: &task::Model,
) -> ApiResult<()> {
    let reassigned = before.is_none_or(|b| b.assignee_user_id != after.assignee_user_id);
    if reassigned && after.created_by_user_id.as_ref() != Some(&after.assignee_user_id) {
        notify(
            db,
            &after.assignee_user_id,
            NotificationKind::TaskAssigned,
            format!("Task for you: {}", after.title),
            after.notes.as_deref().map(preview),
            after.record_type,
            &after.record_id,
        )
        .await?;
    }
    let reminder = |t: &task::Model| {
        (t.archived_at.is_none() && t.completed_at.is_none() && t.reminded_at.is_none())
            .then_some(t.remind_at)
            .flatten()
    };
    let counts = |t: &task::Model| (t.completed_at, t.archived_at.is_some());
    if after.record_type == RecordKind::Lead && before.map(counts) != Some(counts(after)) {
        rescore_lead(db, &after.record_id).await?;
    }
    let at = reminder(after);
    if let Some(at) = at
        && before.map(reminder) != Some(Some(at))
    {
        let payload = serde_json::to_value(TaskRef {
            task_id: after.id.clone(),
        })
        .unwrap_or_default();
        jobs::schedule(
            db,
            NewJob::new(
                TASK_REMINDER,
                format!("task-reminder:{}", after.id),
                at,
                payload,
            ),
        )
        .await?;
    }
    Ok(())
}

/// Counts a lead's recent activity (tasks on it completed in the last
/// `LEAD_ACTIVITY_DAYS` days) and sets its score by the rules; when one of those tasks
/// will age out, schedules this again for then. Neither is an edit of the lead, so the
/// version stays (an open edit form must not turn into a conflict).
pub async fn rescore_lead<C: ConnectionTrait>(db: &C, lead_id: &str) -> ApiResult<()> {
    let Some(lead) = lead::Entity::find_by_id(lead_id.to_owned()).one(db).await? else {
        return Ok(());
    };
    let window = chrono::Duration::days(crate::domain::LEAD_ACTIVITY_DAYS);
    let since = store::now() - window;
    let completed: Vec<DateTime<Utc>> = task::Entity::find()
        .filter(Expr::col(task::Column::RecordType).eq(RecordKind::Lead))
        .filter(Expr::col(task::Column::RecordId).eq(lead_id))
        .filter(Expr::col(task::Column::ArchivedAt).is_null())
        .filter(Expr::col(task::Column::CompletedAt).gte(since))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|t| t.completed_at)
        .collect();
    // The same scoring as a lead's own write (`graphql::lead::rescore`), on the new count.
    let mut changes = sea_orm::IntoActiveModel::into_active_model(lead);
    store::set(
        &mut changes.recent_activities,
        i32::try_from(completed.len()).unwrap_or(i32::MAX),
    );
    crate::graphql::lead::rescore(&mut changes);
    if sea_orm::ActiveModelTrait::is_changed(&changes) {
        lead::Entity::update_many()
            .set(changes)
            .filter(Expr::col(lead::Column::Id).eq(lead_id))
            .exec(db)
            .await?;
    }
    if let Some(oldest) = completed.iter().min() {
        let payload = serde_json::to_value(LeadRef {
            lead_id: lead_id.to_owned(),
        })
        .unwrap_or_default();
        jobs::schedule(
            db,
            NewJob::new(
                LEAD_RESCORE,
                format!("lead-score:{lead_id}"),
                *oldest + window + chrono::Duration::seconds(1),
                payload,
            ),
        )
        .await?;
    }
    Ok(())
}

async fn rescore_lead_job(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    let LeadRef { lead_id } = job.payload()?;
    rescore_lead(txn, &lead_id).await?;
    Ok(Outcome::Done)
}

/// The account a record belongs to: an account itself, the account of a contact, an
/// opportunity or a case; none for a lead.
pub async fn account_of<C: ConnectionTrait>(
    db: &C,
    kind: RecordKind,
    id: &str,
) -> ApiResult<Option<String>> {
    let id = id.to_owned();
    Ok(match kind {
        RecordKind::Account => Some(id),
        RecordKind::Contact => contact::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|c| c.account_id),
        RecordKind::Opportunity => opportunity::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|o| o.account_id),
        RecordKind::Case => case::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|c| c.account_id),
        RecordKind::DealRegistration => deal_registration::Entity::find_by_id(id)
            .one(db)
            .await?
            .and_then(|r| r.account_id),
        RecordKind::Lead => None,
    })
}

/// Reminds a task's assignee, once, when its reminder time has come.
async fn remind_of_task(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    let TaskRef { task_id } = job.payload()?;
    let Some(task) = task::Entity::find_by_id(task_id).one(txn).await? else {
        return Ok(Outcome::Done);
    };
    if task.archived_at.is_some() || task.completed_at.is_some() || task.reminded_at.is_some() {
        return Ok(Outcome::Done);
    }
    let Some(at) = task.remind_at else {
        return Ok(Outcome::Done);
    };
    let now = store::now();
    if at > now {
        return Ok(Outcome::RunAgainAt(at));
    }
    // Marked without a version bump: a reminder going out is not an edit of the task, and
    // must not turn someone's open edit form into a conflict.
    task::Entity::update_many()
        .col_expr(task::Column::RemindedAt, Expr::val(Some(now)))
        .filter(Expr::col(task::Column::Id).eq(task.id.as_str()))
        .exec(txn)
        .await?;
    notify(
        txn,
        &task.assignee_user_id,
        NotificationKind::TaskReminder,
        format!(
            "Due {}: {}",
            task.due_at.format("%Y-%m-%d %H:%M UTC"),
            task.title
        ),
        task.notes.as_deref().map(preview),
        task.record_type,
        &task.record_id,
    )
    .await?;
    Ok(Outcome::Done)
}

/// Sends every user of the partner organisation `partner` one shared in-app notification
/// about a record (each sees it only while it may read that record; one marking it read
/// marks it for all, like a team inbox).
pub async fn notify_organisation<C: ConnectionTrait>(
    db: &C,
    partner: &str,
    kind: NotificationKind,
    title: String,
    body: Option<String>,
    record: RecordKind,
    record_id: &str,
) -> ApiResult<()> {
    let to = (String::new(), Some(partner.to_owned()));
    write_notification(db, to, kind, title, body, record, record_id).await
}

/// Sends `recipient` an in-app notification about a record (it sees it only while it may
/// read that record).
pub async fn notify<C: ConnectionTrait>(
    db: &C,
    recipient: &str,
    kind: NotificationKind,
    title: String,
    body: Option<String>,
    record: RecordKind,
    record_id: &str,
) -> ApiResult<()> {
    let to = (recipient.to_owned(), None);
    write_notification(db, to, kind, title, body, record, record_id).await
}

/// Writes one notification to `(user, organisation)`: a user (no organisation), or every
/// user of an organisation (no user).
async fn write_notification<C: ConnectionTrait>(
    db: &C,
    (user, organisation): (String, Option<String>),
    kind: NotificationKind,
    title: String,
    body: Option<String>,
    record: RecordKind,
    record_id: &str,
) -> ApiResult<()> {
    let title: String = title.chars().take(300).collect();
    let written = store::create::<notification::Entity, C>(db, None, |m, _| {
        m.recipient_user_id = Set(user.clone());
        m.recipient_partner_id = Set(organisation.clone());
        m.kind = Set(kind);
        m.title = Set(title.clone());
        m.body = Set(body.clone());
        m.record_type = Set(record);
        m.record_id = Set(record_id.to_owned());
        m.read_at = Set(None);
        Ok(())
    })
    .await?;
    // Subscribers (`notificationReceived`) hear of it; the event names it only.
    crm_service_common::events::outbox::append(
        db,
        vec![crm_service_common::events::NewEvent::new(
            NOTIFICATION_AGGREGATE,
            &written.id,
            "notification.written",
            serde_json::json!({}),
        )],
    )
    .await
}

/// The aggregate type of notifications' events.
pub const NOTIFICATION_AGGREGATE: &str = "Notification";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationRef {
    registration_id: String,
}

/// Schedules (or moves) the expiry of an approved registration's protection.
pub async fn schedule_registration_expiry<C: ConnectionTrait>(
    db: &C,
    registration_id: &str,
    until: DateTime<Utc>,
) -> ApiResult<()> {
    let payload = serde_json::to_value(RegistrationRef {
        registration_id: registration_id.to_owned(),
    })
    .unwrap_or_default();
    jobs::schedule(
        db,
        NewJob::new(
            REGISTRATION_EXPIRY,
            format!("registration-expiry:{registration_id}"),
            until,
            payload,
        ),
    )
    .await
}

/// When an approved registration's protection ends: unless its deal was won (or the
/// protection moved), it expires, and the opportunity is no longer attributed to the
/// partner (the partner stops seeing it). The submitter is told.
async fn expire_registration(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    use crate::domain::{OpportunityStage, RegistrationStatus};
    let RegistrationRef { registration_id } = job.payload()?;
    let Some(registration) = deal_registration::Entity::find_by_id(registration_id)
        .one(txn)
        .await?
    else {
        return Ok(Outcome::Done);
    };
    let (RegistrationStatus::Approved, Some(until)) =
        (registration.status, registration.protected_until)
    else {
        return Ok(Outcome::Done);
    };
    let now = store::now();
    if until > now {
        return Ok(Outcome::RunAgainAt(until));
    }
    if let Some(opportunity_id) = &registration.opportunity_id
        && let Some(o) = opportunity::Entity::find_by_id(opportunity_id.clone())
            .one(txn)
            .await?
    {
        if o.stage == OpportunityStage::ClosedWon {
            return Ok(Outcome::Done);
        }
        if o.registration_id.as_deref() == Some(registration.id.as_str()) {
            let after = store::update_versioned::<opportunity::Entity, _>(
                txn,
                &o.id,
                o.version,
                opportunity::ActiveModel {
                    partner_id: Set(None),
                    registration_id: Set(None),
                    protected_until: Set(None),
                    ..Default::default()
                },
            )
            .await?;
            store::publish::<opportunity::Entity, _>(txn, Some(&o), &after).await?;
        }
    }
    let after = store::update_versioned::<deal_registration::Entity, _>(
        txn,
        &registration.id,
        registration.version,
        deal_registration::ActiveModel {
            status: Set(RegistrationStatus::Expired),
            ..Default::default()
        },
    )
    .await?;
    store::publish::<deal_registration::Entity, _>(txn, Some(&registration), &after).await?;
    Ok(Outcome::Done)
}

/// Schedules (or moves) the end of a routed lead's time to be answered.
pub async fn schedule_lead_response<C: ConnectionTrait>(
    db: &C,
    lead_id: &str,
    respond_by: DateTime<Utc>,
) -> ApiResult<()> {
    let payload = serde_json::to_value(LeadRef {
        lead_id: lead_id.to_owned(),
    })
    .unwrap_or_default();
    jobs::schedule(
        db,
        NewJob::new(
            LEAD_RESPONSE,
            format!("lead-response:{lead_id}"),
            respond_by,
            payload,
        ),
    )
    .await
}

/// A routed lead nobody accepted in time returns to the pool, and its owner is told.
async fn return_unanswered_lead(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    let LeadRef { lead_id } = job.payload()?;
    let Some(lead) = lead::Entity::find_by_id(lead_id).one(txn).await? else {
        return Ok(Outcome::Done);
    };
    let (Some(_), None, Some(due)) = (&lead.routed_partner_id, lead.accepted_at, lead.respond_by)
    else {
        return Ok(Outcome::Done);
    };
    if due > store::now() {
        return Ok(Outcome::RunAgainAt(due));
    }
    let after = crate::graphql::lead::return_to_pool(
        txn,
        &lead.id,
        lead.version,
        format!(
            "The distributor did not answer within {} hours.",
            crate::domain::LEAD_RESPONSE_HOURS
        ),
    )
    .await?;
    crate::graphql::lead::notify_owner(
        txn,
        &after,
        NotificationKind::LeadDeclined,
        "did not answer",
    )
    .await?;
    Ok(Outcome::Done)
}
