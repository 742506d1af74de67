//! `CaseComment`: a note on a case, internal or marked for the partner whose case it is.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result};
use crm_service_common::access::unmasked;
use crm_service_common::connection_types;
use crm_service_common::domain::text;
use crm_service_common::principal::Principal;
use sea_orm::{EntityTrait, Select};

use super::case::Case;
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::entity::{case, case_comment};
use crate::store::set;

#[derive(Clone)]
pub struct CaseComment(pub case_comment::Model);

connection_types!(CaseCommentConnection, CaseCommentEdge, CaseComment);

record_object!(CaseComment {
    async fn case_id(&self) -> ID {
        ID(self.0.case_id.clone())
    }
    async fn case(&self, ctx: &Context<'_>) -> Result<Option<Case>> {
        Ok(load::<case::Entity>(ctx, &self.0.case_id).await?.map(Case))
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Whether the partner whose case it is reads it; otherwise it is internal.
    async fn partner_visible(&self) -> bool {
        self.0.partner_visible
    }
    /// Who wrote it. Partners read it only on their own organisation's comments (internal
    /// users' ids are not theirs to know; a read mask of the policy).
    async fn author_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let author = self.0.author_user_id.clone().map(ID);
        Ok(unmasked(ctx, &self.0, "authorUserId", author).await?.flatten())
    }
    /// The partner organisation whose user wrote it; null for the company's staff.
    async fn author_partner_id(&self) -> Option<ID> {
        self.0.author_partner_id.clone().map(ID)
    }
});

// A conversation reads oldest first.
ordering!(CaseCommentOrder, CaseCommentOrderField, case_comment, default = CreatedAt, {
    CreatedAt => CreatedAt.created_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct CaseCommentFilter {
    pub case_id: Option<ID>,
    pub partner_visible: Option<bool>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<case_comment::Entity> for CaseCommentFilter {
    fn select(self) -> Select<case_comment::Entity> {
        use case_comment::Column as C;
        let mut s = unarchived(case_comment::Entity::find(), self.include_archived);
        s = s.eq_if(C::CaseId, self.case_id.map(|v| v.0));
        s = s.eq_if(C::PartnerVisible, self.partner_visible);
        s
    }
}

/// Fields of a case comment. On create, `caseId` and `body` are required; a comment is
/// internal unless `partnerVisible` is true (a partner's own always are).
#[derive(InputObject, Default, Clone, Debug)]
pub struct CaseCommentInput {
    pub case_id: Option<ID>,
    pub body: Option<String>,
    /// Staff only: whether the partner whose case it is may read it.
    pub partner_visible: MaybeUndefined<bool>,
}

impl RecordInput<case_comment::Entity> for CaseCommentInput {
    fn apply(
        &self,
        m: &mut case_comment::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.caseId", &self.case_id)? {
            if !creating {
                return Err(crm_service_common::ApiError::validation(
                    "input.caseId",
                    "cannot change: a comment stays on its case",
                ));
            }
            set(&mut m.case_id, v.0.clone());
        }
        if let Some(v) = required(creating, "input.body", &self.body)? {
            set(&mut m.body, text("input.body", v, 20_000)?);
        }
        match &self.partner_visible {
            MaybeUndefined::Value(v) => set(&mut m.partner_visible, *v),
            _ if creating => set(&mut m.partner_visible, false),
            _ => {}
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let Some(id) = &self.case_id {
            ensure_exists::<case::Entity>(ctx, "input.caseId", id).await?;
        }
        Ok(())
    }

    /// The author is the writer, and so is its organisation; what a partner writes is
    /// partner-visible.
    fn stamp(&self, m: &mut case_comment::ActiveModel, who: &Principal, creating: bool) {
        if creating {
            set(&mut m.author_user_id, Some(who.subject.to_string()));
            set(&mut m.author_partner_id, who.partner().map(str::to_owned));
            if who.partner().is_some() {
                set(&mut m.partner_visible, true);
            }
        }
    }
}

pub(crate) async fn list_case_comments(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<CaseCommentFilter>,
    order_by: Option<CaseCommentOrder>,
) -> Result<CaseCommentConnection> {
    CaseCommentQuery
        .case_comments(ctx, first, after, filter, order_by)
        .await
}

record_operations!(
    CaseCommentQuery, CaseCommentMutation, CaseComment, case_comment, CaseCommentInput,
    list: case_comments(CaseCommentFilter, CaseCommentOrder) -> CaseCommentConnection, one: case_comment,
    mutations: create_case_comment, update_case_comment, upsert_case_comment, archive_case_comment
);
