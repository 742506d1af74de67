//! The knowledge-base part of the demo world is deterministic and covers every audience
//! and status, linked to the products it is given.

use crm_knowledge_base::seed::{ProductRef, seed};
use sea_orm::QueryFilter;

fn products() -> Vec<ProductRef> {
    (1..=9)
        .map(|n| ProductRef {
            id: format!("prd_{n}"),
            name: format!("Widget {n}"),
            sku: format!("W-{n}"),
        })
        .collect()
}

async fn fresh() -> (sea_orm::DatabaseConnection, Option<tempfile::TempDir>) {
    let (db, _, dir) = crm_testkit::fresh_database_of(&crm_knowledge_base::subgraph()).await;
    (db, dir)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_articles_covering_every_audience_and_status() {
    use sea_orm::EntityTrait;
    let ((a, _da), (b, _db), (c, _dc)) = (fresh().await, fresh().await, fresh().await);
    let summary = seed(&a, 3, &products()).await.expect("seed a");
    assert_eq!(seed(&b, 3, &products()).await.expect("seed b"), summary);
    seed(&c, 4, &products()).await.expect("seed c");
    let dump_a = crm_testkit::dump_records(&a, &["articles"]).await;
    assert_eq!(dump_a, crm_testkit::dump_records(&b, &["articles"]).await);
    assert_ne!(dump_a, crm_testkit::dump_records(&c, &["articles"]).await);

    let articles = crm_knowledge_base::entity::article::Entity::find()
        .all(&a)
        .await
        .expect("articles");
    assert_eq!(articles.len(), summary.articles);
    for audience in ["|INTERNAL|", "|SUPPLIER|", "|DISTRIBUTOR|", "|PUBLIC|"] {
        assert!(
            articles.iter().any(|x| x.audiences.contains(audience)),
            "{audience}"
        );
    }
    let statuses: std::collections::BTreeSet<_> =
        articles.iter().map(|x| format!("{:?}", x.status)).collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    for product in products() {
        assert!(
            articles
                .iter()
                .any(|x| x.product_ids.contains(&format!("|{}|", product.id))),
            "{}",
            product.id
        );
    }
    // The links index and the search index were filled as by the API.
    let links = crm_knowledge_base::entity::article_product::Entity::find()
        .all(&a)
        .await
        .expect("links");
    assert_eq!(links.len(), 2 * products().len());
    let query = crm_knowledge_base::domain::SearchQuery::parse(Some("widget troubleshooting"))
        .expect("words");
    let matching: Vec<String> = crm_knowledge_base::entity::article::Entity::find()
        .filter(crm_knowledge_base::store::match_condition(
            a.get_database_backend(),
            &query,
        ))
        .all(&a)
        .await
        .expect("search")
        .into_iter()
        .map(|article| article.id)
        .collect();
    assert!(!matching.is_empty());
    let hits = crm_knowledge_base::store::relevance(&a, &query, &matching)
        .await
        .expect("scores");
    assert_eq!(hits.len(), matching.len(), "every match is scored");
}
