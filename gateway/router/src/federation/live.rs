//! Subscriptions: live views of records, served by the gateway itself over WebSocket
//! (graphql-transport-ws) and server-sent events (graphql-sse, one stream per request).
//!
//! A subscription is never forwarded to a subgraph. Each event is the answer of a query
//! the gateway runs **as the subscriber, when the event is sent**: when a record the
//! subscription watches may have changed (an event of its aggregate was committed), the
//! gateway reads it again with the subscriber's own selection and compares the answer
//! with the one it last had. Why this shape:
//! - every event is authorized exactly like a query of the subscriber at that moment: the
//!   door is asked again (a signed-out session, a disabled user, a revoked or expired key
//!   ends the stream), and every subgraph applies its policy with fresh tokens (a revoked
//!   share stops the events; a field the subscriber can't read never shows);
//! - a change the subscriber can't see changes nothing it reads, so nothing is sent: what
//!   a stream says never depends on hidden rows (the webhooks' rule, the same suites);
//! - subgraphs stay request servers. A subgraph stream would hold a principal captured at
//!   its start and a 60-second internal token its later entity fetches would outlive.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crm_contract::ErrorCode;
use graphql_tools::parser::query as q;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

/// The gateway's subscription types, added to the public schema when it has the types
/// they name.
pub const SDL: &str = include_str!("subscriptions.graphql");

/// What the gateway hears from the services' events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A record of `record_type` (an event's aggregate type) may have changed.
    Changed { record_type: String, id: String },
    /// Events may have been missed (the bus fell behind): every watched record is read
    /// again.
    Resync,
    /// The directory changed (a session ended, a user was disabled, a key revoked): every
    /// stream asks the door about its subscriber at once, and ends if it is refused.
    Credentials,
}

/// Where signals are broadcast to every running subscription.
pub type Changes = broadcast::Sender<Signal>;

/// A channel for signals, with room for bursts (a subscription that falls further behind
/// reads everything it watches again).
pub fn changes() -> Changes {
    broadcast::channel(4096).0
}

/// A subscription root field: which records it follows and how it reads one.
struct LiveField {
    name: &'static str,
    /// The events' aggregate type of the records it follows.
    record_type: &'static str,
    /// The query root field that reads one record by `id` as the caller.
    read_root: &'static str,
    shape: Shape,
}

enum Shape {
    /// Follows the records named by its `ids` argument; each event says how one changed
    /// in the caller's view (`OrderChange`).
    Watch {
        event_type: &'static str,
        id_field: &'static str,
        record_field: &'static str,
    },
    /// Sends each new record the caller may read, once (the payload is the record).
    Arrivals,
}

const FIELDS: [LiveField; 2] = [
    LiveField {
        name: "orderChanged",
        record_type: "Order",
        read_root: "order",
        shape: Shape::Watch {
            event_type: "OrderChange",
            id_field: "orderId",
            record_field: "order",
        },
    },
    LiveField {
        name: "notificationReceived",
        record_type: "Notification",
        read_root: "notification",
        shape: Shape::Arrivals,
    },
];

/// The most records one subscription watches.
pub const MAX_WATCHED: usize = 100;

/// The variable the read query takes the record's id in.
const ID_VARIABLE: &str = "crmLiveId";

/// The root field of the read query when the subscription selects nothing of the record:
/// whether it is in view is still what decides ADDED and REMOVED.
const PROBE: &str = "crmLiveProbe";

/// A payload field of a watch event, by what it answers.
#[derive(Clone, Debug)]
enum PayloadField {
    Change,
    RecordId,
    Changed,
    Record,
    Typename,
}

/// A subscription, prepared: what it follows and the query that reads one record as the
/// subscriber.
#[derive(Clone, Debug)]
pub struct LiveQuery {
    field: &'static str,
    record_type: &'static str,
    /// The subscription's response key (its root field's alias or name).
    key: String,
    watch: Option<Watch>,
    /// The read query: the record's selections as root fields aliased by their response
    /// keys, with the fragments and variables they use.
    read: String,
    variables: Map<String, Value>,
}

#[derive(Clone, Debug)]
struct Watch {
    ids: Vec<String>,
    event_type: &'static str,
    /// The event's fields in the order selected, by response key.
    payload: Vec<(String, PayloadField)>,
    /// The read query's root keys (the record's response keys, or the probe).
    record_keys: Vec<String>,
}

type Document = q::Document<'static, String>;
type Selections = q::SelectionSet<'static, String>;

fn refuse(message: impl Into<String>) -> (ErrorCode, String) {
    (ErrorCode::BadUserInput, message.into())
}

impl LiveQuery {
    /// Prepares the subscription `operation_name` of a document the engine validated
    /// against the public schema, with the request's variables.
    pub fn prepare(
        document: &Document,
        operation_name: Option<&str>,
        variables: &Map<String, Value>,
    ) -> Result<Self, (ErrorCode, String)> {
        let subscription = document
            .definitions
            .iter()
            .find_map(|d| match d {
                q::Definition::Operation(q::OperationDefinition::Subscription(s))
                    if operation_name.is_none() || s.name.as_deref() == operation_name =>
                {
                    Some(s)
                }
                _ => None,
            })
            .ok_or_else(|| refuse("the document has no such subscription"))?;
        let fragments: HashMap<&str, &q::FragmentDefinition<'static, String>> = document
            .definitions
            .iter()
            .filter_map(|d| match d {
                q::Definition::Fragment(f) => Some((f.name.as_str(), f)),
                _ => None,
            })
            .collect();
        let roots = fields_of(&subscription.selection_set, &fragments)?;
        let [root] = roots.as_slice() else {
            return Err(refuse("a subscription selects exactly one field"));
        };
        let live = FIELDS
            .iter()
            .find(|f| f.name == root.name)
            .ok_or_else(|| refuse(format!("{} is not a subscription", root.name)))?;
        if subscription
            .variable_definitions
            .iter()
            .any(|v| v.name == ID_VARIABLE)
        {
            return Err(refuse(format!("${ID_VARIABLE} is reserved")));
        }
        let key = response_key(root);
        // The read query's root fields: `<key>: <read_root>(id: $crmLiveId) { … }`.
        let mut reads: Vec<q::Field<'static, String>> = Vec::new();
        let read_field = |alias: &str, selections: Selections| q::Field {
            position: root.position,
            alias: Some(alias.to_owned()),
            name: live.read_root.to_owned(),
            arguments: vec![("id".to_owned(), q::Value::Variable(ID_VARIABLE.to_owned()))],
            directives: Vec::new(),
            selection_set: selections,
        };
        let watch = match &live.shape {
            Shape::Arrivals => {
                reads.push(read_field(&key, root.selection_set.clone()));
                None
            }
            Shape::Watch {
                event_type,
                id_field,
                record_field,
            } => {
                let ids = ids_argument(root, variables)?;
                let mut payload = Vec::new();
                let mut record_keys = Vec::new();
                for field in fields_of(&root.selection_set, &fragments)? {
                    let field_key = response_key(field);
                    let answers = match field.name.as_str() {
                        "change" => PayloadField::Change,
                        "changed" => PayloadField::Changed,
                        "__typename" => PayloadField::Typename,
                        name if name == *id_field => PayloadField::RecordId,
                        name if name == *record_field => {
                            if field_key == PROBE {
                                return Err(refuse(format!("the alias {PROBE} is reserved")));
                            }
                            if !record_keys.contains(&field_key) {
                                record_keys.push(field_key.clone());
                                reads.push(read_field(&field_key, field.selection_set.clone()));
                            }
                            PayloadField::Record
                        }
                        other => return Err(refuse(format!("{event_type} has no field {other}"))),
                    };
                    if !payload.iter().any(|(k, _)| k == &field_key) {
                        payload.push((field_key, answers));
                    }
                }
                if reads.is_empty() {
                    let probe = q::Field {
                        position: root.position,
                        alias: None,
                        name: "id".to_owned(),
                        arguments: Vec::new(),
                        directives: Vec::new(),
                        selection_set: q::SelectionSet {
                            span: root.selection_set.span,
                            items: Vec::new(),
                        },
                    };
                    reads.push(read_field(
                        PROBE,
                        q::SelectionSet {
                            span: root.selection_set.span,
                            items: vec![q::Selection::Field(probe)],
                        },
                    ));
                    record_keys.push(PROBE.to_owned());
                }
                Some(Watch {
                    ids,
                    event_type,
                    payload,
                    record_keys,
                })
            }
        };
        let selections = q::SelectionSet {
            span: subscription.selection_set.span,
            items: reads.into_iter().map(q::Selection::Field).collect(),
        };
        // Only the fragments and variables the read uses: an unused one fails validation.
        let mut used_fragments = Vec::new();
        collect_fragments(&selections, &fragments, &mut used_fragments);
        let mut used_variables = HashSet::new();
        variables_in_selections(&selections, &mut used_variables);
        for name in &used_fragments {
            if let Some(fragment) = fragments.get(name.as_str()) {
                variables_in_selections(&fragment.selection_set, &mut used_variables);
                variables_in_directives(&fragment.directives, &mut used_variables);
            }
        }
        let mut definitions: Vec<q::VariableDefinition<'static, String>> = subscription
            .variable_definitions
            .iter()
            .filter(|v| used_variables.contains(&v.name))
            .cloned()
            .collect();
        definitions.push(q::VariableDefinition {
            position: subscription.position,
            name: ID_VARIABLE.to_owned(),
            var_type: q::Type::NonNullType(Box::new(q::Type::NamedType("ID".to_owned()))),
            default_value: None,
        });
        let read_variables: Map<String, Value> = variables
            .iter()
            .filter(|(name, _)| used_variables.contains(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let mut read = q::Document {
            definitions: vec![q::Definition::Operation(q::OperationDefinition::Query(
                q::Query {
                    position: subscription.position,
                    name: Some(format!("Live_{}", live.name)),
                    variable_definitions: definitions,
                    directives: Vec::new(),
                    selection_set: selections,
                },
            ))],
        };
        for name in &used_fragments {
            if let Some(fragment) = fragments.get(name.as_str()) {
                read.definitions
                    .push(q::Definition::Fragment((*fragment).clone()));
            }
        }
        Ok(Self {
            field: live.name,
            record_type: live.record_type,
            key,
            watch,
            read: read.to_string(),
            variables: read_variables,
        })
    }

    /// The subscription field (`orderChanged`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The query that reads one record as the subscriber.
    pub fn read_query(&self) -> &str {
        &self.read
    }

    fn read_variables(&self, id: &str) -> Value {
        let mut variables = self.variables.clone();
        variables.insert(ID_VARIABLE.to_owned(), json!(id));
        Value::Object(variables)
    }
}

/// The fields of a selection set, through inline fragments and fragment spreads. A
/// conditional selection (`@include`, `@skip`) of an event's own fields is refused: they
/// are decided once, not per event.
fn fields_of<'d>(
    selections: &'d Selections,
    fragments: &HashMap<&str, &'d q::FragmentDefinition<'static, String>>,
) -> Result<Vec<&'d q::Field<'static, String>>, (ErrorCode, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<(&Selections, usize)> = vec![(selections, 0)];
    while let Some((set, depth)) = stack.pop() {
        if depth > 16 {
            return Err(refuse("fragments nest too deep"));
        }
        for item in &set.items {
            match item {
                q::Selection::Field(field) => {
                    if !field.directives.is_empty() {
                        return Err(refuse(format!(
                            "directives on {} are not supported: put them inside the record's selection",
                            field.name
                        )));
                    }
                    out.push(field);
                }
                q::Selection::InlineFragment(fragment) => {
                    stack.push((&fragment.selection_set, depth + 1));
                }
                q::Selection::FragmentSpread(spread) => {
                    let fragment = fragments
                        .get(spread.fragment_name.as_str())
                        .ok_or_else(|| refuse(format!("no fragment {}", spread.fragment_name)))?;
                    stack.push((&fragment.selection_set, depth + 1));
                }
            }
        }
    }
    Ok(out)
}

fn response_key(field: &q::Field<'static, String>) -> String {
    field.alias.clone().unwrap_or_else(|| field.name.clone())
}

/// The watched ids: the `ids` argument, literal or a variable; 1 to [`MAX_WATCHED`],
/// repeated ones once.
fn ids_argument(
    field: &q::Field<'static, String>,
    variables: &Map<String, Value>,
) -> Result<Vec<String>, (ErrorCode, String)> {
    let given = field
        .arguments
        .iter()
        .find(|(name, _)| name == "ids")
        .map(|(_, value)| value)
        .ok_or_else(|| refuse("ids: required"))?;
    let values: Vec<Value> = match given {
        q::Value::Variable(name) => match variables.get(name) {
            Some(Value::Array(values)) => values.clone(),
            Some(Value::String(one)) => vec![json!(one)],
            _ => return Err(refuse(format!("ids: ${name} must be a list of ids"))),
        },
        q::Value::List(values) => values
            .iter()
            .map(|v| match v {
                q::Value::String(s) => Ok(json!(s)),
                q::Value::Int(n) => Ok(json!(n.as_i64().unwrap_or_default().to_string())),
                q::Value::Variable(name) => Ok(variables.get(name).cloned().unwrap_or(Value::Null)),
                _ => Err(refuse("ids: each must be an id")),
            })
            .collect::<Result<_, _>>()?,
        q::Value::String(one) => vec![json!(one)],
        _ => return Err(refuse("ids: must be a list of ids")),
    };
    let mut ids: Vec<String> = Vec::new();
    for value in values {
        let id = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => return Err(refuse("ids: each must be an id")),
        };
        if id.is_empty() || id.len() > 100 {
            return Err(refuse("ids: each must be an id of 1 to 100 characters"));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > MAX_WATCHED {
        return Err(refuse(format!("ids: give 1 to {MAX_WATCHED} ids")));
    }
    Ok(ids)
}

fn collect_fragments(
    selections: &Selections,
    fragments: &HashMap<&str, &q::FragmentDefinition<'static, String>>,
    out: &mut Vec<String>,
) {
    for item in &selections.items {
        match item {
            q::Selection::Field(field) => collect_fragments(&field.selection_set, fragments, out),
            q::Selection::InlineFragment(fragment) => {
                collect_fragments(&fragment.selection_set, fragments, out)
            }
            q::Selection::FragmentSpread(spread) => {
                if out.contains(&spread.fragment_name) {
                    continue;
                }
                out.push(spread.fragment_name.clone());
                if let Some(fragment) = fragments.get(spread.fragment_name.as_str()) {
                    collect_fragments(&fragment.selection_set, fragments, out);
                }
            }
        }
    }
}

fn variables_in_selections(selections: &Selections, out: &mut HashSet<String>) {
    for item in &selections.items {
        match item {
            q::Selection::Field(field) => {
                for (_, value) in &field.arguments {
                    variables_in_value(value, out);
                }
                variables_in_directives(&field.directives, out);
                variables_in_selections(&field.selection_set, out);
            }
            q::Selection::InlineFragment(fragment) => {
                variables_in_directives(&fragment.directives, out);
                variables_in_selections(&fragment.selection_set, out);
            }
            q::Selection::FragmentSpread(spread) => {
                variables_in_directives(&spread.directives, out)
            }
        }
    }
}

fn variables_in_directives(
    directives: &[q::Directive<'static, String>],
    out: &mut HashSet<String>,
) {
    for directive in directives {
        for (_, value) in &directive.arguments {
            variables_in_value(value, out);
        }
    }
}

fn variables_in_value(value: &q::Value<'static, String>, out: &mut HashSet<String>) {
    match value {
        q::Value::Variable(name) => {
            out.insert(name.clone());
        }
        q::Value::List(values) => values.iter().for_each(|v| variables_in_value(v, out)),
        q::Value::Object(fields) => fields.iter().for_each(|(_, v)| variables_in_value(v, out)),
        _ => {}
    }
}

/// Why a stream ended early: its answer is one last event with this error.
#[derive(Clone, Debug)]
pub struct Ended {
    pub code: ErrorCode,
    pub message: String,
}

impl Ended {
    /// The gateway is stopping: the stream ends, and the client subscribes again.
    pub fn stopping() -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: "the gateway is stopping; subscribe again".into(),
        }
    }

    /// The stream's last event.
    pub fn payload(&self) -> Value {
        json!({ "errors": [{ "message": self.message, "extensions": { "code": self.code.as_str() } }] })
    }
}

/// Reads as the subscriber, now: the door is asked again before every read, so a caller
/// it no longer lets in ends the stream.
pub trait LiveReader: Send + Sync + 'static {
    fn read<'a>(
        &'a self,
        query: &'a str,
        variables: Value,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Value, Ended>> + Send + 'a>>;

    /// Asks the door only: `Err` when it no longer lets the subscriber in.
    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Ended>> + Send + '_>>;
}

/// What a running subscription sends: an event (a GraphQL response), or the last one.
#[derive(Clone, Debug)]
pub enum Emit {
    Next(Value),
    /// The stream is over; the value is its last event (an error).
    End(Value),
}

/// How many events a stream holds for a slow client before its reads wait.
const STREAM_BUFFER: usize = 64;

/// Runs `live` for one subscriber until the receiver is dropped or the stream ends.
pub fn run(
    live: LiveQuery,
    reader: Arc<dyn LiveReader>,
    changes: broadcast::Receiver<Signal>,
) -> mpsc::Receiver<Emit> {
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let outcome = match &live.watch {
            Some(watch) => watch_records(&live, watch, reader.as_ref(), changes, &sender).await,
            None => arrivals(&live, reader.as_ref(), changes, &sender).await,
        };
        if let Err(ended) = outcome {
            let _ = sender.send(Emit::End(ended.payload())).await;
        }
    });
    receiver
}

/// A read's outcome for deciding: the view (the read's data, `None` when the record is not
/// in view), or errors to pass on (a service that could not answer) with the view kept.
enum Read {
    View(Option<Map<String, Value>>),
    Failed(Value),
}

fn decide_read(answer: Value, record_keys: &[String]) -> Read {
    let errors: Vec<Value> = answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                // A record out of view may answer NOT_FOUND instead of null: the same.
                .filter(|e| e["extensions"]["code"] != "NOT_FOUND")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !errors.is_empty() {
        return Read::Failed(json!({ "data": null, "errors": errors }));
    }
    let data = answer["data"].as_object().cloned().unwrap_or_default();
    let in_view = record_keys
        .iter()
        .any(|key| data.get(key).is_some_and(|v| !v.is_null()));
    Read::View(in_view.then_some(data))
}

async fn watch_records(
    live: &LiveQuery,
    watch: &Watch,
    reader: &dyn LiveReader,
    mut changes: broadcast::Receiver<Signal>,
    sender: &mpsc::Sender<Emit>,
) -> Result<(), Ended> {
    // The baseline: each watched record's view now, sent as CURRENT when in view.
    let mut views: HashMap<&str, Option<Map<String, Value>>> = HashMap::new();
    for id in &watch.ids {
        let answer = reader.read(&live.read, live.read_variables(id)).await?;
        match decide_read(answer, &watch.record_keys) {
            Read::View(view) => {
                let current = view
                    .as_ref()
                    .map(|view| watch_payload(live, watch, id, "CURRENT", Vec::new(), Some(view)));
                views.insert(id, view);
                if let Some(event) = current
                    && sender.send(Emit::Next(event)).await.is_err()
                {
                    return Ok(());
                }
            }
            Read::Failed(errors) => {
                if sender.send(Emit::Next(errors)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    loop {
        let stale: Vec<&str> = tokio::select! {
            _ = sender.closed() => return Ok(()),
            signal = changes.recv() => match signal {
                Ok(Signal::Changed { record_type, id }) => {
                    match watch.ids.iter().find(|w| **w == id) {
                        Some(id) if record_type == live.record_type => vec![id.as_str()],
                        _ => continue,
                    }
                }
                Ok(Signal::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    watch.ids.iter().map(String::as_str).collect()
                }
                Ok(Signal::Credentials) => {
                    reader.check().await?;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(Ended::stopping()),
            },
        };
        for id in stale {
            let answer = reader.read(&live.read, live.read_variables(id)).await?;
            let now = match decide_read(answer, &watch.record_keys) {
                Read::View(view) => view,
                Read::Failed(errors) => {
                    if sender.send(Emit::Next(errors)).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
            };
            // A record whose first read failed is compared with "not in view".
            let before = views.get(id).cloned().flatten();
            let Some(event) = watch_event(live, watch, id, before.as_ref(), now.as_ref()) else {
                continue;
            };
            views.insert(id, now);
            if sender.send(Emit::Next(event)).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The event for one record's views before and now, or `None` when its view is the same.
fn watch_event(
    live: &LiveQuery,
    watch: &Watch,
    id: &str,
    before: Option<&Map<String, Value>>,
    now: Option<&Map<String, Value>>,
) -> Option<Value> {
    let (change, changed) = match (before, now) {
        (None, None) => return None,
        (Some(before), Some(now)) if before == now => return None,
        (None, Some(_)) => ("ADDED", Vec::new()),
        (Some(_), None) => ("REMOVED", Vec::new()),
        (Some(before), Some(now)) => ("UPDATED", changed_fields(before, now)),
    };
    Some(watch_payload(live, watch, id, change, changed, now))
}

/// A watch event with the fields the subscription selected.
fn watch_payload(
    live: &LiveQuery,
    watch: &Watch,
    id: &str,
    change: &str,
    changed: Vec<String>,
    now: Option<&Map<String, Value>>,
) -> Value {
    let mut event = Map::new();
    for (key, field) in &watch.payload {
        let value = match field {
            PayloadField::Change => json!(change),
            PayloadField::RecordId => json!(id),
            PayloadField::Changed => json!(changed),
            PayloadField::Typename => json!(watch.event_type),
            PayloadField::Record => now
                .and_then(|view| view.get(key))
                .cloned()
                .unwrap_or(Value::Null),
        };
        event.insert(key.clone(), value);
    }
    json!({ "data": { live.key.clone(): event } })
}

/// The fields (by response key) of the record's selections whose values differ.
fn changed_fields(before: &Map<String, Value>, now: &Map<String, Value>) -> Vec<String> {
    let mut changed: Vec<String> = Vec::new();
    for (root, value) in now {
        let empty = Map::new();
        let was = before
            .get(root)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let Some(is) = value.as_object() else {
            continue;
        };
        for (field, value) in is {
            if was.get(field) != Some(value) && !changed.contains(field) {
                changed.push(field.clone());
            }
        }
    }
    changed
}

/// How many arrivals a stream remembers having sent (the bus delivers at least once).
const REMEMBERED_ARRIVALS: usize = 1024;

async fn arrivals(
    live: &LiveQuery,
    reader: &dyn LiveReader,
    mut changes: broadcast::Receiver<Signal>,
    sender: &mpsc::Sender<Emit>,
) -> Result<(), Ended> {
    // Asked once at the start, so a subscriber the door refuses hears it at once.
    reader.check().await?;
    let mut sent: std::collections::VecDeque<String> = Default::default();
    loop {
        let id = tokio::select! {
            _ = sender.closed() => return Ok(()),
            signal = changes.recv() => match signal {
                Ok(Signal::Changed { record_type, id }) if record_type == live.record_type => id,
                Ok(Signal::Credentials) => {
                    reader.check().await?;
                    continue;
                }
                Ok(_) => continue,
                // What was written while this stream lagged is in the caller's list.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Err(Ended::stopping()),
            },
        };
        if sent.contains(&id) {
            continue;
        }
        let answer = reader.read(&live.read, live.read_variables(&id)).await?;
        let event = match decide_read(answer, std::slice::from_ref(&live.key)) {
            Read::View(None) => continue,
            Read::View(Some(data)) => json!({ "data": data }),
            Read::Failed(errors) => errors,
        };
        if sent.len() == REMEMBERED_ARRIVALS {
            sent.pop_front();
        }
        sent.push_back(id);
        if sender.send(Emit::Next(event)).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(query: &str, variables: Value) -> Result<LiveQuery, (ErrorCode, String)> {
        let document = graphql_tools::parser::parse_query::<String>(query)
            .map(|d| d.into_static())
            .map_err(|e| refuse(e.to_string()))?;
        let Value::Object(variables) = variables else {
            return Err(refuse("variables"));
        };
        LiveQuery::prepare(&document, None, &variables)
    }

    #[test]
    fn the_read_query_selects_the_record_as_the_subscription_does() {
        let live = prepare(
            "subscription S($ids: [ID!]!, $n: Int, $unused: Int) { orderChanged(ids: $ids) { \
               change kind: __typename o: order { status lines(first: $n) { nodes { ...L } } } } } \
             fragment L on OrderLine { quantity } fragment Unused on Order { id }",
            json!({ "ids": ["o1", "o1", "o2"], "n": 5, "unused": 1 }),
        )
        .expect("prepared");
        let watch = live.watch.as_ref().expect("a watch");
        assert_eq!(watch.ids, ["o1", "o2"]);
        assert_eq!(watch.record_keys, ["o"]);
        let read = live.read_query();
        assert!(
            read.contains("query Live_orderChanged($n: Int, $crmLiveId: ID!)"),
            "{read}"
        );
        assert!(read.contains("o: order(id: $crmLiveId)"), "{read}");
        assert!(read.contains("fragment L on OrderLine"), "{read}");
        assert!(!read.contains("Unused") && !read.contains("$ids"), "{read}");
        assert_eq!(
            live.read_variables("o2"),
            json!({ "n": 5, "crmLiveId": "o2" })
        );
    }

    #[test]
    fn a_watch_without_the_record_still_probes_whether_it_is_in_view() {
        let live = prepare(
            "subscription { orderChanged(ids: [\"o1\"]) { change orderId } }",
            json!({}),
        )
        .expect("prepared");
        assert!(
            live.read_query()
                .contains("crmLiveProbe: order(id: $crmLiveId)")
        );
    }

    #[test]
    fn events_describe_the_view_and_nothing_else() {
        let live = prepare(
            "subscription { orderChanged(ids: [\"o1\"]) { change orderId changed order { status total } } }",
            json!({}),
        )
        .expect("prepared");
        let watch = live.watch.as_ref().expect("a watch");
        let view = |status: &str| {
            json!({ "order": { "status": status, "total": null } })
                .as_object()
                .cloned()
        };
        let (open, shipped) = (view("OPEN"), view("SHIPPED"));
        assert_eq!(
            watch_event(&live, watch, "o1", open.as_ref(), open.as_ref()),
            None
        );
        assert_eq!(watch_event(&live, watch, "o1", None, None), None);
        assert_eq!(
            watch_event(&live, watch, "o1", open.as_ref(), shipped.as_ref()),
            Some(json!({ "data": { "orderChanged": {
                "change": "UPDATED", "orderId": "o1", "changed": ["status"],
                "order": { "status": "SHIPPED", "total": null } } } }))
        );
        assert_eq!(
            watch_event(&live, watch, "o1", open.as_ref(), None),
            Some(json!({ "data": { "orderChanged": {
                "change": "REMOVED", "orderId": "o1", "changed": [], "order": null } } }))
        );
        assert_eq!(
            watch_event(&live, watch, "o1", None, open.as_ref())
                .map(|e| e["data"]["orderChanged"]["change"].clone()),
            Some(json!("ADDED"))
        );
    }

    #[test]
    fn bad_subscriptions_are_refused_with_a_reason() {
        for (query, variables, says) in [
            (
                "subscription { orderChanged(ids: []) { change } }",
                json!({}),
                "1 to 100",
            ),
            (
                "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change } }",
                json!({ "ids": 5 }),
                "list of ids",
            ),
            (
                "subscription { orderChanged(ids: [\"a\"]) { change @skip(if: true) } }",
                json!({}),
                "directives",
            ),
            (
                "subscription($crmLiveId: ID) { notificationReceived { id } }",
                json!({}),
                "reserved",
            ),
            (
                "subscription { orderChanged(ids: [\"a\"]) { crmLiveProbe: order { id } } }",
                json!({}),
                "reserved",
            ),
        ] {
            let Err((_, message)) = prepare(query, variables) else {
                panic!("{query} was accepted");
            };
            assert!(message.contains(says), "{query}: {message}");
        }
        let many: Vec<String> = (0..=MAX_WATCHED).map(|i| format!("o{i}")).collect();
        assert!(
            prepare(
                "subscription($ids: [ID!]!) { orderChanged(ids: $ids) { change } }",
                json!({ "ids": many })
            )
            .is_err()
        );
    }

    #[test]
    fn a_service_error_is_passed_on_and_not_found_is_out_of_view() {
        let keys = ["order".to_owned()];
        let hidden = json!({ "data": { "order": null }, "errors": [{ "message": "no", "extensions": { "code": "NOT_FOUND" } }] });
        assert!(matches!(decide_read(hidden, &keys), Read::View(None)));
        let down = json!({ "data": { "order": null }, "errors": [{ "message": "down", "extensions": { "code": "SUBGRAPH_REQUEST_FAILURE" } }] });
        assert!(matches!(decide_read(down, &keys), Read::Failed(_)));
    }
}
