//! The records staff work on, one way for every type: a list with search, a page, and the
//! create, edit and archive forms of accounts, contacts, leads, opportunities, cases,
//! partners (with their territories) and territories. Each kind is a table of its fields
//! ([`Kind`]); the forms show the API's field errors next to the field, explain a version
//! conflict in words with the value saved meanwhile under each field, and offer only what
//! the record's `may` grants (the fields of `updateFields`, archive where `archive`).

use askama::Template;
use axum::extract::{Path, Query};
use chrono::{DateTime, NaiveDate};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::client::{ApiFailure, FieldError};
use super::super::{Chrome, Ctx, FormErrors, InApp, PageResult, Signed, refused_if, render};
use super::app::{LIFECYCLE, OPPORTUNITY_STAGES, SEGMENTS, TIERS};
use super::interactions::CHANNELS;
use super::workspace::TaskRow;
use super::{
    Choice, PageInfo, When, choices, field, pager, param, plausible_id, posted, posted_about, words,
};

/// How a field is typed in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Input {
    Text,
    Long,
    Email,
    Tel,
    Whole,
    Decimal,
    Day,
    /// A moment, typed as the user's wall clock.
    Moment,
    Pick(&'static [&'static str]),
    /// An account, found by name.
    Account,
    /// A contact, found by name.
    Contact,
    Partner,
    Territory,
    /// A staff member who owns the record.
    Owner,
}

/// One field of a kind's input.
pub(crate) struct Field {
    /// The input's field (and the error's field).
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    /// Where the record's answer holds the value, when not at `name`: a selection and the
    /// path into it.
    read: Option<(&'static str, &'static [&'static str])>,
    /// Only on create (later changes go through the record's own page, e.g. a case's
    /// status machine).
    create_only: bool,
}

const fn f(name: &'static str, label: &'static str, input: Input) -> Field {
    Field {
        name,
        label,
        input,
        read: None,
        create_only: false,
    }
}

impl Field {
    const fn at(mut self, selection: &'static str, path: &'static [&'static str]) -> Self {
        self.read = Some((selection, path));
        self
    }
    const fn on_create(mut self) -> Self {
        self.create_only = true;
        self
    }
    fn selection(&self) -> &'static str {
        self.read.map_or(self.name, |(s, _)| s)
    }
    fn value_in(&self, record: &Value) -> String {
        let mut at = record;
        match self.read {
            Some((_, path)) => {
                for step in path {
                    at = &at[*step];
                }
            }
            None => at = &at[self.name],
        }
        match (at, self.input) {
            (Value::String(s), Input::Moment) => DateTime::parse_from_rfc3339(s)
                .map(|t| {
                    t.with_timezone(&super::super::zone())
                        .format("%Y-%m-%dT%H:%M")
                        .to_string()
                })
                .unwrap_or_default(),
            (Value::String(s), _) => s.clone(),
            (Value::Number(n), _) => n.to_string(),
            (Value::Bool(b), _) => b.to_string(),
            _ => String::new(),
        }
    }
}

/// A column of a kind's list.
pub(crate) struct Column {
    label: &'static str,
    path: &'static [&'static str],
    /// Money (`{ amount currency }`), a moment, a day, an enum: how to show it.
    show: Show,
}

const fn col(label: &'static str, path: &'static [&'static str], show: Show) -> Column {
    Column { label, path, show }
}

#[derive(Clone, Copy)]
enum Show {
    Text,
    Words,
    Money,
    Day,
}

/// A record type staff work on.
pub(crate) struct Kind {
    /// The policy's and the API's type.
    pub ty: &'static str,
    pub noun: &'static str,
    pub plural: &'static str,
    /// The list's path; a record's page is `{base}/{id}`.
    pub base: &'static str,
    /// The API's root field for one record, and its mutations' suffix (`createAccount`).
    one: &'static str,
    fields: &'static [Field],
    /// What a list row selects, and its columns (the first links to the record).
    list_selection: &'static str,
    columns: &'static [Column],
    /// The order of the list (an `…OrderField` value).
    list_order: &'static str,
    /// What names a record (a field of the answer, for titles).
    title: &'static [&'static str],
    /// What a new record's form starts with (the common choice, changeable).
    defaults: &'static [(&'static str, &'static str)],
}

const LEAD_SOURCES: &[&str] = &["WEB", "REFERRAL", "EVENT", "PARTNER", "OUTBOUND", "OTHER"];
/// The statuses a form may set (conversion has its own form).
const LEAD_STATUSES: &[&str] = &["NEW", "WORKING", "QUALIFIED", "DISQUALIFIED"];
const FORECAST_CATEGORIES: &[&str] = &["PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED"];
const CASE_PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "URGENT"];
const PARTNER_KINDS: &[&str] = &["SUPPLIER", "DISTRIBUTOR"];
const PARTNER_TIERS: &[&str] = &["PLATINUM", "GOLD", "SILVER", "REGISTERED"];

pub(crate) static ACCOUNT: Kind = Kind {
    ty: "Account",
    noun: "account",
    plural: "Accounts",
    base: "/app/accounts",
    one: "Account",
    fields: &[
        f("name", "Name", Input::Text),
        f("domain", "Web domain", Input::Text),
        f("industry", "Industry", Input::Text),
        f("segment", "Segment", Input::Pick(SEGMENTS)),
        f("tier", "Tier", Input::Pick(TIERS)),
        f("lifecycleStage", "Lifecycle", Input::Pick(LIFECYCLE)),
        f("territoryId", "Territory", Input::Territory)
            .at("territory { id }", &["territory", "id"]),
        f("ownerUserId", "Owner", Input::Owner),
        f("internalNote", "Internal note", Input::Long),
    ],
    list_selection: "",
    columns: &[],
    list_order: "NAME",
    title: &["name"],
    defaults: &[
        ("segment", "SMB"),
        ("tier", "STANDARD"),
        ("lifecycleStage", "PROSPECT"),
    ],
};

pub(crate) static CONTACT: Kind = Kind {
    ty: "Contact",
    noun: "contact",
    plural: "Contacts",
    base: "/app/contacts",
    one: "Contact",
    fields: &[
        f("accountId", "Account", Input::Account),
        f("firstName", "First name", Input::Text),
        f("lastName", "Last name", Input::Text),
        f("title", "Job title", Input::Text),
        f("email", "Email", Input::Email),
        f("phone", "Phone", Input::Tel),
    ],
    list_selection: "fullName email phone account { id name }",
    columns: &[
        col("Name", &["fullName"], Show::Text),
        col("Account", &["account", "name"], Show::Text),
        col("Email", &["email"], Show::Text),
        col("Phone", &["phone"], Show::Text),
    ],
    list_order: "LAST_NAME",
    title: &["fullName"],
    defaults: &[],
};

pub(crate) static LEAD: Kind = Kind {
    ty: "Lead",
    noun: "lead",
    plural: "Leads",
    base: "/app/leads",
    one: "Lead",
    fields: &[
        f("firstName", "First name", Input::Text),
        f("lastName", "Last name", Input::Text),
        f("company", "Company", Input::Text),
        f("email", "Email", Input::Email),
        f("phone", "Phone", Input::Tel),
        f("source", "Source", Input::Pick(LEAD_SOURCES)),
        f("status", "Status", Input::Pick(LEAD_STATUSES)),
        f("ownerUserId", "Owner", Input::Owner),
    ],
    list_selection: "firstName lastName company source status score",
    columns: &[
        col("Company", &["company"], Show::Text),
        col("Last name", &["lastName"], Show::Text),
        col("Source", &["source"], Show::Words),
        col("Status", &["status"], Show::Words),
        col("Score", &["score"], Show::Text),
    ],
    list_order: "SCORE",
    title: &["company"],
    defaults: &[("status", "NEW")],
};

pub(crate) static OPPORTUNITY: Kind = Kind {
    ty: "Opportunity",
    noun: "opportunity",
    plural: "Opportunities",
    base: "/app/opportunities",
    one: "Opportunity",
    fields: &[
        f("accountId", "Account", Input::Account),
        f("name", "Name", Input::Text),
        f("stage", "Stage", Input::Pick(OPPORTUNITY_STAGES)),
        f("amount", "Amount", Input::Decimal).at("amount { amount }", &["amount", "amount"]),
        f("currency", "Currency (ISO code)", Input::Text)
            .at("amount { currency }", &["amount", "currency"]),
        f("probability", "Probability (%)", Input::Whole),
        f("expectedClose", "Expected close", Input::Day),
        f(
            "forecastCategory",
            "Forecast category",
            Input::Pick(FORECAST_CATEGORIES),
        ),
        f("ownerUserId", "Owner", Input::Owner),
    ],
    list_selection: "name stage expectedClose closeOverdue amount { amount currency } account { id name }",
    columns: &[
        col("Name", &["name"], Show::Text),
        col("Account", &["account", "name"], Show::Text),
        col("Stage", &["stage"], Show::Words),
        col("Amount", &["amount"], Show::Money),
        col("Expected close", &["expectedClose"], Show::Day),
    ],
    list_order: "UPDATED_AT",
    title: &["name"],
    defaults: &[("stage", "PROSPECTING"), ("currency", "EUR")],
};

pub(crate) static CASE: Kind = Kind {
    ty: "Case",
    noun: "case",
    plural: "Cases",
    base: "/app/cases",
    one: "Case",
    fields: &[
        f("accountId", "Account", Input::Account),
        f("contactId", "Contact", Input::Contact),
        f("partnerId", "Partner involved", Input::Partner),
        f("subject", "Subject", Input::Text),
        f("description", "Description", Input::Long),
        f("priority", "Priority", Input::Pick(CASE_PRIORITIES)),
        f("channel", "Channel", Input::Pick(CHANNELS)).on_create(),
        f("slaDueAt", "Respond by (your time)", Input::Moment),
        f("ownerUserId", "Owner", Input::Owner),
    ],
    list_selection: "",
    columns: &[],
    list_order: "UPDATED_AT",
    title: &["subject"],
    defaults: &[("priority", "MEDIUM"), ("channel", "EMAIL")],
};

pub(crate) static PARTNER: Kind = Kind {
    ty: "Partner",
    noun: "partner",
    plural: "Partners",
    base: "/app/admin/partners",
    one: "Partner",
    fields: &[
        f("name", "Name", Input::Text),
        f("kind", "Kind", Input::Pick(PARTNER_KINDS)).on_create(),
        f("tier", "Tier", Input::Pick(PARTNER_TIERS)),
    ],
    list_selection: "",
    columns: &[],
    list_order: "NAME",
    title: &["name"],
    defaults: &[("tier", "REGISTERED")],
};

pub(crate) static TERRITORY: Kind = Kind {
    ty: "Territory",
    noun: "territory",
    plural: "Territories",
    base: "/app/admin/territories",
    one: "Territory",
    fields: &[
        f("code", "Code", Input::Text),
        f("name", "Name", Input::Text),
    ],
    list_selection: "code name",
    columns: &[
        col("Name", &["name"], Show::Text),
        col("Code", &["code"], Show::Text),
    ],
    list_order: "NAME",
    title: &["name"],
    defaults: &[],
};

/// A kind as a type, so one generic handler serves each kind's routes.
pub(crate) trait Of: Send + Sync + 'static {
    const KIND: &'static Kind;
}

macro_rules! kinds {
    ($($marker:ident => $kind:ident),* $(,)?) => {
        $(
            pub(crate) struct $marker;
            impl Of for $marker {
                const KIND: &'static Kind = &$kind;
            }
        )*
    };
}

kinds!(
    Accounts => ACCOUNT,
    Contacts => CONTACT,
    Leads => LEAD,
    Opportunities => OPPORTUNITY,
    Cases => CASE,
    Partners => PARTNER,
    Territories => TERRITORY,
);

impl Kind {
    fn page_of(&self, id: &str) -> String {
        match self.ty {
            // Partners have no page of their own: their list is where they are changed.
            "Partner" | "Territory" => self.base.to_owned(),
            _ => format!("{}/{id}", self.base),
        }
    }
    /// Where a list row leads: the record's page, or its form where it has no page.
    fn row_link(&self, id: &str) -> String {
        match self.ty {
            "Partner" | "Territory" => format!("{}/{id}/edit", self.base),
            _ => format!("{}/{id}", self.base),
        }
    }
    fn form_fields(&self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
        if self.ty == "Partner" {
            names.push("territoryIds");
        }
        names
    }
    /// The selection that reads a record back for its form.
    fn form_selection(&self) -> String {
        let mut selection: Vec<&str> = vec!["id", "version", "may { update updateFields archive }"];
        selection.extend(self.fields.iter().map(Field::selection));
        selection.extend(self.title.iter().copied());
        if self.ty == "Partner" {
            selection.push("territories { id }");
        }
        if self.ty == "Contact" || self.ty == "Opportunity" || self.ty == "Case" {
            selection.push("account { id name }");
        }
        selection.join(" ")
    }
    fn title_of(&self, record: &Value) -> String {
        self.title
            .iter()
            .filter_map(|field| record[*field].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One input of a rendered form.
pub(crate) struct Row {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `textarea`, `select`, `email`, `tel`, `number`, `date`,
    /// `datetime-local`, `lookup` (a text box with suggestions), `checks`.
    pub control: &'static str,
    pub value: String,
    pub options: Vec<Choice>,
    pub editable: bool,
    pub error: Option<String>,
    /// The value someone else saved meanwhile, where it differs from what is in the form.
    pub meanwhile: Option<String>,
    /// For a lookup: what the current value names.
    pub names: Option<String>,
    /// For a lookup: where its suggestions come from.
    pub lookup: &'static str,
}

#[derive(Template)]
#[template(path = "app/record_form.html")]
struct FormPage {
    chrome: Chrome,
    action: String,
    cancel: String,
    version: i64,
    rows: Vec<Row>,
    general: Option<String>,
    conflict: Option<String>,
    read_only: Vec<String>,
}

/// What the form's choices come from: territories, partners, and the names behind ids.
#[derive(Default)]
struct Options {
    territories: Vec<(String, String)>,
    partners: Vec<(String, String)>,
}

/// A record (when `id` is given) and the choices of its form, in one operation.
async fn load(
    ctx: &Ctx,
    kind: &Kind,
    id: Option<&str>,
) -> Result<(Option<Value>, Options), ApiFailure> {
    if id.is_some_and(|id| !plausible_id(id)) {
        return Err(ApiFailure::NotFound);
    }
    let needs = |input: Input| kind.fields.iter().any(|f| f.input == input);
    let territories = needs(Input::Territory) || kind.ty == "Partner";
    let partners = needs(Input::Partner);
    if id.is_none() && !territories && !partners {
        return Ok((None, Options::default()));
    }
    let data: Value = ctx
        .api(
            &format!(
                "query($id: ID!, $r: Boolean!, $t: Boolean!, $p: Boolean!) {{ record: {root}(id: $id) @include(if: $r) {{ {selection} }} territories(first: 200) @include(if: $t) {{ nodes {{ id name }} }} partners(first: 200) @include(if: $p) {{ nodes {{ id name }} }} }}",
                root = lower_first(kind.one),
                selection = kind.form_selection()
            ),
            json!({ "id": id.unwrap_or(""), "r": id.is_some(), "t": territories, "p": partners }),
        )
        .await?;
    let pairs = |list: &str| -> Vec<(String, String)> {
        data[list]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    n["id"].as_str().unwrap_or_default().to_owned(),
                    n["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let options = Options {
        territories: pairs("territories"),
        partners: pairs("partners"),
    };
    match (id, &data["record"]) {
        (None, _) => Ok((None, options)),
        (Some(_), Value::Null) => Err(ApiFailure::NotFound),
        (Some(_), record) => Ok((Some(record.clone()), options)),
    }
}

/// The values a form shows, by field name.
type Values = Map<String, Value>;

fn text_of(values: &Values, name: &str) -> String {
    match values.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// Builds the rows of a form.
struct Builder<'a> {
    ctx: &'a Ctx,
    kind: &'static Kind,
    options: Options,
    creating: bool,
    /// The record as saved (for an edit), for the names behind ids.
    record: Option<&'a Value>,
    /// The fields the caller may change (None: all).
    updatable: Option<Vec<String>>,
}

impl Builder<'_> {
    fn rows(&self, values: &Values, errors: &FormErrors, saved: Option<&Values>) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .kind
            .fields
            .iter()
            .filter(|field| self.creating || !field.create_only)
            .map(|field| {
                let value = text_of(values, field.name);
                let editable = self.creating
                    || self
                        .updatable
                        .as_ref()
                        .is_none_or(|fields| fields.iter().any(|f| f == field.name));
                let meanwhile = saved
                    .map(|saved| text_of(saved, field.name))
                    .filter(|now| editable && *now != value)
                    .map(|now| {
                        if now.is_empty() {
                            "(empty)".into()
                        } else {
                            now
                        }
                    });
                self.row(field, value, editable, errors.get(field.name), meanwhile)
            })
            .collect();
        if self.kind.ty == "Partner" {
            let chosen = text_of(values, "territoryIds");
            let chosen: Vec<&str> = chosen.split(',').collect();
            rows.push(Row {
                name: "territoryIds",
                label: "Territories it covers",
                control: "checks",
                value: String::new(),
                options: self
                    .options
                    .territories
                    .iter()
                    .map(|(id, name)| Choice {
                        value: id.clone(),
                        label: name.clone(),
                        selected: chosen.contains(&id.as_str()),
                    })
                    .collect(),
                editable: true,
                error: errors.get("territoryIds").map(str::to_owned),
                meanwhile: None,
                names: None,
                lookup: "",
            });
        }
        rows
    }

    fn row(
        &self,
        field: &Field,
        value: String,
        editable: bool,
        error: Option<&str>,
        meanwhile: Option<String>,
    ) -> Row {
        let pick = |pairs: &[(String, String)], none: &str| -> Vec<Choice> {
            std::iter::once(Choice {
                value: String::new(),
                label: none.to_owned(),
                selected: value.is_empty(),
            })
            .chain(pairs.iter().map(|(id, name)| Choice {
                value: id.clone(),
                label: name.clone(),
                selected: *id == value,
            }))
            .collect()
        };
        let (control, options, lookup) = match field.input {
            Input::Text | Input::Decimal => ("text", Vec::new(), ""),
            Input::Long => ("textarea", Vec::new(), ""),
            Input::Email => ("email", Vec::new(), ""),
            Input::Tel => ("tel", Vec::new(), ""),
            Input::Whole => ("number", Vec::new(), ""),
            Input::Day => ("date", Vec::new(), ""),
            Input::Moment => ("datetime-local", Vec::new(), ""),
            Input::Pick(values) => (
                "select",
                std::iter::once(Choice {
                    value: String::new(),
                    label: "—".into(),
                    selected: value.is_empty(),
                })
                .chain(choices(values, &Some(value.clone())))
                .collect(),
                "",
            ),
            Input::Territory => ("select", pick(&self.options.territories, "None"), ""),
            Input::Partner => ("select", pick(&self.options.partners, "None"), ""),
            Input::Owner => {
                let me = self
                    .ctx
                    .me
                    .display_name
                    .clone()
                    .unwrap_or_else(|| "Me".into());
                let mut owners = vec![(self.ctx.me.id.clone(), format!("{me} (me)"))];
                if !value.is_empty() && value != self.ctx.me.id {
                    owners.push((value.clone(), value.clone()));
                }
                ("select", pick(&owners, "Nobody"), "")
            }
            Input::Account => ("lookup", Vec::new(), "/app/lookup/accounts"),
            Input::Contact => ("lookup", Vec::new(), "/app/lookup/contacts"),
        };
        let names = match field.input {
            Input::Account => self
                .record
                .and_then(|r| r["account"]["name"].as_str())
                .filter(|_| {
                    self.record
                        .is_some_and(|r| r["account"]["id"] == value.as_str())
                })
                .map(str::to_owned),
            _ => None,
        };
        Row {
            name: field.name,
            label: field.label,
            control,
            value,
            options,
            editable,
            error: error.map(str::to_owned),
            meanwhile,
            names,
            lookup,
        }
    }
}

/// A form page, answered 422 when it comes back refused (so scripts and tests can tell).
fn refusable(refused: bool, page: &FormPage) -> axum::response::Response {
    refused_if(refused, render(page))
}

/// The form's values as the API's input: only the fields the caller may change; an empty
/// optional field clears it on an edit and is left out on a create.
fn input_of(
    kind: &Kind,
    fields: &[(String, String)],
    creating: bool,
    updatable: &Option<Vec<String>>,
) -> Result<Value, Vec<FieldError>> {
    let mut input = Map::new();
    let mut invalid = Vec::new();
    for spec in kind.fields {
        if !creating
            && (spec.create_only
                || updatable
                    .as_ref()
                    .is_some_and(|names| !names.iter().any(|n| n == spec.name)))
        {
            continue;
        }
        let raw = field(fields, spec.name).trim();
        if raw.is_empty() {
            if !creating {
                // Text the API requires answers its own error; the rest clears.
                let value = match spec.input {
                    Input::Text => json!(""),
                    Input::Pick(_) => continue,
                    _ => Value::Null,
                };
                input.insert(spec.name.into(), value);
            }
            continue;
        }
        let value = match spec.input {
            Input::Whole => match raw.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    invalid.push(error(spec.name, "Give a whole number."));
                    continue;
                }
            },
            Input::Day => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(_) => json!(raw),
                Err(_) => {
                    invalid.push(error(spec.name, "Give a day (YYYY-MM-DD)."));
                    continue;
                }
            },
            Input::Moment => match super::local_moment(raw) {
                Some(at) => json!(at.to_rfc3339()),
                None => {
                    invalid.push(error(spec.name, "Give a day and a time."));
                    continue;
                }
            },
            _ => json!(raw),
        };
        input.insert(spec.name.into(), value);
    }
    if invalid.is_empty() {
        Ok(Value::Object(input))
    } else {
        Err(invalid)
    }
}

fn error(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The form's posted values, by field (the partner's territories as a list).
fn values_of(kind: &Kind, fields: &[(String, String)]) -> Values {
    let mut values = Map::new();
    for spec in kind.fields {
        values.insert(spec.name.into(), json!(field(fields, spec.name)));
    }
    if kind.ty == "Partner" {
        let chosen: Vec<&str> = fields
            .iter()
            .filter(|(k, _)| k == "territoryIds")
            .map(|(_, v)| v.as_str())
            .collect();
        values.insert("territoryIds".into(), json!(chosen));
    }
    values
}

/// A saved record's values, by field.
fn values_in(kind: &Kind, record: &Value) -> Values {
    let mut values = Map::new();
    for spec in kind.fields {
        values.insert(spec.name.into(), json!(spec.value_in(record)));
    }
    if kind.ty == "Partner" {
        let ids: Vec<Value> = record["territories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["id"].clone())
            .collect();
        values.insert("territoryIds".into(), Value::Array(ids));
    }
    values
}

fn may_not_create(ctx: &Ctx, kind: &Kind) -> Option<super::super::PageError> {
    (!ctx.me.writes(kind.ty)).then(|| {
        ctx.refuse(ApiFailure::Forbidden(format!(
            "Your role may not create {}.",
            kind.plural.to_lowercase()
        )))
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NewQuery {
    account_id: Option<String>,
}

/// `GET {base}/new`: the empty form (an account given in the query is filled in, from
/// the account's page).
pub async fn new_form<K: Of>(
    Signed(ctx, _): Signed<InApp>,
    Query(query): Query<NewQuery>,
) -> PageResult {
    let kind = K::KIND;
    if let Some(refused) = may_not_create(&ctx, kind) {
        return Err(refused);
    }
    let mut values: Values = kind
        .defaults
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    if let Some(account) = param(&query.account_id).filter(|id| plausible_id(id)) {
        values.insert("accountId".into(), json!(account));
    }
    if kind.fields.iter().any(|f| f.name == "ownerUserId") {
        values.insert("ownerUserId".into(), json!(ctx.me.id));
    }
    new_page(&ctx, kind, &values, FormErrors::default()).await
}

async fn new_page(
    ctx: &Ctx,
    kind: &'static Kind,
    values: &Values,
    errors: FormErrors,
) -> PageResult {
    let (_, options) = load(ctx, kind, None).await.map_err(|f| ctx.refuse(f))?;
    let builder = Builder {
        ctx,
        kind,
        options,
        creating: true,
        record: None,
        updatable: None,
    };
    let rows = builder.rows(values, &errors, None);
    let refused = errors.any();
    Ok(refusable(
        refused,
        &FormPage {
            chrome: ctx.chrome(&format!("New {}", kind.noun)),
            action: format!("{}/new", kind.base),
            cancel: kind.base.to_owned(),
            version: 0,
            rows,
            general: errors.general,
            conflict: None,
            read_only: Vec::new(),
        },
    ))
}

/// `POST {base}/new`: creates the record; refused input comes back next to its field.
pub async fn create<K: Of>(Signed(ctx, _): Signed<InApp>, body: String) -> PageResult {
    let kind = K::KIND;
    let fields = posted(&ctx, &body)?;
    let values = values_of(kind, &fields);
    let input = match input_of(kind, &fields, true, &None) {
        Ok(input) => input,
        Err(invalid) => {
            return new_page(
                &ctx,
                kind,
                &values,
                FormErrors::from_failure(ApiFailure::Invalid(invalid)),
            )
            .await;
        }
    };
    let operation = format!(
        "mutation($input: {one}Input!) {{ create{one}(input: $input) {{ id version }} }}",
        one = kind.one
    );
    match ctx
        .api::<Value>(&operation, json!({ "input": input }))
        .await
    {
        Ok(data) => {
            let created = &data[format!("create{}", kind.one)];
            let id = created["id"].as_str().unwrap_or_default().to_owned();
            let version = created["version"].as_i64().unwrap_or(1);
            if kind.ty == "Partner"
                && let Err(failure) = set_territories(&ctx, &id, version, &values).await
            {
                return Err(ctx.refuse(failure));
            }
            let noun = words(kind.noun);
            ctx.see_other(&kind.page_of(&id), Some(&format!("{noun} created.")))
                .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure).fold_unknown(&kind.form_fields());
            new_page(&ctx, kind, &values, errors).await
        }
    }
}

/// Sets the territories a partner covers (with the partner's version after its save).
async fn set_territories(
    ctx: &Ctx,
    partner: &str,
    version: i64,
    values: &Values,
) -> Result<(), ApiFailure> {
    let ids: Vec<String> = text_of(values, "territoryIds")
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    ctx.api::<Value>(
        "mutation($id: ID!, $v: Int!, $t: [ID!]!) { setPartnerTerritories(partnerId: $id, version: $v, territoryIds: $t) { id } }",
        json!({ "id": partner, "v": version, "t": ids }),
    )
    .await
    .map(|_| ())
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn updatable(record: &Value) -> Option<Vec<String>> {
    record["may"]["updateFields"].as_array().map(|names| {
        names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

/// `GET {base}/{id}/edit`.
pub async fn edit_form<K: Of>(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> PageResult {
    let kind = K::KIND;
    if !ctx.me.writes(kind.ty) {
        return Err(ctx.refuse(ApiFailure::Forbidden(format!(
            "Your role may not change {}.",
            kind.plural.to_lowercase()
        ))));
    }
    let (record, options) = load(&ctx, kind, Some(&id))
        .await
        .map_err(|f| ctx.refuse(f))?;
    let record = record.unwrap_or_default();
    if record["may"]["update"] != true {
        return Err(ctx.refuse(ApiFailure::Forbidden(format!(
            "You may read this {} but not change it.",
            kind.noun
        ))));
    }
    let values = values_in(kind, &record);
    let form = EditForm {
        id: &id,
        record: &record,
        options,
    };
    edit_page(&ctx, kind, form, &values, FormErrors::default(), None)
}

/// An edit form's record and choices.
struct EditForm<'a> {
    id: &'a str,
    record: &'a Value,
    options: Options,
}

fn edit_page(
    ctx: &Ctx,
    kind: &'static Kind,
    form: EditForm<'_>,
    values: &Values,
    errors: FormErrors,
    conflict: Option<(String, Values)>,
) -> PageResult {
    let EditForm {
        id,
        record,
        options,
    } = form;
    let builder = Builder {
        ctx,
        kind,
        options,
        creating: false,
        record: Some(record),
        updatable: updatable(record),
    };
    let (conflict, saved) = match conflict {
        Some((message, saved)) => (Some(message), Some(saved)),
        None => (None, None),
    };
    let rows = builder.rows(values, &errors, saved.as_ref());
    let refused = errors.any() || conflict.is_some();
    let read_only = rows
        .iter()
        .filter(|r| !r.editable)
        .map(|r| r.label.to_owned())
        .collect();
    Ok(refusable(
        refused,
        &FormPage {
            chrome: ctx.chrome(&format!("Edit {}: {}", kind.noun, kind.title_of(record))),
            action: format!("{}/{id}/edit", kind.base),
            cancel: kind.page_of(id),
            version: record["version"].as_i64().unwrap_or(0),
            rows,
            general: errors.general,
            conflict,
            read_only,
        },
    ))
}

/// `POST {base}/{id}/edit`: saves with the version the form was opened at. When someone
/// saved in between, nothing is overwritten: the form comes back with this user's values,
/// the other's under each field that differs, and the new version, so saving again is a
/// choice made knowingly.
pub async fn update<K: Of>(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let kind = K::KIND;
    let fields = posted(&ctx, &body)?;
    let values = values_of(kind, &fields);
    let (record, options) = load(&ctx, kind, Some(&id))
        .await
        .map_err(|f| ctx.refuse(f))?;
    let record = record.unwrap_or_default();
    let version = field(&fields, "version").parse::<i64>().unwrap_or(0);
    let current = record["version"].as_i64().unwrap_or(0);
    let mut based_on = record.clone();
    based_on["version"] = json!(version);
    let input = match input_of(kind, &fields, false, &updatable(&record)) {
        Ok(input) => input,
        Err(invalid) => {
            let errors = FormErrors::from_failure(ApiFailure::Invalid(invalid));
            let form = EditForm {
                id: &id,
                record: &based_on,
                options,
            };
            return edit_page(&ctx, kind, form, &values, errors, None);
        }
    };
    let operation = format!(
        "mutation($id: ID!, $v: Int!, $input: {one}Input!) {{ update{one}(id: $id, version: $v, input: $input) {{ id version }} }}",
        one = kind.one
    );
    let saved = match ctx
        .api::<Value>(
            &operation,
            json!({ "id": &id, "v": version, "input": input }),
        )
        .await
    {
        Ok(data) if kind.ty == "Partner" => {
            let saved = data[format!("update{}", kind.one)]["version"]
                .as_i64()
                .unwrap_or(version);
            let before = text_of(&values_in(kind, &record), "territoryIds");
            if before == text_of(&values, "territoryIds") {
                Ok(())
            } else {
                set_territories(&ctx, &id, saved, &values).await
            }
        }
        Ok(_) => Ok(()),
        Err(failure) => Err(failure),
    };
    match saved {
        Ok(()) => {
            let noun = words(kind.noun);
            ctx.see_other(&kind.page_of(&id), Some(&format!("{noun} saved.")))
                .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(ApiFailure::Conflict(_)) => {
            let who = "Someone else saved this";
            let message = format!(
                "{who} {noun} while you were editing it, so your changes were not saved yet. \
                 They are still in the form below; where the other change differs, its value \
                 is shown under the field. Save again to keep yours, or cancel to keep theirs.",
                noun = kind.noun
            );
            // The record as it is now (read after the refusal), its version included.
            let (now, options) = load(&ctx, kind, Some(&id))
                .await
                .map_err(|f| ctx.refuse(f))?;
            let now = now.unwrap_or(record);
            let saved = values_in(kind, &now);
            let form = EditForm {
                id: &id,
                record: &now,
                options,
            };
            edit_page(
                &ctx,
                kind,
                form,
                &values,
                FormErrors::default(),
                Some((message, saved)),
            )
        }
        Err(failure) => {
            let errors = FormErrors::from_failure(failure).fold_unknown(&kind.form_fields());
            let record = if current == version { record } else { based_on };
            let form = EditForm {
                id: &id,
                record: &record,
                options,
            };
            edit_page(&ctx, kind, form, &values, errors, None)
        }
    }
}

/// `POST {base}/{id}/archive`: archives with the version the page showed.
pub async fn archive<K: Of>(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let kind = K::KIND;
    let fields = posted_about(&ctx, &body, &id)?;
    let version = field(&fields, "version").parse::<i64>().unwrap_or(0);
    let operation = format!(
        "mutation($id: ID!, $v: Int!) {{ archive{one}(id: $id, version: $v) {{ id }} }}",
        one = kind.one
    );
    match ctx.api::<Value>(&operation, json!({ "id": id, "v": version })).await {
        Ok(_) => {
            let noun = words(kind.noun);
            ctx.see_other(kind.base, Some(&format!("{noun} archived.")))
                .await
        }
        Err(ApiFailure::Conflict(_)) => Err(ctx.refuse(ApiFailure::Refused(format!(
            "Someone else changed this {} since you opened it, so it was not archived. Open it again to see the change, then archive it if you still mean to.",
            kind.noun
        )))),
        Err(failure) => Err(ctx.refuse(failure)),
    }
}

/// One cell of a list.
pub(crate) struct Cell {
    pub text: String,
}

pub(crate) struct ListRow {
    pub id: String,
    pub href: String,
    pub cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "app/records.html")]
struct ListPage {
    chrome: Chrome,
    kind_base: &'static str,
    noun: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<ListRow>,
    total: String,
    text: String,
    may_create: bool,
    next: Option<String>,
    first_page: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

fn show(value: &Value, how: Show) -> String {
    match (how, value) {
        (_, Value::Null) => "—".into(),
        (Show::Money, money) => {
            super::Money(serde_json::from_value(money.clone()).ok()).to_string()
        }
        (Show::Words, Value::String(s)) => words(s),
        (Show::Day, Value::String(s)) => s.clone(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// `GET {base}`: the records of a kind the caller may see, searchable, 25 a page.
pub async fn list<K: Of>(
    Signed(ctx, _): Signed<InApp>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let kind = K::KIND;
    if !ctx.me.reads(kind.ty) {
        return Err(ctx.refuse(ApiFailure::Forbidden(format!(
            "Your role does not work with {}.",
            kind.plural.to_lowercase()
        ))));
    }
    let text = param(&query.q);
    let mut filter = Map::new();
    if let Some(text) = &text {
        filter.insert("text".into(), json!(text));
    }
    let root = lower_first(kind.plural);
    let desc = matches!(kind.list_order, "SCORE" | "UPDATED_AT");
    let data: Value = ctx
        .query(
            &format!(
                "query($first: Int, $after: String, $filter: {one}Filter, $orderBy: {one}Order) {{ {root}(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {{ totalCount pageInfo {{ endCursor hasNextPage }} nodes {{ id {} }} }} }}",
                kind.list_selection,
                one = kind.one
            ),
            super::list_variables(&query.after, filter, kind.list_order, desc),
        )
        .await?;
    let connection = &data[&root];
    let rows = connection["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| ListRow {
            id: node["id"].as_str().unwrap_or_default().to_owned(),
            href: kind.row_link(node["id"].as_str().unwrap_or_default()),
            cells: kind
                .columns
                .iter()
                .map(|column| {
                    let mut at = node;
                    for step in column.path {
                        at = &at[*step];
                    }
                    Cell {
                        text: show(at, column.show),
                    }
                })
                .collect(),
        })
        .collect();
    let page: PageInfo = serde_json::from_value(connection["pageInfo"].clone()).unwrap_or_default();
    let filters = text
        .as_ref()
        .map(|t| serde_urlencoded::to_string([("q", t)]).unwrap_or_default())
        .unwrap_or_default();
    let (next, first_page) = pager(kind.base, &filters, &page, &query.after);
    Ok(render(&ListPage {
        chrome: ctx.chrome(kind.plural),
        kind_base: kind.base,
        noun: kind.noun,
        headers: kind.columns.iter().map(|c| c.label).collect(),
        rows,
        total: super::thousands(connection["totalCount"].as_i64().unwrap_or(0)),
        text: text.unwrap_or_default(),
        may_create: ctx.me.writes(kind.ty),
        next,
        first_page,
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LookupQuery {
    /// The text typed: as `q`, or as the lookup field's own name (htmx sends the field).
    q: Option<String>,
    account_id: Option<String>,
    contact_id: Option<String>,
}

/// `GET /app/lookup/{accounts|contacts}?q=`: the suggestions of a lookup field (options
/// of its `<datalist>`, the record's id as the value and its name as the label), from the
/// records the caller may see.
pub async fn lookup(
    Signed(ctx, _): Signed<InApp>,
    Path(which): Path<String>,
    Query(query): Query<LookupQuery>,
) -> PageResult {
    let (operation, root, name) = match which.as_str() {
        "accounts" => (
            "query($t: String) { accounts(first: 20, filter: { text: $t }, orderBy: { field: NAME, direction: ASC }) { nodes { id name } } }",
            "accounts",
            "name",
        ),
        "contacts" => (
            "query($t: String) { contacts(first: 20, filter: { text: $t }, orderBy: { field: LAST_NAME, direction: ASC }) { nodes { id fullName } } }",
            "contacts",
            "fullName",
        ),
        _ => return Err(ctx.refuse(ApiFailure::NotFound)),
    };
    let typed = param(&query.q)
        .or_else(|| param(&query.account_id))
        .or_else(|| param(&query.contact_id));
    // Text that is an id already chosen looks for nothing new.
    let text = typed.filter(|t| !t.contains('_'));
    let data: Value = ctx.query(operation, json!({ "t": text })).await?;
    let options = data[root]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| Choice {
            value: node["id"].as_str().unwrap_or_default().to_owned(),
            label: node[name].as_str().unwrap_or_default().to_owned(),
            selected: false,
        })
        .collect();
    Ok(render(&Lookup { options }))
}

/// The options of a lookup field's `<datalist>` (a fragment, not a page).
#[derive(Template)]
#[template(path = "app/lookup.html")]
struct Lookup {
    options: Vec<Choice>,
}

/// One fact of a record's page.
pub(crate) struct Fact {
    pub label: &'static str,
    pub text: String,
    pub href: Option<String>,
}

pub(crate) struct ScoreReason {
    pub rule: String,
    pub finding: String,
    pub points: i64,
}

pub(crate) struct StageStep {
    pub from: String,
    pub to: String,
    pub at: When,
}

#[derive(Template)]
#[template(path = "app/record.html")]
struct RecordPage {
    chrome: Chrome,
    kind_base: &'static str,
    plural: &'static str,
    noun: &'static str,
    id: String,
    version: i64,
    facts: Vec<Fact>,
    /// The edit form has a field the caller may change.
    may_edit: bool,
    /// A contact whose data the caller may export (administrators).
    may_export: bool,
    /// A contact or lead the caller may erase (administrators).
    may_erase: bool,
    may_archive: bool,
    archived: bool,
    access: String,
    score: Option<i64>,
    reasons: Vec<ScoreReason>,
    convertible: bool,
    converted: Vec<Fact>,
    convert_error: Option<String>,
    stages: Vec<StageStep>,
    tasks: Vec<TaskRow>,
    may_add_task: bool,
    /// A lead's distribution to a distributor, for staff who route it.
    routing: Option<Routing>,
    /// An opportunity's product lines (suppliers' expected demand is built from them).
    deal_products: Option<DealProducts>,
}

/// How many product lines the opportunity page's form offers beyond the current ones.
const SPARE_PRODUCT_ROWS: usize = 3;

/// An opportunity's product lines, and the form that changes them.
pub(crate) struct DealProducts {
    /// (product, quantity) as shown.
    pub lines: Vec<(String, i64)>,
    /// The form's rows: the product choices (the line's selected) and the quantity.
    pub rows: Vec<(Vec<super::Choice>, String)>,
    pub editable: bool,
    pub error: Option<String>,
}

fn deal_products(
    lines: &Value,
    catalog: &Value,
    editable: bool,
    error: Option<String>,
) -> DealProducts {
    let catalog: Vec<(String, String)> = catalog
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{} · {}",
                    p["sku"].as_str().unwrap_or_default(),
                    p["name"].as_str().unwrap_or_default()
                ),
            )
        })
        .collect();
    let label_of = |id: &str| {
        catalog
            .iter()
            .find(|(p, _)| p == id)
            .map_or_else(|| id.to_owned(), |(_, label)| label.clone())
    };
    let current: Vec<(String, i64)> = lines
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            (
                l["productId"].as_str().unwrap_or_default().to_owned(),
                l["quantity"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let choices = |selected: Option<&str>| {
        catalog
            .iter()
            .map(|(id, label)| super::Choice {
                value: id.clone(),
                label: label.clone(),
                selected: Some(id.as_str()) == selected,
            })
            .collect::<Vec<_>>()
    };
    let mut rows: Vec<(Vec<super::Choice>, String)> = current
        .iter()
        .map(|(id, quantity)| (choices(Some(id)), quantity.to_string()))
        .collect();
    rows.extend((0..SPARE_PRODUCT_ROWS).map(|_| (choices(None), String::new())));
    DealProducts {
        lines: current
            .iter()
            .map(|(id, quantity)| (label_of(id), *quantity))
            .collect(),
        rows,
        editable,
        error,
    }
}

/// `POST /app/opportunities/{id}/products`: replaces the deal's product lines with the
/// form's rows that name a product (a row without one is left out).
pub async fn set_products(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version: i64 = field(&fields, "version").parse().unwrap_or(0);
    let mut lines = Vec::new();
    for n in 0..100 {
        let Some(product) = fields.iter().find(|(k, _)| *k == format!("product_{n}")) else {
            break;
        };
        let product = product.1.trim();
        if product.is_empty() {
            continue;
        }
        let quantity = field(&fields, &format!("quantity_{n}")).trim();
        // A quantity that is not a whole number goes to the API as 0, which it refuses
        // with the line's field named.
        lines.push(
            json!({ "productId": product, "quantity": quantity.parse::<i64>().unwrap_or(0) }),
        );
    }
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $p: [ProductQuantityInput!]) { updateOpportunity(id: $id, version: $v, input: { products: $p }) { id } }",
            json!({ "id": id, "v": version, "p": lines }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(
                &format!("/app/opportunities/{id}"),
                Some("Products saved."),
            )
            .await
        }
        Err(failure @ ApiFailure::SignedOut) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let refused = Refused {
                products: Some(failure.message()),
                ..Refused::default()
            };
            Ok(refused_if(
                true,
                record_page(ctx, &OPPORTUNITY, &id, refused).await?,
            ))
        }
    }
}

/// Where a lead stands with distributors, and to whom it could go.
pub(crate) struct Routing {
    pub partner: Option<String>,
    pub routed_at: When,
    pub respond_by: When,
    pub accepted_at: When,
    pub decline_reason: Option<String>,
    /// Distributors with room first: "Northwind Distribution (3 of 20)".
    pub choices: Vec<super::Choice>,
    /// Whether the caller may route it.
    pub may_route: bool,
    /// Why the last routing was refused.
    pub error: Option<String>,
}

/// What a record's page selects beyond its form's fields.
fn page_selection(kind: &Kind) -> &'static str {
    match kind.ty {
        "Contact" => "fullName archivedAt access { summary } account { id name }",
        "Lead" => {
            "score scoreReasons { rule finding points } convertedAccountId convertedContactId convertedOpportunityId convertedAt archivedAt access { summary } routedPartner { name } routedAt respondBy acceptedAt declineReason routingSuggestions { partnerId name openLeads capacity }"
        }
        "Opportunity" => {
            "archivedAt closeOverdue access { summary } weightedAmount { amount currency } account { id name } stageHistory { fromStage toStage changedAt } partner { id name } registrationId protectedUntil products { productId quantity }"
        }
        _ => "archivedAt access { summary }",
    }
}

/// `GET {base}/{id}`: a contact's, lead's or opportunity's page: its facts, the actions
/// the caller may take, its tasks; a lead's score with its reasons and its conversion; an
/// opportunity's stage history.
pub async fn page<K: Of>(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> PageResult {
    record_page(ctx, K::KIND, &id, Refused::default()).await
}

/// A refused action of a record's page, shown beside the part of the page it came from.
#[derive(Default)]
struct Refused {
    convert: Option<String>,
    route: Option<String>,
    products: Option<String>,
}

async fn record_page(ctx: Ctx, kind: &'static Kind, id: &str, refused: Refused) -> PageResult {
    let Refused {
        convert: convert_error,
        route: route_error,
        products: products_error,
    } = refused;
    if !plausible_id(id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let root = lower_first(kind.one);
    let data: Value = ctx
        .query(
            &format!(
                "query($id: ID!) {{ {root}(id: $id) {{ {} {} }} tasks(first: 50, filter: {{ recordId: $id }}) {{ nodes {{ id version title dueAt overdue completed recordType recordId recordName assigneeUserId may {{ update }} }} }} {} }}",
                kind.form_selection(),
                page_selection(kind),
                // The products a deal's lines name and can choose from.
                if kind.ty == "Opportunity" {
                    "catalog: products(first: 200, orderBy: { field: SKU, direction: ASC }) { nodes { id sku name } }"
                } else {
                    ""
                }
            ),
            json!({ "id": id }),
        )
        .await?;
    let record = &data[&root];
    if record.is_null() {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let mut facts: Vec<Fact> = kind
        .fields
        .iter()
        .map(|spec| fact(&ctx, spec, record))
        .collect();
    // A deal attributed to a partner by its registration, and how long that holds.
    if let Some(partner) = record["partner"]["name"].as_str() {
        facts.push(Fact {
            label: "Registered by partner",
            text: partner.to_owned(),
            href: record["registrationId"]
                .as_str()
                .map(|r| format!("/app/registrations/{r}")),
        });
        facts.push(Fact {
            label: "Protected until",
            text: When(
                serde_json::from_value(record["protectedUntil"].clone()).unwrap_or_default(),
            )
            .to_string(),
            href: None,
        });
    }
    let reasons = record["scoreReasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| ScoreReason {
            rule: r["rule"].as_str().unwrap_or_default().to_owned(),
            finding: r["finding"].as_str().unwrap_or_default().to_owned(),
            points: r["points"].as_i64().unwrap_or(0),
        })
        .collect();
    let may_update = record["may"]["update"] == true;
    let status = record["status"].as_str().unwrap_or_default();
    let convertible = kind.ty == "Lead"
        && may_update
        && !matches!(status, "CONVERTED" | "DISQUALIFIED")
        && ["Account", "Contact", "Opportunity"]
            .iter()
            .all(|ty| ctx.me.writes(ty));
    let link = |label: &'static str, key: &str, base: &str| {
        record[key].as_str().map(|target| Fact {
            label,
            text: "Open".into(),
            href: Some(format!("{base}/{target}")),
        })
    };
    let converted = [
        link("Account", "convertedAccountId", "/app/accounts"),
        link("Contact", "convertedContactId", "/app/contacts"),
        link(
            "Opportunity",
            "convertedOpportunityId",
            "/app/opportunities",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let stages = record["stageHistory"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| StageStep {
            from: s["fromStage"]
                .as_str()
                .map(words)
                .unwrap_or_else(|| "—".into()),
            to: s["toStage"].as_str().map(words).unwrap_or_default(),
            at: serde_json::from_value(s["changedAt"].clone()).unwrap_or_default(),
        })
        .collect();
    let tasks: Vec<TaskRow> =
        serde_json::from_value(data["tasks"]["nodes"].clone()).unwrap_or_default();
    let when = |key: &str| When(serde_json::from_value(record[key].clone()).unwrap_or_default());
    let routing = record["routingSuggestions"]
        .as_array()
        .map(|suggestions| Routing {
            partner: record["routedPartner"]["name"].as_str().map(str::to_owned),
            routed_at: when("routedAt"),
            respond_by: when("respondBy"),
            accepted_at: when("acceptedAt"),
            decline_reason: record["declineReason"].as_str().map(str::to_owned),
            choices: suggestions
                .iter()
                .map(|s| {
                    let (open, capacity) = (
                        s["openLeads"].as_i64().unwrap_or(0),
                        s["capacity"].as_i64().unwrap_or(0),
                    );
                    super::Choice {
                        value: s["partnerId"].as_str().unwrap_or_default().to_owned(),
                        label: format!(
                            "{} ({open} of {capacity} leads{})",
                            s["name"].as_str().unwrap_or_default(),
                            if open >= capacity { ", full" } else { "" }
                        ),
                        selected: false,
                    }
                })
                .collect(),
            may_route: may_update && !matches!(status, "CONVERTED" | "DISQUALIFIED"),
            error: route_error.clone(),
        });
    let deal_products = (kind.ty == "Opportunity").then(|| {
        deal_products(
            &record["products"],
            &data["catalog"]["nodes"],
            may_update && record["archivedAt"].is_null(),
            products_error,
        )
    });
    Ok(render(&RecordPage {
        deal_products,
        routing,
        chrome: ctx.chrome(&kind.title_of(record)),
        kind_base: kind.base,
        plural: kind.plural,
        noun: kind.noun,
        id: id.to_owned(),
        version: record["version"].as_i64().unwrap_or(0),
        facts,
        // The edit form holds the kind's own fields: a right to change others only
        // (marketing's to a contact's consents) is used where those are shown.
        may_edit: may_update
            && updatable(record).is_none_or(|names| {
                kind.fields
                    .iter()
                    .any(|spec| names.iter().any(|n| n == spec.name))
            }),
        may_export: kind.ty == "Contact" && ctx.me.writes("DataExport"),
        may_erase: matches!(kind.ty, "Contact" | "Lead") && ctx.me.writes("DataErasure"),
        may_archive: record["may"]["archive"] == true && record["archivedAt"].is_null(),
        archived: !record["archivedAt"].is_null(),
        access: record["access"]["summary"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        score: record["score"].as_i64(),
        reasons,
        convertible,
        converted,
        convert_error,
        stages,
        tasks,
        may_add_task: ctx.me.writes("Task"),
    }))
}

fn fact(ctx: &Ctx, spec: &Field, record: &Value) -> Fact {
    let value = spec.value_in(record);
    let (text, href) = match spec.input {
        _ if value.is_empty() => ("—".to_owned(), None),
        Input::Account => (
            record["account"]["name"]
                .as_str()
                .unwrap_or(&value)
                .to_owned(),
            Some(format!("/app/accounts/{value}")),
        ),
        Input::Pick(_) => (words(&value), None),
        Input::Owner if value == ctx.me.id => ("You".to_owned(), None),
        Input::Email => (value.clone(), Some(format!("mailto:{value}"))),
        Input::Tel => (
            value.clone(),
            Some(format!("tel:{}", value.replace(' ', ""))),
        ),
        Input::Decimal if spec.name == "amount" => (show(&record["amount"], Show::Money), None),
        Input::Moment => (
            When(
                serde_json::from_value(record[spec.name].clone())
                    .ok()
                    .flatten(),
            )
            .to_string(),
            None,
        ),
        _ => (value, None),
    };
    Fact {
        label: spec.label,
        text,
        href,
    }
}

/// `POST /app/leads/{id}/convert`: converts a lead into an account (a new one by the
/// company's name, or an existing one), a contact and, when named, an opportunity.
pub async fn convert(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let get = |name: &str| field(&fields, name).trim().to_owned();
    let mut input = Map::new();
    let account = get("accountId");
    if !account.is_empty() {
        input.insert("accountId".into(), json!(account));
    }
    let deal = get("opportunityName");
    if !deal.is_empty() {
        let mut opportunity = json!({
            "name": deal,
            "amount": if get("amount").is_empty() { "0".to_owned() } else { get("amount") },
            "currency": get("currency"),
        });
        let close = get("expectedClose");
        if !close.is_empty() {
            opportunity["expectedClose"] = json!(close);
        }
        input.insert("opportunity".into(), opportunity);
    }
    let version = get("version").parse::<i64>().unwrap_or(0);
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $input: ConvertLeadInput!) { convertLead(id: $id, version: $v, input: $input) { account { id } } }",
            json!({ "id": id, "v": version, "input": input }),
        )
        .await
    {
        Ok(data) => {
            let account = data["convertLead"]["account"]["id"].as_str().unwrap_or_default();
            ctx.see_other(
                &format!("/app/accounts/{account}"),
                Some("Lead converted: this is its account."),
            )
            .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(ApiFailure::Conflict(_)) => {
            let refused = Refused {
                convert: Some("Someone else changed this lead since you opened it, so it was not converted. Check it below and convert again.".into()),
                ..Refused::default()
            };
            record_page(ctx, &LEAD, &id, refused).await
        }
        Err(failure) => {
            let refused = Refused {
                convert: Some(failure.message()),
                ..Refused::default()
            };
            record_page(ctx, &LEAD, &id, refused).await
        }
    }
}

/// `POST /app/leads/{id}/route`: routes the lead to the distributor chosen (with the
/// version the page showed).
pub async fn route(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted_about(&ctx, &body, &id)?;
    let version = field(&fields, "version").parse::<i64>().unwrap_or(0);
    let partner = field(&fields, "partnerId").trim().to_owned();
    match ctx
        .api::<Value>(
            "mutation($id: ID!, $v: Int!, $p: ID!) { routeLead(id: $id, version: $v, partnerId: $p) { routedPartner { name } } }",
            json!({ "id": id, "v": version, "p": partner }),
        )
        .await
    {
        Ok(data) => {
            let name = data["routeLead"]["routedPartner"]["name"]
                .as_str()
                .unwrap_or("the distributor");
            ctx.see_other(
                &format!("/app/leads/{id}"),
                Some(&format!("Routed to {name}: it has 48 hours to accept or decline.")),
            )
            .await
        }
        Err(failure @ (ApiFailure::SignedOut | ApiFailure::NotFound)) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let refused = Refused {
                route: Some(failure.message()),
                ..Refused::default()
            };
            record_page(ctx, &LEAD, &id, refused).await
        }
    }
}
