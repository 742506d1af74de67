//! `Interaction`: one touch point with an account on any channel.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result};
use chrono::{DateTime, Utc};
use crm_service_common::connection_types;
use crm_service_common::domain::{optional_text, text};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter, Select};

use super::account::Account;
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{Channel, Direction};
use crate::entity::{account, contact, interaction};
use crate::store::set;
use crm_service_common::access::unmasked;
use crm_service_common::principal::Principal;

#[derive(Clone)]
pub struct Interaction(pub interaction::Model);

connection_types!(InteractionConnection, InteractionEdge, Interaction);

record_object!(Interaction {
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.clone())
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(load::<account::Entity>(ctx, &self.0.account_id).await?.map(Account))
    }
    async fn contact_id(&self) -> Option<ID> {
        self.0.contact_id.clone().map(ID)
    }
    async fn channel(&self) -> Channel {
        self.0.channel
    }
    async fn direction(&self) -> Direction {
        self.0.direction
    }
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// For partners, only on partner-visible interactions (a read mask of the policy).
    async fn body(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(unmasked(ctx, &self.0, "body", self.0.body.as_deref()).await?.flatten())
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// Who wrote it. Partners read it only for their own organisation's interactions
    /// (internal users' ids are not theirs to know; a read mask of the policy).
    async fn author_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let author = self.0.author_user_id.clone().map(ID);
        Ok(unmasked(ctx, &self.0, "authorUserId", author).await?.flatten())
    }
    /// Whether partners who can see the account may read this interaction.
    async fn partner_visible(&self) -> bool {
        self.0.partner_visible
    }
});

// A timeline reads newest first.
ordering!(InteractionOrder, InteractionOrderField, interaction, default = OccurredAt Desc, {
    OccurredAt => OccurredAt.occurred_at: Time,
    CreatedAt => CreatedAt.created_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct InteractionFilter {
    /// Matches the subject, case-insensitively.
    pub text: Option<String>,
    pub account_id: Option<ID>,
    pub contact_id: Option<ID>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub partner_visible: Option<bool>,
    pub occurred_after: Option<DateTime<Utc>>,
    pub occurred_before: Option<DateTime<Utc>>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<interaction::Entity> for InteractionFilter {
    fn select(self) -> Select<interaction::Entity> {
        use interaction::Column as C;
        let mut s = unarchived(interaction::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Subject]);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s = s.eq_if(C::ContactId, self.contact_id.map(|v| v.0));
        s = s.eq_if(C::Channel, self.channel);
        s = s.eq_if(C::Direction, self.direction);
        s = s.eq_if(C::PartnerVisible, self.partner_visible);
        if let Some(v) = self.occurred_after {
            s = s.filter(Expr::col(C::OccurredAt).gte(v));
        }
        if let Some(v) = self.occurred_before {
            s = s.filter(Expr::col(C::OccurredAt).lt(v));
        }
        s
    }
}

/// Fields of an interaction. On create, `accountId`, `channel`, `direction`, `subject` and
/// `occurredAt` are required.
#[derive(InputObject, Default, Clone, Debug)]
pub struct InteractionInput {
    pub account_id: Option<ID>,
    pub contact_id: MaybeUndefined<ID>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub subject: Option<String>,
    pub body: MaybeUndefined<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    /// Staff only: whether partners who see the account may read it. A partner's own
    /// interactions are always partner-visible.
    pub partner_visible: Option<bool>,
}

impl RecordInput<interaction::Entity> for InteractionInput {
    fn apply(
        &self,
        m: &mut interaction::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.accountId", &self.account_id)? {
            set(&mut m.account_id, v.0.clone());
        }
        optional(&mut m.contact_id, &self.contact_id, |v| Ok(v.0.clone()))?;
        if let Some(v) = required(creating, "input.channel", &self.channel)? {
            set(&mut m.channel, *v);
        }
        if let Some(v) = required(creating, "input.direction", &self.direction)? {
            set(&mut m.direction, *v);
        }
        if let Some(v) = required(creating, "input.subject", &self.subject)? {
            set(&mut m.subject, text("input.subject", v, 300)?);
        }
        optional(&mut m.body, &self.body, |v| {
            optional_text("input.body", Some(v), 50_000).map(Option::unwrap_or_default)
        })?;
        if let Some(v) = required(creating, "input.occurredAt", &self.occurred_at)? {
            set(&mut m.occurred_at, *v);
        }
        match self.partner_visible {
            Some(v) => set(&mut m.partner_visible, v),
            None if creating => set(&mut m.partner_visible, false),
            None => {}
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let Some(id) = &self.account_id {
            ensure_exists::<account::Entity>(ctx, "input.accountId", id).await?;
        }
        if let MaybeUndefined::Value(id) = &self.contact_id {
            ensure_exists::<contact::Entity>(ctx, "input.contactId", id).await?;
        }
        Ok(())
    }

    /// The author is the writer, and so is the author's organisation; what a partner
    /// writes, its partners may read.
    fn stamp(&self, m: &mut interaction::ActiveModel, who: &Principal, creating: bool) {
        if creating {
            set(&mut m.author_user_id, Some(who.subject.to_string()));
            set(&mut m.author_partner_id, who.partner().map(str::to_owned));
            if who.partner().is_some() {
                set(&mut m.partner_visible, true);
            }
        }
    }
}

pub(crate) async fn list_interactions(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<InteractionFilter>,
    order_by: Option<InteractionOrder>,
) -> Result<InteractionConnection> {
    InteractionQuery
        .interactions(ctx, first, after, filter, order_by)
        .await
}

record_operations!(
    InteractionQuery, InteractionMutation, Interaction, interaction, InteractionInput,
    list: interactions(InteractionFilter, InteractionOrder) -> InteractionConnection, one: interaction,
    mutations: create_interaction, update_interaction, upsert_interaction, archive_interaction
);
