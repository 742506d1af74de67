use sea_orm::entity::prelude::*;

/// A territory of the account service that is not archived, kept from `territory.changed`:
/// the demand view's grid has a column for each (readers of the view read every
/// territory).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "demand_territories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub territory_id: String,
    pub code: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
