//! `Product`: what a supplier supplies, with its list price. A federation entity: the
//! knowledge base links articles to products.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use crm_service_common::connection_types;
use crm_service_common::domain::{optional_text, text};
use crm_service_common::import::Importable;
use crm_service_common::import_operation;
use sea_orm::{EntityTrait, Select};

use super::references::Partner;
use super::{
    FilterExt, MoneyAmount, RecordFilter, RecordInput, apply_price, load, optional, ordering,
    record_object, record_operations, required, unarchived,
};
use crate::domain::{reference, sku};
use crate::entity::product;
use crate::store::set;

#[derive(Clone)]
pub struct Product(pub product::Model);

connection_types!(ProductConnection, ProductEdge, Product);

record_object!(Product {
    /// The stock-keeping unit, unique.
    async fn sku(&self) -> &str {
        &self.0.sku
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn supplier_partner_id(&self) -> ID {
        ID(self.0.supplier_partner_id.clone())
    }
    /// The supplier (a partner of the account service).
    /// Null when the caller may not read that partner (partners read only their own).
    async fn supplier(&self) -> Option<Partner> {
        Some(Partner { id: ID(self.0.supplier_partner_id.clone()) })
    }
    /// The list price of one unit.
    async fn unit_price(&self) -> MoneyAmount {
        MoneyAmount::new(self.0.unit_price_minor, &self.0.currency)
    }
});

ordering!(ProductOrder, ProductOrderField, product, default = Name, {
    Name => Name.name: Text,
    Sku => Sku.sku: Text,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct ProductFilter {
    /// Matches the SKU or name, case-insensitively.
    pub text: Option<String>,
    pub supplier_partner_id: Option<ID>,
    pub sku: Option<String>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<product::Entity> for ProductFilter {
    fn select(self) -> Select<product::Entity> {
        use product::Column as C;
        let mut s = unarchived(product::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Sku, C::Name]);
        s = s.eq_if(C::SupplierPartnerId, self.supplier_partner_id.map(|v| v.0));
        s = s.eq_if(C::Sku, self.sku.map(|v| v.trim().to_ascii_uppercase()));
        s
    }
}

/// Fields of a product. On create, `sku`, `name`, `supplierPartnerId`, `unitPrice` and
/// `currency` are required.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ProductInput {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: MaybeUndefined<String>,
    pub supplier_partner_id: Option<ID>,
    /// A decimal string, e.g. `"12.50"`, in `currency`.
    pub unit_price: Option<String>,
    pub currency: Option<String>,
}

impl RecordInput<product::Entity> for ProductInput {
    fn apply(
        &self,
        m: &mut product::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.sku", &self.sku)? {
            set(&mut m.sku, sku("input.sku", v)?);
        }
        if let Some(v) = required(creating, "input.name", &self.name)? {
            set(&mut m.name, text("input.name", v, 200)?);
        }
        optional(&mut m.description, &self.description, |v| {
            optional_text("input.description", Some(v), 20_000).map(Option::unwrap_or_default)
        })?;
        if let Some(v) = required(
            creating,
            "input.supplierPartnerId",
            &self.supplier_partner_id,
        )? {
            set(
                &mut m.supplier_partner_id,
                reference("input.supplierPartnerId", v)?,
            );
        }
        apply_price(
            &mut m.currency,
            &mut m.unit_price_minor,
            &self.currency,
            &self.unit_price,
            creating,
        )?;
        Ok(())
    }

    async fn check_references(&self, _ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        Ok(())
    }
}

#[derive(Default)]
pub struct ProductEntityQuery;

#[Object]
impl ProductEntityQuery {
    /// Federation entity look-up; a batch of keys is loaded with one query.
    #[graphql(entity)]
    async fn find_product_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        Ok(load::<product::Entity>(ctx, &id).await?.map(Product))
    }
}

pub(crate) async fn list_products(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<ProductFilter>,
    order_by: Option<ProductOrder>,
) -> Result<ProductConnection> {
    ProductQuery
        .products(ctx, first, after, filter, order_by)
        .await
}

/// Products have no look-alike check: a SKU is unique, and a second product with one is
/// refused as a duplicate.
impl Importable<product::Entity> for ProductInput {}

import_operation!(
    ProductImportMutation,
    product,
    ProductInput,
    ProductImportRow,
    import_products
);

record_operations!(
    ProductQuery, ProductMutation, Product, product, ProductInput,
    list: products(ProductFilter, ProductOrder) -> ProductConnection, one: product,
    mutations: create_product, update_product, upsert_product, archive_product
);
