//! The account 360° page's one timeline: interactions, orders placed, shipment events,
//! cases opened and resolved with their comments, opportunities' stage changes, and tasks
//! created and completed, newest first, filterable by kind. Built from the page's one
//! operation: every event is of a record the API let the caller read.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Choice, Conn, Label, When, words};

/// The kinds an event may be, in the order the filter lists them.
pub(crate) const KINDS: &[(&str, &str)] = &[
    ("interaction", "Interactions"),
    ("order", "Orders"),
    ("shipment", "Shipments"),
    ("case", "Cases"),
    ("comment", "Case comments"),
    ("stage", "Deal stages"),
    ("task", "Tasks"),
];

/// One event of the timeline.
pub(crate) struct Event {
    pub at: When,
    pub kind: &'static str,
    pub label: &'static str,
    pub title: String,
    pub detail: String,
    pub href: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaseEvent {
    pub id: String,
    pub subject: String,
    pub status: Label,
    pub priority: Label,
    pub created_at: When,
    pub resolved_at: When,
    #[serde(default)]
    pub comments: Conn<CommentEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommentEvent {
    pub body: String,
    pub partner_visible: bool,
    pub created_at: When,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StageEvent {
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub changed_at: When,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShipmentEvents {
    pub carrier: Option<String>,
    #[serde(default)]
    pub events: Vec<TrackingEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrackingEvent {
    pub status: String,
    pub occurred_at: When,
    pub location: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskEvent {
    pub id: String,
    pub title: String,
    pub created_at: When,
    pub due_at: When,
    pub completed_at: When,
    pub record_type: Label,
    pub record_id: String,
}

fn kind_label(kind: &'static str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, label)| *label)
}

/// Builds the timeline.
pub(crate) struct Timeline {
    pub events: Vec<Event>,
}

impl Timeline {
    pub fn new() -> Self {
        Self { events: Vec::new() }
    }

    fn push(&mut self, at: &When, kind: &'static str, title: String, detail: String, href: String) {
        if at.0.is_some() {
            self.events.push(Event {
                at: When(at.0),
                kind,
                label: kind_label(kind),
                title,
                detail,
                href,
            });
        }
    }

    pub fn interaction(&mut self, i: &super::app::InteractionRow) {
        self.push(
            &i.occurred_at,
            "interaction",
            i.subject.clone(),
            format!(
                "{} · {}{}",
                i.channel,
                i.direction,
                if i.body.is_some() {
                    format!(" — {}", i.body)
                } else {
                    String::new()
                }
            ),
            String::new(),
        );
    }

    pub fn order(
        &mut self,
        id: &str,
        number: &str,
        status: &Label,
        placed: &When,
        shipments: &[ShipmentEvents],
    ) {
        self.push(
            placed,
            "order",
            format!("Order {number} placed"),
            format!("now {status}"),
            format!("/app/orders/{id}"),
        );
        for shipment in shipments {
            for event in &shipment.events {
                self.push(
                    &event.occurred_at,
                    "shipment",
                    format!("Order {number}: {}", words(&event.status).to_lowercase()),
                    [shipment.carrier.clone(), event.location.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · "),
                    format!("/app/orders/{id}"),
                );
            }
        }
    }

    pub fn case(&mut self, c: &CaseEvent) {
        let href = format!("/app/cases/{}", c.id);
        self.push(
            &c.created_at,
            "case",
            format!("Case opened: {}", c.subject),
            format!("{} priority, now {}", c.priority, c.status),
            href.clone(),
        );
        self.push(
            &c.resolved_at,
            "case",
            format!("Case resolved: {}", c.subject),
            String::new(),
            href.clone(),
        );
        for comment in &c.comments.nodes {
            let visibility = if comment.partner_visible {
                "to the partner"
            } else {
                "internal"
            };
            self.push(
                &comment.created_at,
                "comment",
                format!("Comment on {} ({visibility})", c.subject),
                comment.body.clone(),
                href.clone(),
            );
        }
    }

    pub fn stage(&mut self, deal: &str, s: &StageEvent) {
        let title = match &s.from_stage {
            Some(from) => format!("{deal}: {} → {}", words(from), words(&s.to_stage)),
            None => format!("{deal}: opened in {}", words(&s.to_stage)),
        };
        self.push(&s.changed_at, "stage", title, String::new(), String::new());
    }

    pub fn task(&mut self, t: &TaskEvent) {
        let href = match t.record_type.0.as_str() {
            "CASE" => format!("/app/cases/{}", t.record_id),
            _ => String::new(),
        };
        self.push(
            &t.created_at,
            "task",
            format!("Task: {}", t.title),
            format!("due {}", t.due_at),
            href.clone(),
        );
        self.push(
            &t.completed_at,
            "task",
            format!("Task done: {}", t.title),
            String::new(),
            href,
        );
        let _ = &t.id;
    }

    /// Newest first, of `kind` only when one is chosen.
    pub fn finish(mut self, kind: Option<&str>) -> Vec<Event> {
        if let Some(kind) = kind {
            self.events.retain(|e| e.kind == kind);
        }
        self.events
            .sort_by_key(|e| std::cmp::Reverse(e.at.0.unwrap_or(DateTime::<Utc>::MIN_UTC)));
        self.events
    }
}

/// The filter's choices, the current one selected.
pub(crate) fn kind_choices(current: Option<&str>) -> Vec<Choice> {
    KINDS
        .iter()
        .map(|(k, label)| Choice {
            value: (*k).to_owned(),
            label: (*label).to_owned(),
            selected: current == Some(*k),
        })
        .collect()
}
