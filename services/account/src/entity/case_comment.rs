use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "case_comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    /// The organisation that wrote `external_id` (a partner id; empty: the company).
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    pub case_id: String,
    pub body: String,
    /// Whether the partner whose case it is may read it (a partner's own always are).
    pub partner_visible: bool,
    pub author_user_id: Option<String>,
    /// The partner whose user wrote it; none for the company's staff.
    pub author_partner_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
