//! The knowledge-base service's tables, and its full-text index: a generated, weighted
//! `tsvector` with a GIN index on PostgreSQL; an FTS5 table kept by triggers on SQLite.
//! Product ids are references to the order-visibility service: text, never foreign keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::util::{index, int, long_text_null, record_table, text, text_null, timestamp_null};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateArticleTables),
            Box::new(CreateArticleSearch),
            Box::new(crate::events::CreateEventTables),
            Box::new(crate::util::NamespacedExternalIds {
                name: "m20261205_000001_article_external_namespaces",
                tables: &["articles"],
            }),
            Box::new(ArticleRevisions),
            Box::new(ArticleFeedbackAndLinks),
            Box::new(crate::audit::CreateAuditTables),
            Box::new(crate::audit::AuditLogIndexes),
            Box::new(crate::erasure::CreateErasureTables),
            Box::new(crate::audit::AuditRetention),
            Box::new(crate::audit::AuditSealQueue),
            Box::new(crate::audit::AuditDropGlobalChainIndex),
            Box::new(ArticleSearchGeneration),
        ]
    }
}

struct CreateArticleTables;

impl MigrationName for CreateArticleTables {
    fn name(&self) -> &str {
        "m20261123_000001_knowledge_base_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateArticleTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            record_table("articles")
                .col(text("title", 300))
                .col(ColumnDef::new("body").text().not_null())
                // `|PUBLIC|SUPPLIER|`: the delimiters make `LIKE '%|SUPPLIER|%'` exact.
                .col(text("audiences", 64))
                .col(text("status", 16))
                .col(int("revision"))
                .col(timestamp_null("published_at"))
                // `|setup|firmware|`, same convention.
                .col(text("tags", 1000))
                // `|prd_1|prd_2|`: the linked products; `article_products` indexes them.
                .col(ColumnDef::new("product_ids").text().not_null())
                .to_owned(),
        )
        .await?;
        index(m, "articles", &["status"], false).await?;
        index(m, "articles", &["title"], false).await?;
        m.create_table(
            Table::create()
                .table("article_products")
                .if_not_exists()
                .col(text("article_id", 64))
                .col(text("product_id", 64))
                .primary_key(Index::create().col("article_id").col("product_id"))
                .to_owned(),
        )
        .await?;
        index(m, "article_products", &["product_id"], false).await?;
        Ok(())
    }
}

struct CreateArticleSearch;

impl MigrationName for CreateArticleSearch {
    fn name(&self) -> &str {
        "m20261123_000002_knowledge_base_search"
    }
}

/// Title weighs most, then tags, then the body.
const POSTGRES_SEARCH: &[&str] = &[
    "ALTER TABLE articles ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', replace(coalesce(tags, ''), '|', ' ')), 'B') ||
        setweight(to_tsvector('english', coalesce(body, '')), 'C')
    ) STORED",
    "CREATE INDEX IF NOT EXISTS idx_articles_search_vector ON articles USING GIN (search_vector)",
];

const SQLITE_SEARCH: &[&str] = &[
    "CREATE VIRTUAL TABLE IF NOT EXISTS article_search USING fts5(
        article_id UNINDEXED, title, tags, body, tokenize = 'porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS articles_search_insert AFTER INSERT ON articles BEGIN
        INSERT INTO article_search (article_id, title, tags, body)
        VALUES (new.id, new.title, replace(new.tags, '|', ' '), new.body);
    END",
    "CREATE TRIGGER IF NOT EXISTS articles_search_update AFTER UPDATE ON articles BEGIN
        DELETE FROM article_search WHERE article_id = old.id;
        INSERT INTO article_search (article_id, title, tags, body)
        VALUES (new.id, new.title, replace(new.tags, '|', ' '), new.body);
    END",
    "CREATE TRIGGER IF NOT EXISTS articles_search_delete AFTER DELETE ON articles BEGIN
        DELETE FROM article_search WHERE article_id = old.id;
    END",
];

#[async_trait::async_trait]
impl MigrationTrait for CreateArticleSearch {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let statements = match m.get_database_backend() {
            DbBackend::Postgres => POSTGRES_SEARCH,
            DbBackend::Sqlite => SQLITE_SEARCH,
            other => {
                return Err(DbErr::Migration(format!(
                    "full-text search is not set up for {other:?}"
                )));
            }
        };
        for sql in statements {
            m.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

/// Every saved version of an article (`article_revisions`), and the working copy of a
/// published article (`pending_*` on `articles`): an edit to a published article waits
/// there, beside the live text, until a second writer approves it. `last_revision` numbers
/// the next version; `edited_by` is who wrote the row's latest words (the author of the
/// revision the write made). `tiers` narrows a partner audience to partner tiers (empty:
/// every tier).
struct ArticleRevisions;

impl MigrationName for ArticleRevisions {
    fn name(&self) -> &str {
        "m20261210_000001_article_revisions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ArticleRevisions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        let columns = [
            text_null("pending_title", 300),
            long_text_null("pending_body"),
            text_null("pending_tags", 1000),
            text_null("pending_audiences", 64),
            text_null("pending_tiers", 64),
            text_null("pending_status", 16),
            ColumnDef::new("pending_revision")
                .integer()
                .null()
                .to_owned(),
            ColumnDef::new("last_revision")
                .integer()
                .not_null()
                .default(1)
                .to_owned(),
            text_null("edited_by", 64),
            ColumnDef::new("tiers")
                .string_len(64)
                .not_null()
                .default("")
                .to_owned(),
        ];
        for column in columns {
            m.alter_table(
                Table::alter()
                    .table("articles")
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.get_connection()
            .execute_unprepared("UPDATE articles SET last_revision = revision")
            .await?;
        index(m, "articles", &["pending_status"], false).await?;
        m.create_table(
            Table::create()
                .table("article_revisions")
                .if_not_exists()
                .col(text("article_id", 64))
                .col(int("number"))
                .col(text("title", 300))
                .col(ColumnDef::new("body").text().not_null())
                .col(text("tags", 1000))
                .col(text("audiences", 64))
                .col(
                    ColumnDef::new("tiers")
                        .string_len(64)
                        .not_null()
                        .default(""),
                )
                .col(text("state", 16))
                .col(text_null("author_user_id", 64))
                .col(
                    ColumnDef::new("created_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(text_null("reviewer_user_id", 64))
                .col(timestamp_null("reviewed_at"))
                .col(text_null("review_comment", 2000))
                .primary_key(Index::create().col("article_id").col("number"))
                .to_owned(),
        )
        .await?;
        // Every existing article's current words become its first stored revision (its
        // history before this migration was a counter, not text).
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO article_revisions (article_id, number, title, body, tags, audiences, \
                 tiers, state, author_user_id, created_at) \
                 SELECT id, revision, title, body, tags, audiences, '', \
                 CASE status WHEN 'PUBLISHED' THEN 'PUBLISHED' WHEN 'REVIEW' THEN 'REVIEW' \
                 ELSE 'DRAFT' END, NULL, updated_at FROM articles",
            )
            .await?;
        Ok(())
    }
}

/// What readers make of articles, and which articles solved which cases:
/// `article_feedback` (one answer per reader and article, changeable), `article_views`
/// (one row per reader and day: views are reader-days, so reloading a page counts once),
/// and `case_articles` (an article linked to a case of the account service, by id only,
/// marked when it solved the case).
struct ArticleFeedbackAndLinks;

impl MigrationName for ArticleFeedbackAndLinks {
    fn name(&self) -> &str {
        "m20261210_000002_article_feedback_and_case_links"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ArticleFeedbackAndLinks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("article_feedback")
                .if_not_exists()
                .col(text("article_id", 64))
                .col(text("reader_id", 64))
                .col(text("reader_kind", 16))
                .col(text_null("reader_partner_id", 64))
                .col(ColumnDef::new("helpful").boolean().not_null())
                .col(text_null("comment", 2000))
                .col(
                    ColumnDef::new("updated_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(Index::create().col("article_id").col("reader_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("article_views")
                .if_not_exists()
                .col(text("article_id", 64))
                .col(ColumnDef::new("day").date().not_null())
                .col(text("reader_id", 64))
                .col(text("reader_kind", 16))
                .primary_key(
                    Index::create()
                        .col("article_id")
                        .col("day")
                        .col("reader_id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("case_articles")
                .if_not_exists()
                .col(text("case_id", 64))
                .col(text("article_id", 64))
                .col(ColumnDef::new("solved").boolean().not_null().default(false))
                .col(text_null("linked_by", 64))
                .col(
                    ColumnDef::new("linked_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(Index::create().col("case_id").col("article_id"))
                .to_owned(),
        )
        .await?;
        index(m, "case_articles", &["article_id"], false).await
    }
}

/// A counter of changes to the words search ranks by (`title`, `tags`, `body`), moved by
/// the database itself on every insert, delete and change of those columns, whoever
/// writes: the search's in-memory rankings stay valid while it stands still, in every
/// replica of the service.
struct ArticleSearchGeneration;

impl MigrationName for ArticleSearchGeneration {
    fn name(&self) -> &str {
        "m20261217_000100_article_search_generation"
    }
}

const POSTGRES_GENERATION: &[&str] = &[
    "CREATE OR REPLACE FUNCTION bump_article_search_generation() RETURNS trigger AS $$
     BEGIN
         UPDATE article_search_generation SET generation = generation + 1;
         RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER articles_search_generation_words
         AFTER INSERT OR DELETE OR UPDATE OF title, tags, body ON articles
         FOR EACH STATEMENT EXECUTE FUNCTION bump_article_search_generation()",
    "CREATE TRIGGER articles_search_generation_truncate
         AFTER TRUNCATE ON articles
         FOR EACH STATEMENT EXECUTE FUNCTION bump_article_search_generation()",
];

const SQLITE_GENERATION: &[&str] = &[
    "CREATE TRIGGER IF NOT EXISTS articles_generation_insert AFTER INSERT ON articles BEGIN
         UPDATE article_search_generation SET generation = generation + 1;
     END",
    "CREATE TRIGGER IF NOT EXISTS articles_generation_update
         AFTER UPDATE OF title, tags, body ON articles BEGIN
         UPDATE article_search_generation SET generation = generation + 1;
     END",
    "CREATE TRIGGER IF NOT EXISTS articles_generation_delete AFTER DELETE ON articles BEGIN
         UPDATE article_search_generation SET generation = generation + 1;
     END",
];

#[async_trait::async_trait]
impl MigrationTrait for ArticleSearchGeneration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("article_search_generation")
                .if_not_exists()
                .col(int("id").primary_key().to_owned())
                .col(
                    ColumnDef::new("generation")
                        .big_integer()
                        .not_null()
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared(
            "INSERT INTO article_search_generation (id, generation) VALUES (1, 0)",
        )
        .await?;
        let statements = match m.get_database_backend() {
            DbBackend::Postgres => POSTGRES_GENERATION,
            _ => SQLITE_GENERATION,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
