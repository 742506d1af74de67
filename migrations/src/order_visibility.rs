//! The order-visibility service's tables. Account and partner ids are references to
//! records of the account service: plain text columns, never foreign keys.

use sea_orm_migration::prelude::*;

use crate::util::{index, long_text_null, record_table, run_sql, text, text_null, timestamp_null};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOrderTables),
            Box::new(crate::events::CreateEventTables),
            Box::new(LineScopeIndexes),
            Box::new(crate::util::NamespacedExternalIds {
                name: "m20261205_000001_order_external_namespaces",
                tables: &["products", "orders", "order_lines", "shipments"],
            }),
            Box::new(LineExpectedDate),
            Box::new(DemandReplica),
            Box::new(crate::audit::CreateAuditTables),
            Box::new(crate::util::TextSearchIndexes {
                name: "m20261210_000002_order_text_search",
                columns: &[
                    ("orders", "number"),
                    ("products", "sku"),
                    ("products", "name"),
                ],
            }),
            Box::new(crate::audit::AuditLogIndexes),
            Box::new(crate::erasure::CreateErasureTables),
            Box::new(crate::audit::AuditRetention),
            Box::new(crate::audit::AuditSealQueue),
            Box::new(OrderSuppliers),
            Box::new(crate::audit::AuditDropGlobalChainIndex),
        ]
    }
}

struct CreateOrderTables;

impl MigrationName for CreateOrderTables {
    fn name(&self) -> &str {
        "m20261123_000001_order_visibility_tables"
    }
}

fn big(name: &str) -> ColumnDef {
    ColumnDef::new(name.to_owned())
        .big_integer()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOrderTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            record_table("products")
                .col(text("sku", 64))
                .col(text("name", 200))
                .col(long_text_null("description"))
                .col(text("supplier_partner_id", 64))
                .col(big("unit_price_minor"))
                .col(text("currency", 3))
                .to_owned(),
        )
        .await?;
        index(m, "products", &["sku"], true).await?;
        index(m, "products", &["supplier_partner_id"], false).await?;
        index(m, "products", &["name"], false).await?;

        m.create_table(
            record_table("orders")
                .col(text("number", 32))
                .col(text("account_id", 64))
                .col(text("status", 16))
                .col(timestamp_null("placed_at"))
                .col(text("currency", 3))
                .col(big("total_minor"))
                .col(text_null("fulfilling_distributor_id", 64))
                .col(long_text_null("internal_note"))
                .to_owned(),
        )
        .await?;
        index(m, "orders", &["number"], true).await?;
        index(m, "orders", &["account_id"], false).await?;
        index(m, "orders", &["fulfilling_distributor_id"], false).await?;
        index(m, "orders", &["status"], false).await?;
        index(m, "orders", &["created_at"], false).await?;

        m.create_table(
            record_table("order_lines")
                .col(text("order_id", 64))
                .col(ColumnDef::new("line_number").integer().null())
                .col(text("product_id", 64))
                .col(ColumnDef::new("quantity").integer().not_null())
                .col(big("unit_price_minor"))
                .col(text("currency", 3))
                .col(text("status", 16))
                .to_owned(),
        )
        .await?;
        index(m, "order_lines", &["order_id"], false).await?;
        index(m, "order_lines", &["product_id"], false).await?;

        m.create_table(
            record_table("shipments")
                .col(text("order_id", 64))
                .col(text("carrier", 100))
                .col(text_null("tracking_number", 100))
                .col(text("status", 16))
                .col(timestamp_null("shipped_at"))
                .col(timestamp_null("delivered_at"))
                .to_owned(),
        )
        .await?;
        index(m, "shipments", &["order_id"], false).await?;
        index(m, "shipments", &["tracking_number"], false).await?;

        m.create_table(
            Table::create()
                .table("shipment_events")
                .if_not_exists()
                .col(ColumnDef::new("id").string_len(64).not_null().primary_key())
                .col(text("shipment_id", 64))
                .col(text("status", 16))
                .col(
                    ColumnDef::new("occurred_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(text_null("location", 200))
                .col(text_null("note", 1000))
                .col(
                    ColumnDef::new("recorded_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        index(m, "shipment_events", &["shipment_id", "occurred_at"], false).await?;
        Ok(())
    }
}

/// Lines in force, covered in both directions: an order's lines with their products (the
/// supplier probe while a page walks orders by date) and a product's orders (the
/// supplier-first plan). A supplier's products by id, so the probe's product check reads
/// the index only. Statistics are finer on the skewed columns (one supplier holds 10% of
/// the lines, most under 0.1%).
struct LineScopeIndexes;

impl MigrationName for LineScopeIndexes {
    fn name(&self) -> &str {
        "m20261129_000002_line_scope_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LineScopeIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run_sql(
            m,
            &[
                "CREATE INDEX IF NOT EXISTS idx_order_lines_order_product_in_force \
                 ON order_lines (order_id, product_id) WHERE archived_at IS NULL",
                "CREATE INDEX IF NOT EXISTS idx_order_lines_product_order_in_force \
                 ON order_lines (product_id, order_id) WHERE archived_at IS NULL",
                "CREATE INDEX IF NOT EXISTS idx_products_supplier_id \
                 ON products (supplier_partner_id, id)",
            ],
            &[
                "ALTER TABLE order_lines ALTER COLUMN product_id SET STATISTICS 1000",
                "ALTER TABLE products ALTER COLUMN supplier_partner_id SET STATISTICS 1000",
            ],
        )
        .await
    }
}

/// When a line is expected to ship: the supplier's answer when it confirms or backorders.
struct LineExpectedDate;

impl MigrationName for LineExpectedDate {
    fn name(&self) -> &str {
        "m20261207_000108_line_expected_date"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LineExpectedDate {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("order_lines")
                .add_column(ColumnDef::new("expected_date").date().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("order_lines")
                .drop_column("expected_date")
                .to_owned(),
        )
        .await
    }
}

/// What the demand view reads from the account service, kept from its events: where each
/// account is, and the product lines of open opportunities (never read one by one here).
struct DemandReplica;

impl MigrationName for DemandReplica {
    fn name(&self) -> &str {
        "m20261208_000111_demand_replica"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DemandReplica {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("demand_territories")
                .if_not_exists()
                .col(text("territory_id", 64).primary_key())
                .col(text("code", 64))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("account_territories")
                .if_not_exists()
                .col(text("account_id", 64).primary_key())
                .col(text_null("territory_id", 64))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("expected_demand")
                .if_not_exists()
                .col(text("opportunity_id", 64))
                .col(text("product_id", 64))
                .col(text("account_id", 64))
                .col(ColumnDef::new("quantity").integer().not_null())
                .col(ColumnDef::new("probability").integer().not_null())
                .col(ColumnDef::new("expected_close").date().not_null())
                .primary_key(Index::create().col("opportunity_id").col("product_id"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "expected_demand",
            &["product_id", "expected_close"],
            false,
        )
        .await?;
        index(m, "order_lines", &["product_id", "status"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("expected_demand").to_owned())
            .await?;
        m.drop_table(Table::drop().table("account_territories").to_owned())
            .await?;
        m.drop_table(Table::drop().table("demand_territories").to_owned())
            .await
    }
}

/// One row per (supplier, order) with a line of the supplier's products not archived, the
/// order's creation time copied: a supplier's first page of orders, newest first, walks its
/// rows here and stops after a page. Walking the orders and probing their lines cost
/// ~page ÷ density probes (the smallest supplier holds 0.2 % of the orders), and reading its
/// scope by id fetched every order to sort 50 (4,038 rows, 33 ms at scale 1).
pub mod order_suppliers {
    use sea_orm_migration::prelude::*;

    pub const TABLE: &str = "order_suppliers";

    /// The table's columns, in order.
    pub fn columns() -> [Alias; 3] {
        [
            Alias::new("supplier_id"),
            Alias::new("order_id"),
            Alias::new("order_created_at"),
        ]
    }

    /// The rows the lines not archived of the orders `orders` selects imply (a condition on
    /// an unqualified `order_id`, which the lines name and products and orders do not), in
    /// the order of [`columns`].
    pub fn derived(orders: Condition) -> SelectStatement {
        let (lines, products, order) = (Alias::new("l"), Alias::new("p"), Alias::new("o"));
        Query::select()
            .distinct()
            .column((products.clone(), Alias::new("supplier_partner_id")))
            .column((lines.clone(), Alias::new("order_id")))
            .column((order.clone(), Alias::new("created_at")))
            .from_as(Alias::new("order_lines"), lines.clone())
            .join_as(
                JoinType::InnerJoin,
                Alias::new("products"),
                products.clone(),
                Expr::col((products.clone(), Alias::new("id")))
                    .equals((lines.clone(), Alias::new("product_id"))),
            )
            .join_as(
                JoinType::InnerJoin,
                Alias::new("orders"),
                order.clone(),
                Expr::col((order.clone(), Alias::new("id")))
                    .equals((lines.clone(), Alias::new("order_id"))),
            )
            .and_where(Expr::col((lines.clone(), Alias::new("archived_at"))).is_null())
            .cond_where(orders)
            .to_owned()
    }

    /// The rows kept, in the order of [`columns`].
    pub fn kept() -> SelectStatement {
        Query::select()
            .columns(columns())
            .from(Alias::new(TABLE))
            .to_owned()
    }

    /// The statements that make the rows of the orders `orders` selects equal to
    /// [`derived`]: delete them, then insert them.
    pub fn refresh(orders: Condition) -> (DeleteStatement, InsertStatement) {
        let delete = Query::delete()
            .from_table(Alias::new(TABLE))
            .cond_where(orders.clone())
            .to_owned();
        let insert = Query::insert()
            .into_table(Alias::new(TABLE))
            .columns(columns())
            .select_from(derived(orders))
            .expect("the select names as many columns as the insert")
            .on_conflict(
                OnConflict::columns([Alias::new("supplier_id"), Alias::new("order_id")])
                    .update_column(Alias::new("order_created_at"))
                    .to_owned(),
            )
            .to_owned();
        (delete, insert)
    }
}

/// The table [`order_suppliers`] describes, filled from the lines already kept; and a
/// distributor's orders in creation order (its scope is a column of the order, so the
/// walk needs only the index).
struct OrderSuppliers;

impl MigrationName for OrderSuppliers {
    fn name(&self) -> &str {
        "m20261215_000002_order_suppliers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OrderSuppliers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(order_suppliers::TABLE)
                .if_not_exists()
                .col(text("supplier_id", 64))
                .col(text("order_id", 64))
                .col(
                    ColumnDef::new("order_created_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(Index::create().col("supplier_id").col("order_id"))
                .to_owned(),
        )
        .await?;
        run_sql(
            m,
            &[
                "CREATE INDEX IF NOT EXISTS idx_order_suppliers_walk \
                 ON order_suppliers (supplier_id, order_created_at, order_id)",
                "CREATE INDEX IF NOT EXISTS idx_order_suppliers_order \
                 ON order_suppliers (order_id)",
                "CREATE INDEX IF NOT EXISTS idx_orders_distributor_walk \
                 ON orders (fulfilling_distributor_id, created_at, id)",
            ],
            &["ALTER TABLE order_suppliers ALTER COLUMN supplier_id SET STATISTICS 1000"],
        )
        .await?;
        crate::util::fill(m, order_suppliers::refresh(Condition::all())).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run_sql(
            m,
            &["DROP INDEX IF EXISTS idx_orders_distributor_walk"],
            &[],
        )
        .await?;
        m.drop_table(
            Table::drop()
                .table(order_suppliers::TABLE)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
