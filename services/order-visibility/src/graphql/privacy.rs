//! This service's part of a data-subject export: its free text that mentions the person
//! (orders' internal notes, shipment events' notes), on the federated `DataSubject`.

use async_graphql::Context;
use crm_service_common::ApiResult;
use crm_service_common::graphql::db;
use crm_service_common::privacy::{SubjectPart, Terms};
use sea_orm::{EntityTrait, QueryFilter};
use serde_json::json;

use crate::entity::{order, shipment_event};

crm_service_common::data_subject_entity!(order_visibility, mentions);
crm_service_common::erasure_progress_entity!(order_visibility, crate::SERVICE);

async fn mentions(ctx: &Context<'_>, terms: &Terms) -> ApiResult<SubjectPart> {
    let db = db(ctx)?;
    let orders = order::Entity::find()
        .filter(terms.mentioned_in(&[order::Column::InternalNote]))
        .into_json()
        .all(db)
        .await?;
    let events = shipment_event::Entity::find()
        .filter(terms.mentioned_in(&[shipment_event::Column::Note]))
        .into_json()
        .all(db)
        .await?;
    Ok(SubjectPart {
        service: crate::SERVICE.to_owned(),
        records: (orders.len() + events.len()) as i32,
        document: json!({ "orders": orders, "shipmentEvents": events }).to_string(),
    })
}
