//! The knowledge-base vocabulary: audiences, the editorial lifecycle, tags, and the
//! parsing of a search text into a safe full-text query. No I/O here.

use crm_service_common::domain::Lifecycle;
use crm_service_common::{ApiError, ApiResult, text_enum};
use sea_orm::sea_query::StringLen;

text_enum!(
    /// Who an article is written for. Partners read only published articles for their
    /// kind or for the public (see ACCESS-MATRIX.md).
    Audience { Internal = "INTERNAL", Supplier = "SUPPLIER", Distributor = "DISTRIBUTOR", Public = "PUBLIC" }
);

text_enum!(
    /// The editorial lifecycle: DRAFT → REVIEW → PUBLISHED; a published article goes back
    /// to DRAFT for a new revision or is ARCHIVED (retired, restorable as a draft).
    ArticleStatus { Draft = "DRAFT", Review = "REVIEW", Published = "PUBLISHED", Archived = "ARCHIVED" }
);

impl Lifecycle for ArticleStatus {
    const NOUN: &'static str = "an article";
    fn next(self) -> &'static [Self] {
        use ArticleStatus::*;
        match self {
            Draft => &[Review, Archived],
            Review => &[Draft, Published],
            Published => &[Draft, Archived],
            Archived => &[Draft],
        }
    }
}

/// A set of values stored as `|A|B|` (sorted, no duplicates), so that `LIKE '%|A|%'`
/// matches exactly one member.
pub fn encode_set<I: IntoIterator<Item = String>>(values: I) -> String {
    let mut values: Vec<String> = values.into_iter().collect();
    values.sort();
    values.dedup();
    if values.is_empty() {
        return String::new();
    }
    format!("|{}|", values.join("|"))
}

pub fn decode_set(stored: &str) -> Vec<String> {
    stored
        .split('|')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The audiences of an article: at least one.
pub fn audiences(field: &str, values: &[Audience]) -> ApiResult<String> {
    if values.is_empty() {
        return Err(ApiError::validation(field, "needs at least one audience"));
    }
    Ok(encode_set(
        values.iter().map(|a| crm_service_common::domain::label(*a)),
    ))
}

pub fn parse_audiences(stored: &str) -> Vec<Audience> {
    decode_set(stored)
        .iter()
        .filter_map(|v| serde_json::from_value(serde_json::Value::String(v.clone())).ok())
        .collect()
}

/// Tags: at most 20, each 1–40 characters of a–z, 0–9 or `-` (lower-cased).
pub fn tags(field: &str, values: &[String]) -> ApiResult<String> {
    if values.len() > 20 {
        return Err(ApiError::validation(field, "at most 20 tags"));
    }
    let mut clean = Vec::new();
    for value in values {
        let tag = value.trim().to_lowercase();
        if tag.is_empty()
            || tag.chars().count() > 40
            || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ApiError::validation(
                field,
                format!("{value:?} is not a tag (1 to 40 characters of a-z, 0-9 or '-')"),
            ));
        }
        clean.push(tag);
    }
    Ok(encode_set(clean))
}

/// A search text reduced to words: letters and digits only, lower-cased, at most 12.
/// Whatever a user types becomes a valid query on both databases, and no query syntax
/// (quotes, operators, column filters) passes through.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    pub fn parse(text: Option<&str>) -> Option<Self> {
        let words: Vec<String> = text?
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase())
            .take(12)
            .collect();
        (!words.is_empty()).then_some(Self { words })
    }

    /// PostgreSQL `to_tsquery` text: every word, each also as a prefix (`word:*`).
    pub fn to_tsquery(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ")
    }

    /// How well one article matches, from its own text alone (no statistics over other
    /// articles, which a reader may not see: a corpus-wide IDF would let the score of a
    /// visible article count hidden drafts containing a word). Per word, the matches
    /// (words starting with it, as the index matches prefixes) saturate (`tf / (tf + 1.2)`)
    /// and are weighted by field: title 10, tags 4, body 1; scaled to an integer so that it
    /// sorts and compares exactly in cursors.
    pub fn local_score(&self, title: &str, tags: &str, body: &str) -> i64 {
        let matches = |text: &str, word: &str| {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty() && t.to_lowercase().starts_with(word))
                .count() as f64
        };
        let saturated = |tf: f64| tf / (tf + 1.2);
        let score: f64 = self
            .words
            .iter()
            .map(|w| {
                10.0 * saturated(matches(title, w))
                    + 4.0 * saturated(matches(tags, w))
                    + saturated(matches(body, w))
            })
            .sum();
        (score * 1e9).round() as i64
    }

    /// SQLite FTS5 MATCH text: every word, quoted, each also as a prefix (`"word"*`).
    pub fn to_fts5(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_becomes_words_and_nothing_else() {
        let q = SearchQuery::parse(Some(r#"  Reset "the" sensor* OR title:x -- ; DROP"#))
            .expect("words");
        assert_eq!(
            q.to_fts5(),
            r#""reset"* "the"* "sensor"* "or"* "title"* "x"* "drop"*"#
        );
        assert_eq!(
            q.to_tsquery(),
            "reset:* & the:* & sensor:* & or:* & title:* & x:* & drop:*"
        );
        assert_eq!(SearchQuery::parse(Some(" -- '' ")), None);
        assert_eq!(SearchQuery::parse(None), None);
    }

    #[test]
    fn sets_are_sorted_and_delimited() {
        assert_eq!(
            encode_set(["b".to_owned(), "a".to_owned(), "b".to_owned()]),
            "|a|b|"
        );
        assert_eq!(decode_set("|a|b|"), vec!["a", "b"]);
        assert_eq!(encode_set(Vec::<String>::new()), "");
        assert!(tags("tags", &["Firmware".into(), "set-up".into()]).is_ok());
        assert!(tags("tags", &["no spaces".into()]).is_err());
        assert!(audiences("audiences", &[]).is_err());
        assert_eq!(
            parse_audiences(
                &audiences("a", &[Audience::Public, Audience::Supplier]).unwrap_or_default()
            ),
            vec![Audience::Public, Audience::Supplier]
        );
    }

    #[test]
    fn the_editorial_lifecycle_is_enforced() {
        assert!(
            ArticleStatus::Draft
                .transition(ArticleStatus::Published)
                .is_err()
        );
        assert!(
            ArticleStatus::Review
                .transition(ArticleStatus::Published)
                .is_ok()
        );
        assert!(
            ArticleStatus::Archived
                .transition(ArticleStatus::Draft)
                .is_ok()
        );
    }
}
