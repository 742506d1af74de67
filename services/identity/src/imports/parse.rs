//! Reading an uploaded file into rows. A file that can't be read as a whole (not CSV or
//! JSON, no `externalId` column, a column that is not a field of the type) is refused with
//! the line and the reason, and nothing of it is kept. A row whose own cells are wrong
//! (an empty external id, a quantity that is not a number) is kept as a refused row with
//! its reason, so the report lists it beside the others.
//!
//! CSV: the first line names the columns; an empty cell leaves its field as it is (an
//! update does not clear it). JSON: an array of objects with the same names as keys; a
//! `null` clears an optional field, and a contact's `consents` is a list as in the API.

use serde_json::{Map, Value, json};

use super::catalog::{Cell, ImportKind};
use crm_service_common::{ApiError, ApiResult};

/// The most rows one import may have.
pub const MAX_ROWS: usize = 2_000_000;

/// One row of a file, ready to stage.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedRow {
    /// Its row in a CSV file as a spreadsheet numbers them (the header is row 1), or its
    /// place in a JSON array (from 1); a later part goes on from the last.
    pub number: i64,
    pub external_id: String,
    /// `{"input": {...}, "references": [{"field", "externalId"}]}`: what the batch sends.
    pub data: Value,
    /// Why the row is refused before it is sent: the column and the reason.
    pub refused: Option<(String, String)>,
}

/// The file formats an import reads.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Json,
}

impl ImportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Json => "JSON",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "CSV" => Some(Self::Csv),
            "JSON" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The rows of `content`, numbered from `first_number` on (a later part of a file goes on
/// where the earlier one ended).
pub fn rows(
    kind: &ImportKind,
    format: ImportFormat,
    content: &str,
    first_number: i64,
) -> ApiResult<Vec<ParsedRow>> {
    let rows = match format {
        ImportFormat::Csv => csv_rows(kind, content, first_number)?,
        ImportFormat::Json => json_rows(kind, content, first_number)?,
    };
    if rows.is_empty() {
        return Err(ApiError::validation("content", "has no rows"));
    }
    Ok(rows)
}

/// How one column is read.
#[derive(Clone, Copy)]
enum Column {
    ExternalId,
    Field(&'static str, Cell),
    Reference(&'static str),
}

fn column(kind: &ImportKind, name: &str) -> ApiResult<Column> {
    if name == "externalId" {
        return Ok(Column::ExternalId);
    }
    if let Some((field, cell)) = kind.fields.iter().find(|(field, _)| *field == name) {
        return Ok(Column::Field(field, *cell));
    }
    if let Some((_, field)) = kind.references.iter().find(|(column, _)| *column == name) {
        return Ok(Column::Reference(field));
    }
    Err(ApiError::validation(
        "content",
        format!(
            "has a column {name:?} that a {} does not have (columns: {})",
            kind.name.to_lowercase().replace('_', " "),
            kind.columns().join(", ")
        ),
    ))
}

/// A row being built from its cells.
struct Builder {
    external_id: Option<String>,
    input: Map<String, Value>,
    references: Vec<Value>,
    refused: Option<(String, String)>,
}

impl Builder {
    fn new() -> Self {
        Self {
            external_id: None,
            input: Map::new(),
            references: Vec::new(),
            refused: None,
        }
    }

    fn refuse(&mut self, column: &str, reason: impl Into<String>) {
        self.refused
            .get_or_insert((column.to_owned(), reason.into()));
    }

    /// One cell; `value` is what the file says (`Value::Null`: an explicit null).
    fn cell(&mut self, name: &str, column: Column, value: Value) {
        match column {
            Column::ExternalId => match value {
                Value::String(text) if !text.trim().is_empty() => {
                    self.external_id = Some(text.trim().to_owned())
                }
                Value::Number(n) => self.external_id = Some(n.to_string()),
                _ => self.refuse(name, "is empty: every row needs its external id"),
            },
            Column::Reference(field) => match value {
                Value::String(text) if !text.trim().is_empty() => self
                    .references
                    .push(json!({"field": field, "externalId": text.trim()})),
                Value::Number(n) => self
                    .references
                    .push(json!({"field": field, "externalId": n.to_string()})),
                Value::Null => {}
                _ => self.refuse(name, "is not an external id"),
            },
            Column::Field(field, cell) => {
                let value = match (cell, value) {
                    (_, Value::Null) => Value::Null,
                    (Cell::Int, Value::String(text)) => match text.trim().parse::<i32>() {
                        Ok(n) => json!(n),
                        Err(_) => return self.refuse(name, "is not a whole number"),
                    },
                    (Cell::Int, Value::Number(n)) if n.as_i64().is_some() => Value::Number(n),
                    (Cell::Int, _) => return self.refuse(name, "is not a whole number"),
                    (Cell::Text, Value::String(text)) => Value::String(text),
                    (Cell::Text, Value::Number(n)) => Value::String(n.to_string()),
                    (Cell::Text, Value::Bool(b)) => Value::String(b.to_string()),
                    (Cell::Text, _) => return self.refuse(name, "is not text"),
                    (Cell::Json, value) => value,
                };
                self.input.insert(field.to_owned(), value);
            }
        }
    }

    fn finish(mut self, number: i64) -> ParsedRow {
        let external_id = match self.external_id.take() {
            Some(id) => id,
            None => {
                self.refuse("externalId", "is empty: every row needs its external id");
                String::new()
            }
        };
        ParsedRow {
            number,
            external_id,
            data: json!({"input": self.input, "references": self.references}),
            refused: self.refused,
        }
    }
}

fn csv_rows(kind: &ImportKind, content: &str, first_number: i64) -> ApiResult<Vec<ParsedRow>> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(content.as_bytes());
    let unreadable = |e: csv::Error| {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        let reason = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("has {len} cells where the header has {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "is not UTF-8 text".to_owned(),
            _ => "is not CSV".to_owned(),
        };
        ApiError::validation("content", format!("line {line} {reason}"))
    };
    let header = reader.headers().map_err(unreadable)?.clone();
    let mut columns = Vec::with_capacity(header.len());
    for name in header.iter() {
        let name = name.trim();
        if columns.iter().any(|(seen, _)| seen == name) {
            return Err(ApiError::validation(
                "content",
                format!("names the column {name:?} twice"),
            ));
        }
        columns.push((name.to_owned(), column(kind, name)?));
    }
    if !columns.iter().any(|(_, c)| matches!(c, Column::ExternalId)) {
        return Err(ApiError::validation(
            "content",
            "has no externalId column: rows are created or updated by their external id",
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(unreadable)?;
        if rows.len() >= MAX_ROWS {
            return Err(too_many());
        }
        let number = first_number + rows.len() as i64;
        let mut row = Builder::new();
        for ((name, column), cell) in columns.iter().zip(record.iter()) {
            // An empty cell leaves the field as it is.
            if cell.is_empty() {
                if matches!(column, Column::ExternalId) {
                    row.refuse(name, "is empty: every row needs its external id");
                }
                continue;
            }
            row.cell(name, *column, Value::String(cell.to_owned()));
        }
        rows.push(row.finish(number));
    }
    Ok(rows)
}

fn json_rows(kind: &ImportKind, content: &str, first_number: i64) -> ApiResult<Vec<ParsedRow>> {
    let items: Vec<Value> = serde_json::from_str(content).map_err(|e| {
        ApiError::validation(
            "content",
            format!(
                "is not a JSON array of objects (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    if items.len() > MAX_ROWS {
        return Err(too_many());
    }
    let mut rows = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let number = first_number + index as i64;
        let Value::Object(fields) = item else {
            return Err(ApiError::validation(
                "content",
                format!("item {number} is not an object"),
            ));
        };
        let mut row = Builder::new();
        for (name, value) in fields {
            row.cell(&name, column(kind, &name)?, value);
        }
        rows.push(row.finish(number));
    }
    Ok(rows)
}

fn too_many() -> ApiError {
    ApiError::validation(
        "content",
        format!("has more than {MAX_ROWS} rows: split it into several imports"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::catalog;
    use super::*;

    fn accounts() -> &'static ImportKind {
        catalog::kind("ACCOUNT").expect("the account kind")
    }

    #[test]
    fn a_csv_file_becomes_rows_numbered_by_line_with_empty_cells_left_out() {
        let rows = rows(
            accounts(),
            ImportFormat::Csv,
            "externalId,name,domain,territoryExternalId\r\nA-1,\"Acme, Inc.\",,T-9\r\nA-2,Globex,globex.com,\r\n",
            2,
        )
        .expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].external_id, "A-1");
        assert_eq!(
            rows[0].data,
            json!({"input": {"name": "Acme, Inc."}, "references": [{"field": "territoryId", "externalId": "T-9"}]})
        );
        assert_eq!(rows[1].number, 3);
        assert_eq!(
            rows[1].data["input"],
            json!({"name": "Globex", "domain": "globex.com"})
        );
        assert_eq!(rows[1].refused, None);
    }

    #[test]
    fn a_file_that_cannot_be_read_whole_is_refused_with_the_reason() {
        let refused = |format, content: &str| {
            rows(accounts(), format, content, 2)
                .expect_err("refused")
                .message()
        };
        assert!(refused(ImportFormat::Csv, "name\nAcme\n").contains("no externalId column"));
        assert!(refused(ImportFormat::Csv, "externalId,colour\nA,red\n").contains("\"colour\""));
        assert!(refused(ImportFormat::Csv, "externalId,name\nA,Acme,extra\n").contains("line 2"));
        assert!(refused(ImportFormat::Csv, "externalId,name\n").contains("no rows"));
        assert!(refused(ImportFormat::Json, "{\"externalId\": 1}").contains("JSON array"));
        assert!(refused(ImportFormat::Json, "[1]").contains("item 2"));
    }

    #[test]
    fn a_row_with_a_wrong_cell_is_kept_as_refused() {
        let lines = catalog::kind("ORDER_LINE").expect("order lines");
        let rows = rows(
            lines,
            ImportFormat::Csv,
            "externalId,quantity\nL-1,three\n,2\nL-3,4\n",
            2,
        )
        .expect("rows");
        assert_eq!(
            rows[0].refused,
            Some(("quantity".into(), "is not a whole number".into()))
        );
        assert_eq!(
            rows[1].refused.as_ref().map(|r| r.0.as_str()),
            Some("externalId")
        );
        assert_eq!(rows[2].refused, None);
        assert_eq!(rows[2].data["input"]["quantity"], json!(4));
    }

    #[test]
    fn json_keeps_types_and_explicit_nulls() {
        let contacts = catalog::kind("CONTACT").expect("contacts");
        let rows = rows(
            contacts,
            ImportFormat::Json,
            r#"[{"externalId": "C-1", "firstName": "Jo", "email": null, "accountExternalId": "A-1",
                 "consents": [{"purpose": "MARKETING", "channel": "EMAIL", "granted": true}]}]"#,
            7,
        )
        .expect("rows");
        assert_eq!(rows[0].number, 7);
        assert_eq!(rows[0].data["input"]["email"], Value::Null);
        assert_eq!(rows[0].data["input"]["consents"][0]["granted"], json!(true));
        assert_eq!(rows[0].data["references"][0]["field"], json!("accountId"));
    }
}
