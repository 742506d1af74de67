//! A webhook's settings, validated (no I/O): its name, its endpoint (never a private or
//! loopback address unless the deployment allows that network), the events it takes, and
//! its filter over what its principal sees.

use std::net::IpAddr;

use crm_service_common::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::{self, CHANGED, PING, RecordKind};

/// The most webhooks one organisation (or the company) keeps.
pub const MAX_WEBHOOKS_PER_ORGANISATION: usize = 25;
/// A filter's bounds.
const MAX_CONDITIONS: usize = 10;
const MAX_VALUES: usize = 20;
/// Attempts per delivery: the default and the most a webhook may ask for.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;
pub const MOST_ATTEMPTS: i32 = 20;

/// A webhook's name: 1 to 120 characters once trimmed.
pub fn name(field: &str, raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(ApiError::validation(field, "must be 1 to 120 characters"));
    }
    Ok(name.to_owned())
}

/// How many attempts a delivery gets before it moves to the dead-letter list.
pub fn max_attempts(field: &str, raw: Option<i32>) -> ApiResult<i32> {
    match raw {
        None => Ok(DEFAULT_MAX_ATTEMPTS),
        Some(n) if (1..=MOST_ATTEMPTS).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation(
            field,
            format!("must be 1 to {MOST_ATTEMPTS}"),
        )),
    }
}

/// The networks outbound deliveries may reach besides the public internet: none unless
/// the deployment names them (`CRM_WEBHOOK_ALLOWED_NETWORKS`, e.g. `10.0.0.0/8` for
/// receivers inside the company's network, or `127.0.0.0/8` for a test's receiver).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks(Vec<ipnet::IpNet>);

impl Networks {
    /// `10.0.0.0/8,127.0.0.1/32`: networks in CIDR notation, comma-separated (a bare
    /// address is its own network).
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.parse::<ipnet::IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{n:?} is not a network (e.g. 10.0.0.0/8) or an address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Networks)
    }

    /// Whether a delivery may connect to `ip`: a public address, or one in a network the
    /// deployment allows.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.0.iter().any(|net| net.contains(&ip))
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether `ip` is an address of the public internet: not loopback, private, link-local,
/// shared (carrier NAT), multicast, reserved, documentation or unspecified, in IPv4 or
/// IPv6 (IPv4 translated into IPv6 is judged as the IPv4 address it carries).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [_, _, _, _, _, _, hi, lo] = segments;
                let v4 =
                    std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)) // documentation
        }
    }
}

/// Where deliveries go: an `http` or `https` URL without credentials or fragment, whose
/// host is not a private or loopback address (nor `localhost`) unless `allowed` says so.
/// A host name is checked again at every delivery, against every address it resolves to.
pub fn endpoint(field: &str, raw: &str, allowed: &Networks) -> ApiResult<String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err(ApiError::validation(
            field,
            "must be at most 2048 characters",
        ));
    }
    let url = reqwest::Url::parse(raw)
        .map_err(|_| ApiError::validation(field, "must be an absolute http or https URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::validation(field, "must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::validation(
            field,
            "must not carry credentials; deliveries are signed with the webhook's secret",
        ));
    }
    if url.fragment().is_some() {
        return Err(ApiError::validation(field, "must not have a fragment (#…)"));
    }
    let private = || {
        ApiError::validation(
            field,
            "must not point at a private, loopback or link-local address",
        )
    };
    match url.host() {
        None => return Err(ApiError::validation(field, "must name a host")),
        Some(url::Host::Ipv4(v4)) if !allowed.allows(IpAddr::V4(v4)) => return Err(private()),
        Some(url::Host::Ipv6(v6)) if !allowed.allows(IpAddr::V6(v6)) => return Err(private()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if (name == "localhost" || name.ends_with(".localhost"))
                && !allowed.allows(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            {
                return Err(private());
            }
        }
        Some(_) => {}
    }
    Ok(url.to_string())
}

/// The events a webhook takes: at least one, each known (`webhookEventTypes`), no
/// repeats; kept in the catalogue's order.
pub fn events(field: &str, raw: &[String]) -> ApiResult<Vec<String>> {
    let known = catalog::event_types();
    for name in raw {
        if !known.iter().any(|(k, _)| k == name) {
            return Err(ApiError::validation(
                field,
                format!(
                    "{name:?} is not an event; the events are {}",
                    known
                        .iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let chosen: Vec<String> = known
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| raw.contains(k) && k != PING)
        .collect();
    if chosen.is_empty() {
        return Err(ApiError::validation(
            field,
            "must name at least one event of a record (the ping is always sent)",
        ));
    }
    Ok(chosen)
}

/// The record kinds a webhook's events are about.
pub fn kinds_of(events: &[String]) -> Vec<&'static RecordKind> {
    catalog::RECORDS
        .into_iter()
        .filter(|kind| {
            events
                .iter()
                .any(|e| catalog::parse_event(e).is_some_and(|(k, _)| k.prefix == kind.prefix))
        })
        .collect()
}

/// One condition of a filter: the value at `field` (a path into the record as the
/// principal sees it, e.g. `status` or `shipments.status`; through lists, any element) is one
/// of `values`, compared as text. `changed` matches the fields an update changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub values: Vec<String>,
}

/// A webhook's filter: every condition must hold (none: every delivery passes). It is
/// evaluated over the record as the webhook's principal sees it, so a field the principal
/// can't read is null to it and never matches: a filter cannot learn what its principal
/// could not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter(pub Vec<Condition>);

impl Filter {
    /// Checks the conditions against the fields of the webhook's record kinds.
    pub fn parse(field: &str, raw: Vec<Condition>, kinds: &[&RecordKind]) -> ApiResult<Self> {
        if raw.len() > MAX_CONDITIONS {
            return Err(ApiError::validation(
                field,
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        let mut conditions = Vec::with_capacity(raw.len());
        for (i, condition) in raw.into_iter().enumerate() {
            let at = format!("{field}[{i}]");
            let path = condition.field.trim();
            let segments: Vec<&str> = path.split('.').collect();
            let well_formed = segments.len() <= 6
                && segments.iter().all(|s| {
                    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if !well_formed {
                return Err(ApiError::validation(
                    format!("{at}.field"),
                    "must be a field name or a dotted path (e.g. status, shipments.status)",
                ));
            }
            let first = segments[0];
            if path != CHANGED && !kinds.iter().any(|k| k.fields.contains(&first)) {
                return Err(ApiError::validation(
                    format!("{at}.field"),
                    format!(
                        "{first:?} is not a field of the records these events are about (nor {CHANGED:?})"
                    ),
                ));
            }
            if condition.values.is_empty()
                || condition.values.len() > MAX_VALUES
                || condition.values.iter().any(|v| v.chars().count() > 200)
            {
                return Err(ApiError::validation(
                    format!("{at}.values"),
                    format!("must be 1 to {MAX_VALUES} values of at most 200 characters"),
                ));
            }
            conditions.push(Condition {
                field: path.to_owned(),
                values: condition.values,
            });
        }
        Ok(Filter(conditions))
    }

    /// Whether a delivery of `record` (the principal's view of it) whose update changed
    /// `changed` passes.
    pub fn matches(&self, record: &Value, changed: &[String]) -> bool {
        self.0.iter().all(|condition| {
            if condition.field == CHANGED {
                return changed.iter().any(|c| condition.values.contains(c));
            }
            let mut found = Vec::new();
            values_at(record, &condition.field, &mut found);
            found.iter().any(|v| condition.values.contains(v))
        })
    }
}

/// The values at a dotted path, as text, going into every element of a list on the way
/// (and into a connection's `nodes`). Null is no value.
fn values_at(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| values_at(item, path, out)),
        Value::Object(map) => {
            if let Some(nodes) = map.get("nodes")
                && !path.starts_with("nodes")
            {
                return values_at(nodes, path, out);
            }
            let (head, rest) = path.split_once('.').unwrap_or((path, ""));
            if let Some(next) = map.get(head) {
                if rest.is_empty() {
                    scalars(next, out);
                } else {
                    values_at(next, rest, out);
                }
            }
        }
        _ => {}
    }
}

fn scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(items) => items.iter().for_each(|item| scalars(item, out)),
        Value::Null | Value::Object(_) => {}
    }
}

/// The top-level fields whose values differ between two views of a record.
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_and_loopback_addresses_are_refused_unless_their_network_is_allowed() {
        let none = Networks::default();
        for url in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/",
            "http://192.168.0.10:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://[64:ff9b::a00:1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://localhost:9000/",
            "http://api.localhost/",
        ] {
            let refused = endpoint("input.url", url, &none).expect_err(url);
            assert!(
                refused.message().contains("private"),
                "{url}: {}",
                refused.message()
            );
        }
        for url in ["https://hooks.example.com/crm", "http://93.184.215.14/"] {
            endpoint("input.url", url, &none).expect(url);
        }
        let loopback = Networks::parse("127.0.0.0/8, ::1").expect("networks");
        endpoint("input.url", "http://127.0.0.1:4000/hook", &loopback).expect("allowed");
        endpoint("input.url", "http://localhost:4000/hook", &loopback).expect("allowed");
        assert!(endpoint("input.url", "http://10.0.0.1/", &loopback).is_err());
        assert!(Networks::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn urls_with_credentials_other_schemes_or_no_host_are_refused() {
        let none = Networks::default();
        for url in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(endpoint("input.url", url, &none).is_err(), "{url}");
        }
    }

    #[test]
    fn events_must_be_known_and_name_a_record() {
        let events = events(
            "input.events",
            &[
                "order.updated".into(),
                "order.added".into(),
                "order.added".into(),
            ],
        )
        .expect("events");
        assert_eq!(events, ["order.added", "order.updated"]);
        assert!(super::events("input.events", &["order.placed".into()]).is_err());
        assert!(super::events("input.events", &[PING.into()]).is_err());
        assert!(super::events("input.events", &[]).is_err());
    }

    #[test]
    fn a_filter_matches_on_the_view_through_lists_and_on_what_changed() {
        let kinds = kinds_of(&["order.updated".into()]);
        let filter = Filter::parse(
            "input.filter",
            vec![
                Condition {
                    field: "shipments.status".into(),
                    values: vec!["DELIVERED".into()],
                },
                Condition {
                    field: "changed".into(),
                    values: vec!["shipments".into()],
                },
            ],
            &kinds,
        )
        .expect("filter");
        let order = json!({ "status": "SHIPPED", "shipments": { "nodes": [
            { "status": "IN_TRANSIT" }, { "status": "DELIVERED" } ] } });
        assert!(filter.matches(&order, &["shipments".into()]));
        assert!(!filter.matches(&order, &["status".into()]));
        let masked = json!({ "status": "SHIPPED", "total": null });
        let on_total = Filter::parse(
            "input.filter",
            vec![Condition {
                field: "total.amount".into(),
                values: vec!["10.00".into()],
            }],
            &kinds,
        )
        .expect("filter");
        assert!(
            !on_total.matches(&masked, &[]),
            "a masked field never matches"
        );
        assert!(
            Filter::parse(
                "input.filter",
                vec![Condition {
                    field: "secretField".into(),
                    values: vec!["x".into()]
                }],
                &kinds
            )
            .is_err()
        );
    }

    #[test]
    fn changed_fields_are_the_top_level_fields_that_differ() {
        let before = json!({ "status": "PLACED", "total": { "amount": "1" }, "gone": 1 });
        let after = json!({ "status": "SHIPPED", "total": { "amount": "1" }, "new": 2 });
        assert_eq!(changed_fields(&before, &after), ["gone", "new", "status"]);
    }
}
