//! This service's part of a data-subject export: its free text that mentions the person
//! (readers' feedback, articles and their revisions), on the federated `DataSubject`.

use async_graphql::Context;
use crm_service_common::ApiResult;
use crm_service_common::graphql::db;
use crm_service_common::privacy::{SubjectPart, Terms};
use sea_orm::{EntityTrait, QueryFilter};
use serde_json::json;

use crate::entity::{article, article_feedback, article_revision};

crm_service_common::data_subject_entity!(knowledge_base, mentions);
crm_service_common::erasure_progress_entity!(knowledge_base, crate::SERVICE);

async fn mentions(ctx: &Context<'_>, terms: &Terms) -> ApiResult<SubjectPart> {
    let db = db(ctx)?;
    let feedback = article_feedback::Entity::find()
        .filter(terms.mentioned_in(&[article_feedback::Column::Comment]))
        .into_json()
        .all(db)
        .await?;
    let articles = article::Entity::find()
        .filter(terms.mentioned_in(&[
            article::Column::Title,
            article::Column::Body,
            article::Column::PendingBody,
        ]))
        .into_json()
        .all(db)
        .await?;
    let revisions = article_revision::Entity::find()
        .filter(terms.mentioned_in(&[
            article_revision::Column::Body,
            article_revision::Column::ReviewComment,
        ]))
        .into_json()
        .all(db)
        .await?;
    Ok(SubjectPart {
        service: crate::SERVICE.to_owned(),
        records: (feedback.len() + articles.len() + revisions.len()) as i32,
        document: json!({ "feedback": feedback, "articles": articles, "revisions": revisions })
            .to_string(),
    })
}
