//! Global search: the best few records of one type for a text, through the caller's
//! policy. Each service answers for its own types (`SearchResults`, one federated entity
//! keyed by the text), with the same list filter its lists use: the filter's field rules
//! narrow what the text is matched against (a field masked for the caller is never
//! searched, so no record is found by it), the policy's read scope decides which rows
//! are candidates, and the ranking reads only the searched fields of the row itself.

use async_graphql::Context;
use sea_orm::sea_query::{Alias, Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ExprTrait, Order, QueryFilter, QueryOrder, QuerySelect,
};

use crate::ApiResult;
use crate::access::{Action, Scoped, visible_in};
use crate::graphql::{RecordFilter, db};
use crate::pagination::contains_text;
use crate::principal::Principal;

/// At most this many records of one type per search.
pub const MAX_HITS: i32 = 20;

/// Matches are counted up to this many ("100+").
pub const COUNT_CAP: u64 = 100;

/// A search's text and size as given: 1–200 characters with at least one word, and 1 to
/// [`MAX_HITS`] records per type.
pub fn checked(text: &str, first: i32) -> ApiResult<(String, i32)> {
    let text = text.trim();
    if words(text).is_empty() {
        return Err(crate::ApiError::validation(
            "text",
            "type something to search for",
        ));
    }
    if text.chars().count() > 200 {
        return Err(crate::ApiError::validation(
            "text",
            "at most 200 characters",
        ));
    }
    if !(1..=MAX_HITS).contains(&first) {
        return Err(crate::ApiError::validation(
            "first",
            format!("between 1 and {MAX_HITS}"),
        ));
    }
    Ok((text.to_owned(), first))
}

/// The words of a search text (lower-cased, at most 8): a record matches when every word
/// is in one of its searched fields.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(str::to_lowercase)
        .take(8)
        .collect()
}

/// The condition "every word of `text` is in one of `columns`" (`None`: a blank text).
pub fn matches<C: ColumnTrait>(columns: &[C], text: &str) -> Option<SimpleExpr> {
    let words = words(text);
    if words.is_empty() {
        return None;
    }
    let every = words.iter().fold(sea_orm::Condition::all(), |all, word| {
        all.add(columns.iter().fold(sea_orm::Condition::any(), |any, col| {
            any.add(contains_text(*col, word))
        }))
    });
    Some(SimpleExpr::from(every))
}

/// How well a matching row fits `text`, from its searched fields alone (lower is better):
/// 0 a field is the whole text, 1 a field starts with it, 2 a word of a field starts with
/// it, 3 the words are there in another order or inside words.
pub fn rank<C: ColumnTrait>(columns: &[C], text: &str) -> SimpleExpr {
    let whole = words(text).join(" ");
    let escaped = whole
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let lower = |col: C| Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(col)));
    let any = |test: &dyn Fn(C) -> SimpleExpr| {
        SimpleExpr::from(
            columns
                .iter()
                .fold(sea_orm::Condition::any(), |any, col| any.add(test(*col))),
        )
    };
    let like = |pattern: String| {
        move |col: C| {
            lower(col).like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
        }
    };
    sea_orm::sea_query::CaseStatement::new()
        .case(any(&|col| lower(col).eq(whole.clone())), Expr::val(0))
        .case(any(&like(format!("{escaped}%"))), Expr::val(1))
        .case(any(&like(format!("% {escaped}%"))), Expr::val(2))
        .finally(Expr::val(3))
        .into()
}

/// A list filter that global search can use for its type.
pub trait Searchable<E>: RecordFilter<E>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    /// The filter that finds `text` (and nothing else: archived records stay out).
    fn for_text(text: String) -> Self;
    /// The fields the text is matched against, as the filter stands after
    /// [`RecordFilter::restrict`] narrowed it for the caller; the first one orders
    /// records that rank alike.
    fn searched(&self) -> Vec<E::Column>;
}

/// The best records of one type for a text, and how many match (capped).
pub struct Hits<M> {
    pub rows: Vec<M>,
    /// Matches the caller may read, counted up to [`COUNT_CAP`] + 1.
    pub total: u64,
}

impl<M> Hits<M> {
    pub fn map<N>(self, f: impl FnMut(M) -> N) -> Hits<N> {
        Hits {
            rows: self.rows.into_iter().map(f).collect(),
            total: self.total,
        }
    }
}

/// The `first` best records of `E` for `text` that the caller may read, best first.
pub async fn hits<E, F>(ctx: &Context<'_>, text: &str, first: i32) -> ApiResult<Hits<E::Model>>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    E::Model: Sync,
    F: Searchable<E>,
{
    let who = Principal::of(ctx);
    let filter = F::for_text(text.to_owned())
        .restrict(&who)
        .await?
        .within_reach(&who)
        .await?;
    let columns = filter.searched();
    let select = filter
        .select()
        .filter(visible_in::<E>(ctx, Action::Read).await?);
    let db = db(ctx)?;
    let total = select
        .clone()
        .select_only()
        .column_as(Expr::col(Alias::new("id")), "id")
        .limit(COUNT_CAP + 1)
        .into_tuple::<String>()
        .all(db)
        .await?
        .len() as u64;
    let mut ranked = select.order_by(rank(&columns, text), Order::Asc);
    if let Some(first_column) = columns.first() {
        ranked = ranked.order_by(
            Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(*first_column))),
            Order::Asc,
        );
    }
    let rows = ranked
        .order_by(Expr::col(Alias::new("id")), Order::Asc)
        .limit(first.clamp(0, MAX_HITS) as u64)
        .all(db)
        .await?;
    Ok(Hits { rows, total })
}

/// Declares `SearchResults`, one search as a federation entity keyed by its text and size
/// (the account service owns `Query.search`; every service adds its types to it with a
/// `#[ComplexObject]`), and `SearchEntityQuery`, its entity resolver. Each subgraph must
/// declare the entity itself; this writes it once.
#[macro_export]
macro_rules! search_results_entity {
    () => {
        /// The best records of each type for one search text, each type through the
        /// caller's policy (a type the caller may not read has no hits).
        #[derive(async_graphql::SimpleObject, Clone, Debug)]
        #[graphql(complex)]
        pub struct SearchResults {
            /// The text searched for: every word must be in one of a record's searched
            /// fields.
            pub text: String,
            /// How many records of each type, at most.
            pub first: i32,
        }

        #[derive(Default)]
        pub struct SearchEntityQuery;

        #[async_graphql::Object]
        impl SearchEntityQuery {
            /// Federation: a search's results of this service's types, by its key.
            #[graphql(entity)]
            async fn find_search_results_by_text_and_first(
                &self,
                text: String,
                first: i32,
            ) -> async_graphql::Result<SearchResults> {
                let (text, first) = $crate::search::checked(&text, first)?;
                Ok(SearchResults { text, first })
            }
        }
    };
}

/// Declares `XHits`, a search's best records of one type with their capped count.
#[macro_export]
macro_rules! search_hits {
    ($hits:ident, $node:ty) => {
        pub struct $hits(pub $crate::search::Hits<$node>);

        #[async_graphql::Object]
        impl $hits {
            /// The best matches the caller may read, best first.
            async fn nodes(&self) -> &[$node] {
                &self.0.rows
            }
            /// How many records the caller may read match, counted up to 100.
            async fn total_count(&self) -> u64 {
                self.0.total.min($crate::search::COUNT_CAP)
            }
            /// More than 100 match: `totalCount` stopped counting.
            async fn more(&self) -> bool {
                self.0.total > $crate::search::COUNT_CAP
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_is_at_most_eight_lower_case_words() {
        assert_eq!(words("  Anna  SMITH "), vec!["anna", "smith"]);
        assert!(words("   ").is_empty());
        assert_eq!(words("a b c d e f g h i j").len(), 8);
    }
}
