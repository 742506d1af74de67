//! What webhooks report on: kinds of records, each read through one query as the webhook's
//! principal, and the three things that can happen to a record *as that principal sees
//! it*: it was added to its view, it changed in its view, it left its view.
//!
//! The names describe the principal's view, never the change that triggered them: a change
//! to a field the principal can't see changes nothing it sees, so nothing is sent; a change
//! it can see is reported as the same event whatever else changed with it.

/// A kind of record webhooks report on.
#[derive(Debug)]
pub struct RecordKind {
    /// The GraphQL type, also the aggregate type of the events that may change it.
    pub type_name: &'static str,
    /// The event names' prefix: `order` → `order.added`, `order.updated`, `order.removed`.
    pub prefix: &'static str,
    /// The service whose events may change it, and the consumer of them that schedules
    /// the deliveries.
    pub source: &'static str,
    pub consumer: &'static str,
    /// The query that reads one record (`$id`) as the webhook's principal: its answer is a
    /// delivery's `data`. It selects the record and the rows of its aggregate only (what
    /// changes through the record's own events), and related records by id: a view that
    /// changed without an event would not be told until the record's next change.
    pub document: &'static str,
    /// The document's root field.
    pub root: &'static str,
    /// The fields of `data`, as the document selects them (a filter names one of these,
    /// or a path below one).
    pub fields: &'static [&'static str],
}

pub const ORDER: RecordKind = RecordKind {
    type_name: "Order",
    prefix: "order",
    source: "order_visibility",
    consumer: "identity-webhooks-orders",
    // The order and the rows of its aggregate (lines, shipments), whose every change is
    // an event of the order; related records (the account, the products) by id only,
    // since their changes are not.
    document: "query WebhookOrder($id: ID!) { order(id: $id) { \
        id externalId number status placedAt currency total { amount currency } \
        accountId fulfillingDistributorId internalNote version updatedAt archivedAt \
        lines(first: 100) { nodes { id lineNumber productId quantity status \
            unitPrice { amount currency } amount { amount currency } expectedDate archivedAt } } \
        shipments(first: 100) { nodes { id status carrier trackingNumber shippedAt deliveredAt archivedAt } } \
    } }",
    root: "order",
    fields: &[
        "id",
        "externalId",
        "number",
        "status",
        "placedAt",
        "currency",
        "total",
        "accountId",
        "fulfillingDistributorId",
        "internalNote",
        "version",
        "updatedAt",
        "archivedAt",
        "lines",
        "shipments",
    ],
};

pub const ARTICLE: RecordKind = RecordKind {
    type_name: "Article",
    prefix: "article",
    source: "knowledge_base",
    consumer: "identity-webhooks-articles",
    document: "query WebhookArticle($id: ID!) { article(id: $id) { \
        id externalId title status audiences tags productIds publishedAt revision body \
        version updatedAt archivedAt } }",
    root: "article",
    fields: &[
        "id",
        "externalId",
        "title",
        "status",
        "audiences",
        "tags",
        "productIds",
        "publishedAt",
        "revision",
        "body",
        "version",
        "updatedAt",
        "archivedAt",
    ],
};

/// Every kind of record webhooks report on.
pub const RECORDS: [&RecordKind; 2] = [&ORDER, &ARTICLE];

/// The event a webhook receives when asked to test its endpoint (`pingWebhook`).
pub const PING: &str = "webhook.ping";

/// The filter field that names what changed in an update (the top-level fields of
/// `data` whose values differ from the view the webhook was last told of).
pub const CHANGED: &str = "changed";

/// What happened to a record in a principal's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// It entered the view: new, or newly shared.
    Added,
    /// It is in the view and the view of it changed.
    Updated,
    /// It left the view: archived, no longer shared, out of the principal's scope.
    Removed,
}

impl Change {
    pub const ALL: [Change; 3] = [Change::Added, Change::Updated, Change::Removed];

    pub fn suffix(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Updated => "updated",
            Change::Removed => "removed",
        }
    }

    /// In plain words (both kinds start with a vowel: "An order", "An article").
    fn describe(self, kind: &RecordKind) -> String {
        let what = kind.type_name.to_lowercase();
        match self {
            Change::Added => {
                format!("An {what} entered your view (new, or newly shared with you)")
            }
            Change::Updated => format!("An {what} you see changed as you see it"),
            Change::Removed => {
                format!("An {what} left your view (archived, or no longer shared with you)")
            }
        }
    }
}

/// `order.added` and so on.
pub fn event_name(kind: &RecordKind, change: Change) -> String {
    format!("{}.{}", kind.prefix, change.suffix())
}

/// Every event a webhook may subscribe to, with what it means.
pub fn event_types() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = RECORDS
        .iter()
        .flat_map(|kind| {
            Change::ALL
                .into_iter()
                .map(|change| (event_name(kind, change), change.describe(kind)))
        })
        .collect();
    all.push((
        PING.to_owned(),
        "A test delivery you asked for (pingWebhook); always sent".to_owned(),
    ));
    all
}

/// The record kind and change an event name stands for (`None` for the ping and unknown
/// names).
pub fn parse_event(name: &str) -> Option<(&'static RecordKind, Change)> {
    let (prefix, suffix) = name.split_once('.')?;
    let kind = RECORDS.into_iter().find(|k| k.prefix == prefix)?;
    let change = Change::ALL.into_iter().find(|c| c.suffix() == suffix)?;
    Some((kind, change))
}

/// The record kind whose events have the aggregate type `aggregate`.
pub fn kind_of_aggregate(aggregate: &str) -> Option<&'static RecordKind> {
    RECORDS.into_iter().find(|k| k.type_name == aggregate)
}

/// The record kind of the type name `type_name` (a delivery's `recordType`).
pub fn kind_named(type_name: &str) -> Option<&'static RecordKind> {
    kind_of_aggregate(type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_parses_back_to_its_kind_and_change() {
        for (name, _) in event_types() {
            if name == PING {
                assert!(parse_event(&name).is_none());
                continue;
            }
            let (kind, change) = parse_event(&name).expect(&name);
            assert_eq!(event_name(kind, change), name);
        }
        assert!(parse_event("order.placed").is_none());
        assert!(parse_event("account.added").is_none());
    }

    #[test]
    fn every_documented_field_is_selected_by_the_document() {
        for kind in RECORDS {
            for field in kind.fields {
                assert!(
                    kind.document.contains(&format!(" {field} "))
                        || kind.document.contains(&format!(" {field} {{"))
                        || kind.document.contains(&format!(" {field}(")),
                    "{} selects {field}",
                    kind.type_name
                );
            }
        }
    }
}
