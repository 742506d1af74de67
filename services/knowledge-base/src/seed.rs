//! The knowledge-base part of the deterministic demo world: articles for every audience
//! and in every editorial status, linked to the seeded products.

use chrono::Duration;
use crm_service_common::seed::{World, epoch, insert_all};
use rand::Rng;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, TransactionTrait};

use crate::domain::{ArticleStatus, Audience, encode_set};
use crate::entity::*;
use crate::store::Record;
use crm_service_common::domain::PartnerTier;

/// A seeded product, as the order-visibility seed reports it.
#[derive(Clone, Debug)]
pub struct ProductRef {
    pub id: String,
    pub name: String,
    pub sku: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedSummary {
    pub articles: usize,
}

/// General articles: title, audiences, tags, body.
const GENERAL: &[(&str, &[Audience], &[&str], &str)] = &[
    (
        "Warranty terms",
        &[Audience::Public],
        &["warranty", "policy"],
        "# Warranty terms\n\nEvery product carries a **24-month warranty** from delivery. Claims go through your account manager or the partner portal.",
    ),
    (
        "Returns and refunds",
        &[Audience::Public, Audience::Distributor],
        &["returns", "policy"],
        "# Returns and refunds\n\nGoods can be returned within 30 days. Open a case with the order number and the shipment's tracking number.",
    ),
    (
        "Supplier onboarding checklist",
        &[Audience::Supplier],
        &["onboarding", "supplier"],
        "# Supplier onboarding\n\n1. Confirm your product catalogue and SKUs.\n2. Confirm order lines within two working days.\n3. Keep datasheets current in the knowledge base.",
    ),
    (
        "Confirming and backordering order lines",
        &[Audience::Supplier],
        &["orders", "supplier"],
        "# Confirming order lines\n\nIn the partner portal, open an order line and choose **Confirm** or **Backorder**. A backordered line needs an expected date.",
    ),
    (
        "Updating shipment status",
        &[Audience::Distributor],
        &["shipments", "distributor"],
        "# Updating shipment status\n\nRecord each carrier scan: in transit, out for delivery, delivered. Exceptions need a note for the support team.",
    ),
    (
        "Territory coverage rules",
        &[Audience::Distributor, Audience::Internal],
        &["territory", "distributor"],
        "# Territory coverage\n\nA distributor sees accounts in the territories it covers and the accounts whose orders it fulfils.",
    ),
    (
        "Discount approval process",
        &[Audience::Internal],
        &["pricing", "sales"],
        "# Discount approval\n\nDiscounts above 15% need management approval. Record the reason on the opportunity.",
    ),
    (
        "Escalating a critical case",
        &[Audience::Internal],
        &["support", "sla"],
        "# Escalation\n\nCritical cases breach their SLA after four hours. Escalate to the duty manager and inform the account owner.",
    ),
];

/// Per-product articles: title template, audiences, tags, body template (`{name}`, `{sku}`).
pub const PER_PRODUCT: &[(&str, &[Audience], &[&str], &str)] = &[
    (
        "Installing the {name}",
        &[Audience::Public, Audience::Distributor],
        &["installation", "setup"],
        "# Installing the {name}\n\nSKU `{sku}`. Mount the {name} on a level surface, connect power last, and run the self-test before first use.",
    ),
    (
        "{name}: troubleshooting",
        &[
            Audience::Internal,
            Audience::Distributor,
            Audience::Supplier,
        ],
        &["troubleshooting"],
        "# Troubleshooting the {name}\n\nIf the {name} does not start, check the fuse and the firmware version. Reset: hold the button for ten seconds.",
    ),
    (
        "{name} firmware notes",
        &[Audience::Supplier, Audience::Internal],
        &["firmware"],
        "# Firmware for the {name}\n\nRelease notes for SKU `{sku}`. Update through the service port; do not power off during the update.",
    ),
];

/// Articles for the upper partner tiers only: title, audiences, tiers, tags, body
/// (published, after every other article).
type TieredSpec = (
    &'static str,
    &'static [Audience],
    &'static [PartnerTier],
    &'static [&'static str],
    &'static str,
);

const TIERED: &[TieredSpec] = &[(
    "Market development funds for Gold and Platinum partners",
    &[Audience::Supplier, Audience::Distributor],
    &[PartnerTier::Platinum, PartnerTier::Gold],
    &["programme", "marketing"],
    "# Market development funds\n\nGold and Platinum partners may claim up to 5% of last year's sales for joint campaigns. Submit the campaign plan before spending.",
)];

/// Statuses in rotation, mostly published.
const STATUSES: &[ArticleStatus] = &[
    ArticleStatus::Published,
    ArticleStatus::Published,
    ArticleStatus::Draft,
    ArticleStatus::Published,
    ArticleStatus::Review,
    ArticleStatus::Published,
    ArticleStatus::Archived,
    ArticleStatus::Published,
];

pub async fn is_seeded(db: &DatabaseConnection) -> anyhow::Result<bool> {
    Ok(article::Entity::find().count(db).await? > 0)
}

pub async fn seed(
    db: &DatabaseConnection,
    seed: u64,
    products: &[ProductRef],
) -> anyhow::Result<SeedSummary> {
    let mut w = World::new(seed ^ 0x0_0cb5);
    let mut articles = Vec::new();
    let mut push = |w: &mut World,
                    title: String,
                    audiences: &[Audience],
                    tags: &[&str],
                    body: String,
                    product_ids: Vec<String>,
                    tiers: &[PartnerTier]| {
        let status = if tiers.is_empty() {
            STATUSES[articles.len() % STATUSES.len()]
        } else {
            ArticleStatus::Published
        };
        let created = epoch() + Duration::days(w.rng.random_range(0..200));
        let (id, _, version, created_at, _, archived_at) = w.columns("art", created);
        let updated = created + Duration::days(w.rng.random_range(0..30));
        articles.push(article::Model {
            id: id.unwrap(),
            external_id: None,
            external_namespace: String::new(),
            version: version.unwrap(),
            created_at: created_at.unwrap(),
            updated_at: updated,
            archived_at: archived_at.unwrap(),
            title,
            body,
            audiences: encode_set(
                audiences
                    .iter()
                    .map(|a| crm_service_common::domain::label(*a)),
            ),
            status,
            // The demo's history starts with the words it has (no earlier text exists).
            revision: 1,
            last_revision: 1,
            published_at: (status == ArticleStatus::Published).then_some(updated),
            tags: encode_set(tags.iter().map(|t| t.to_string())),
            product_ids: encode_set(product_ids),
            tiers: crate::domain::tiers(tiers),
            pending_title: None,
            pending_body: None,
            pending_tags: None,
            pending_audiences: None,
            pending_tiers: None,
            pending_status: None,
            pending_revision: None,
            edited_by: None,
        });
    };
    for (title, audiences, tags, body) in GENERAL {
        push(
            &mut w,
            title.to_string(),
            audiences,
            tags,
            body.to_string(),
            Vec::new(),
            &[],
        );
    }
    for (n, product) in products.iter().enumerate() {
        // Two of the three kinds per product, alternating, so every audience has some.
        for (k, (title, audiences, tags, body)) in PER_PRODUCT.iter().enumerate() {
            if k == n % PER_PRODUCT.len() {
                continue;
            }
            let fill = |t: &str| {
                t.replace("{name}", &product.name)
                    .replace("{sku}", &product.sku)
            };
            push(
                &mut w,
                fill(title),
                audiences,
                tags,
                fill(body),
                vec![product.id.clone()],
                &[],
            );
        }
    }
    for (title, audiences, tiers, tags, body) in TIERED {
        push(
            &mut w,
            title.to_string(),
            audiences,
            tags,
            body.to_string(),
            Vec::new(),
            tiers,
        );
    }
    let summary = SeedSummary {
        articles: articles.len(),
    };
    let txn = db.begin().await?; // one transaction: a seed is all or nothing
    insert_all::<article::Entity, _>(&txn, articles.iter().cloned().map(Into::into).collect())
        .await?;
    for article in &articles {
        // The same product links and events as an article created through the API.
        <article::Entity as Record>::after_write(&txn, None, article)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
    }
    txn.commit().await?;
    Ok(summary)
}
