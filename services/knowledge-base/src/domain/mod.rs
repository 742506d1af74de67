//! The knowledge-base vocabulary: audiences, the editorial lifecycle, tags, and the
//! parsing of a search text into a safe full-text query. No I/O here.

use crm_service_common::domain::{Lifecycle, PartnerTier};
use crm_service_common::{ApiError, ApiResult, text_enum};
use sea_orm::sea_query::StringLen;

text_enum!(
    /// Who an article is written for. Partners read only published articles for their
    /// kind or for the public (see ACCESS-MATRIX.md).
    Audience { Internal = "INTERNAL", Supplier = "SUPPLIER", Distributor = "DISTRIBUTOR", Public = "PUBLIC" }
);

text_enum!(
    /// The editorial lifecycle: DRAFT → REVIEW → PUBLISHED, and PUBLISHED only when a
    /// writer other than the authors approves (`approveArticle`). A published article stays
    /// live while its next revision is written and reviewed beside it; it is ARCHIVED to
    /// retire it (restorable as a draft).
    ArticleStatus { Draft = "DRAFT", Review = "REVIEW", Published = "PUBLISHED", Archived = "ARCHIVED" }
);

text_enum!(
    /// What became of one saved version of an article: a DRAFT or one in REVIEW is the
    /// working copy; PUBLISHED was live (or is); REJECTED was sent back by a reviewer;
    /// SUPERSEDED was followed by a newer version before it was reviewed.
    RevisionState { Draft = "DRAFT", Review = "REVIEW", Published = "PUBLISHED", Rejected = "REJECTED", Superseded = "SUPERSEDED" }
);

text_enum!(
    /// One line of a diff between two revisions.
    DiffChange { Same = "SAME", Added = "ADDED", Removed = "REMOVED" }
);

/// A line of a diff, with its number in the older and the newer text (1-based; `None`
/// where the line is not in that text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub change: DiffChange,
    pub old_line: Option<u32>,
    pub new_line: Option<u32>,
    pub text: String,
}

/// The changed lines of `old` → `new` with up to `context` unchanged lines around each
/// change; a gap between two hunks shows as a `Same` line with text `…` and no numbers.
/// Empty when the texts are equal.
pub fn diff_lines(old: &str, new: &str, context: usize) -> Vec<DiffLine> {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    let mut lines = Vec::new();
    for (n, group) in diff.grouped_ops(context).iter().enumerate() {
        if n > 0 {
            lines.push(DiffLine {
                change: DiffChange::Same,
                old_line: None,
                new_line: None,
                text: "…".into(),
            });
        }
        for op in group {
            for change in diff.iter_changes(op) {
                lines.push(DiffLine {
                    change: match change.tag() {
                        ChangeTag::Equal => DiffChange::Same,
                        ChangeTag::Insert => DiffChange::Added,
                        ChangeTag::Delete => DiffChange::Removed,
                    },
                    old_line: change.old_index().map(|i| i as u32 + 1),
                    new_line: change.new_index().map(|i| i as u32 + 1),
                    text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
    }
    lines
}

impl Lifecycle for ArticleStatus {
    const NOUN: &'static str = "an article";
    fn next(self) -> &'static [Self] {
        use ArticleStatus::*;
        match self {
            Draft => &[Review, Archived],
            Review => &[Draft, Published],
            Published => &[Archived],
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

/// The partner tiers an article is narrowed to (none: every tier).
pub fn tiers(values: &[PartnerTier]) -> String {
    encode_set(values.iter().map(|t| crm_service_common::domain::label(*t)))
}

pub fn parse_tiers(stored: &str) -> Vec<PartnerTier> {
    decode_set(stored)
        .iter()
        .filter_map(|v| PartnerTier::parse(v))
        .collect()
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

    /// PostgreSQL `to_tsquery` text matching any of the words (each also as a prefix).
    pub fn to_tsquery_any(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// SQLite FTS5 MATCH text matching any of the words (each also as a prefix).
    pub fn to_fts5_any(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" OR ")
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
    fn a_diff_shows_changed_lines_with_their_numbers_and_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let new = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let lines = diff_lines(old, new, 1);
        let shown: Vec<(DiffChange, Option<u32>, Option<u32>, &str)> = lines
            .iter()
            .map(|l| (l.change, l.old_line, l.new_line, l.text.as_str()))
            .collect();
        use DiffChange::*;
        assert_eq!(
            shown,
            vec![
                (Same, Some(1), Some(1), "a"),
                (Removed, Some(2), None, "b"),
                (Added, None, Some(2), "B"),
                (Same, Some(3), Some(3), "c"),
                (Same, None, None, "…"),
                (Same, Some(9), Some(9), "i"),
                (Added, None, Some(10), "j"),
            ]
        );
        assert!(diff_lines(old, old, 3).is_empty());
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
