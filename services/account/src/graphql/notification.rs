//! `Notification`: an in-app message to one user, or to every user of a partner
//! organisation, about a record (a task's reminder, a breached SLA, a comment on a case it
//! handles, a lead routed to the organisation). The system writes them (jobs and writes); a
//! user reads its own and its organisation's, and only while it may read the record they
//! are about.

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Action, Scoped};
use crm_service_common::connection_types;
use crm_service_common::principal::Principal;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, Select};

use super::{RecordFilter, db, ordering, record_object, unarchived};
use crate::domain::{NotificationKind, RecordKind};
use crate::entity::notification;
use crate::store::now;

#[derive(Clone)]
pub struct Notification(pub notification::Model);

connection_types!(NotificationConnection, NotificationEdge, Notification);

record_object!(Notification {
    async fn kind(&self) -> NotificationKind {
        self.0.kind
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }
    /// The kind of record it is about.
    async fn record_type(&self) -> RecordKind {
        self.0.record_type
    }
    async fn record_id(&self) -> ID {
        ID(self.0.record_id.clone())
    }
    /// The partner organisation it is for, when it is for all of its users rather than one.
    async fn recipient_partner_id(&self) -> Option<ID> {
        self.0.recipient_partner_id.clone().map(ID)
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
});

// Newest first.
ordering!(NotificationOrder, NotificationOrderField, notification, default = CreatedAt Desc, {
    CreatedAt => CreatedAt.created_at: Time,
});

/// Which of your notifications to list.
#[derive(async_graphql::InputObject, Default, Clone, Debug)]
pub struct NotificationFilter {
    /// Only those not read yet.
    #[graphql(default)]
    pub unread_only: bool,
    /// Archived ones too (none is archived today: kept for the lists' common shape).
    #[graphql(default)]
    pub include_archived: bool,
}

/// The notifications addressed to `who`: its own, and its organisation's shared ones.
pub fn addressed_to(who: &Principal) -> sea_orm::sea_query::SimpleExpr {
    addressed_to_user(who.subject.as_str(), who.partner())
}

fn addressed_to_user(user: &str, partner: Option<&str>) -> sea_orm::sea_query::SimpleExpr {
    use notification::Column as C;
    let own = Expr::col(C::RecipientUserId).eq(user);
    match partner {
        Some(partner) => own.or(Expr::col(C::RecipientUserId)
            .eq("")
            .and(Expr::col(C::RecipientPartnerId).eq(partner))),
        None => own,
    }
}

/// The caller's own notifications and its organisation's (always: nobody lists another
/// user's).
#[derive(Default)]
struct Mine {
    me: String,
    organisation: Option<String>,
    unread_only: bool,
    include_archived: bool,
}

impl RecordFilter<notification::Entity> for Mine {
    fn select(self) -> Select<notification::Entity> {
        use notification::Column as C;
        let mut s = unarchived(notification::Entity::find(), self.include_archived);
        s = s.filter(addressed_to_user(&self.me, self.organisation.as_deref()));
        if self.unread_only {
            s = s.filter(Expr::col(C::ReadAt).is_null());
        }
        s
    }
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// One of your notifications (or your organisation's); null when it is not, or when
    /// you may no longer read the record it is about.
    async fn notification(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Notification>> {
        // Like the list: the caller's own and its organisation's only, whatever else the
        // policy lets its role read (an admin lists nobody else's either).
        let found = notification::Entity::find_by_id(id.to_string())
            .filter(addressed_to(&Principal::of(ctx)))
            .filter(access::visible_in::<notification::Entity>(ctx, Action::Read).await?)
            .one(db(ctx)?)
            .await?;
        Ok(found.map(Notification))
    }

    /// Your notifications, newest first (`first` ≤ 200, default 50).
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<NotificationFilter>,
    ) -> Result<NotificationConnection> {
        let who = Principal::of(ctx);
        let filter = filter.unwrap_or_default();
        let mine = Mine {
            me: who.subject.to_string(),
            organisation: who.partner().map(str::to_owned),
            unread_only: filter.unread_only,
            include_archived: filter.include_archived,
        };
        let ordering = NotificationOrder::ordering(None);
        Ok(mine
            .page(ctx, ordering, false, first, after)
            .await?
            .map(Notification)
            .into())
    }

    /// How many of your notifications are unread (the header's badge).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let who = Principal::of(ctx);
        let mine = Mine {
            me: who.subject.to_string(),
            organisation: who.partner().map(str::to_owned),
            unread_only: true,
            include_archived: false,
        };
        let visible = access::visible_in::<notification::Entity>(ctx, Action::Read).await?;
        Ok(mine.select().filter(visible).count(db(ctx)?).await?)
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks your notifications read: those named by `ids`, or all of them when `ids` is
    /// left out. Returns how many changed. Ids of notifications that are not yours (or do
    /// not exist) change nothing, exactly alike.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
    ) -> Result<u64> {
        use notification::Column as C;
        let ty = <notification::Entity as Scoped>::POLICY_TYPE;
        access::check_may(ctx, ty, Action::Update).await?;
        let who = Principal::of(ctx);
        let mut update = notification::Entity::update_many()
            .col_expr(C::ReadAt, Expr::val(Some(now())))
            .filter(addressed_to(&who))
            .filter(Expr::col(C::ReadAt).is_null())
            .filter(access::visible_in::<notification::Entity>(ctx, Action::Update).await?);
        if let Some(ids) = ids {
            if ids.len() > 500 {
                return Err(crm_service_common::ApiError::validation(
                    "ids",
                    "names more than 500 notifications",
                )
                .into());
            }
            update = update.filter(Expr::col(C::Id).is_in(ids.into_iter().map(|id| id.0)));
        }
        Ok(update.exec(db(ctx)?).await?.rows_affected)
    }
}
