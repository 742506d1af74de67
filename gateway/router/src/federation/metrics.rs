//! The gateway's Prometheus metrics (`GET /metrics`, text exposition format 0.0.4):
//! requests by outcome, refusals by error code, errors in executed responses by code,
//! end-to-end latency, the time the gateway spends before calling subgraphs (limits,
//! parsing, validation, planning), and its whole overhead (the request's time outside
//! subgraph calls).

use crm_contract::ErrorCode;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Default)]
struct State {
    requests: BTreeMap<&'static str, u64>,
    refusals: BTreeMap<String, u64>,
    response_errors: BTreeMap<String, u64>,
    duration: Histogram,
    preparation: Histogram,
    overhead: Histogram,
    shared: u64,
}

/// Error codes come from subgraphs too: only well-formed ones become label values, and
/// only so many distinct ones, so a misbehaving subgraph cannot blow up the series.
const MAX_ERROR_CODES: usize = 200;

fn code_label(code: &str) -> &str {
    let well_formed = !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if well_formed { code } else { "OTHER" }
}

/// The gateway's counters and histograms.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// How a request ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Executed (possibly with partial data and errors from subgraphs).
    Executed,
    /// Refused before execution, with its error code.
    Refused(ErrorCode),
}

impl Metrics {
    pub fn record(&self, outcome: Outcome, total: Duration) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let label = match outcome {
            Outcome::Executed => "executed",
            Outcome::Refused(code) => {
                *state.refusals.entry(code.as_str().to_owned()).or_default() += 1;
                "refused"
            }
        };
        *state.requests.entry(label).or_default() += 1;
        state.duration.observe(total.as_secs_f64());
    }

    /// The gateway's own time on a request before any subgraph call.
    pub fn record_preparation(&self, took: Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.preparation.observe(took.as_secs_f64());
        }
    }

    /// One error in an executed response (partial data), by its code.
    pub fn record_response_error(&self, code: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut label = code_label(code);
        if !state.response_errors.contains_key(label)
            && state.response_errors.len() >= MAX_ERROR_CODES
        {
            label = "OTHER";
        }
        *state.response_errors.entry(label.to_owned()).or_default() += 1;
    }

    /// The gateway's own time on an executed request: everything but subgraph calls.
    pub fn record_overhead(&self, took: Duration) {
        if let Ok(mut state) = self.state.lock() {
            state.overhead.observe(took.as_secs_f64());
        }
    }

    /// A query answered with the response of an identical one of the same caller that
    /// was in flight (the engine's deduplication).
    pub fn record_shared(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.shared += 1;
        }
    }

    pub fn render(&self, cached_plans: usize) -> String {
        let Ok(state) = self.state.lock() else {
            return String::new();
        };
        let mut out = String::new();
        out.push_str("# HELP crm_gateway_requests_total GraphQL requests by outcome.\n# TYPE crm_gateway_requests_total counter\n");
        for outcome in ["executed", "refused"] {
            let n = state.requests.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "crm_gateway_requests_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP crm_gateway_refusals_total Requests refused before execution, by error code.\n# TYPE crm_gateway_refusals_total counter\n");
        for (code, n) in &state.refusals {
            let _ = writeln!(out, "crm_gateway_refusals_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP crm_gateway_response_errors_total Errors in executed responses (partial data), by code.\n# TYPE crm_gateway_response_errors_total counter\n");
        for (code, n) in &state.response_errors {
            let _ = writeln!(
                out,
                "crm_gateway_response_errors_total{{code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP crm_gateway_request_duration_seconds Time from request to response.\n# TYPE crm_gateway_request_duration_seconds histogram\n");
        state
            .duration
            .render(&mut out, "crm_gateway_request_duration_seconds");
        out.push_str("# HELP crm_gateway_preparation_duration_seconds The gateway's own time before calling subgraphs (limits, parse, validate, plan).\n# TYPE crm_gateway_preparation_duration_seconds histogram\n");
        state
            .preparation
            .render(&mut out, "crm_gateway_preparation_duration_seconds");
        out.push_str("# HELP crm_gateway_overhead_seconds The gateway's own time on an executed request: the request's time minus its subgraph calls (exact for sequential plans; calls in parallel make it a lower bound).\n# TYPE crm_gateway_overhead_seconds histogram\n");
        state
            .overhead
            .render(&mut out, "crm_gateway_overhead_seconds");
        out.push_str("# HELP crm_gateway_shared_requests_total Queries answered with the response of an identical query of the same caller that was in flight.\n# TYPE crm_gateway_shared_requests_total counter\n");
        let _ = writeln!(out, "crm_gateway_shared_requests_total {}", state.shared);
        out.push_str("# HELP crm_gateway_cached_plans Query plans in the cache.\n# TYPE crm_gateway_cached_plans gauge\n");
        let _ = writeln!(out, "crm_gateway_cached_plans {cached_plans}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets_render_in_the_exposition_format() {
        let metrics = Metrics::default();
        metrics.record(Outcome::Executed, Duration::from_millis(3));
        metrics.record(
            Outcome::Refused(ErrorCode::MaxDepthExceeded),
            Duration::from_micros(200),
        );
        metrics.record_preparation(Duration::from_micros(300));
        metrics.record_overhead(Duration::from_micros(700));
        metrics.record_response_error("SUBREQUEST_HTTP_ERROR");
        metrics.record_response_error("not a code\"}");
        metrics.record_shared();
        let text = metrics.render(2);
        assert!(
            text.contains("crm_gateway_requests_total{outcome=\"executed\"} 1"),
            "{text}"
        );
        assert!(text.contains("crm_gateway_refusals_total{code=\"MAX_DEPTH_EXCEEDED\"} 1"));
        assert!(text.contains("crm_gateway_request_duration_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("crm_gateway_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("crm_gateway_request_duration_seconds_count 2"));
        assert!(text.contains("crm_gateway_preparation_duration_seconds_count 1"));
        assert!(text.contains("crm_gateway_cached_plans 2"));
        assert!(text.contains("crm_gateway_shared_requests_total 1"));
        assert!(text.contains("crm_gateway_overhead_seconds_bucket{le=\"0.001\"} 1"));
        assert!(
            text.contains("crm_gateway_response_errors_total{code=\"SUBREQUEST_HTTP_ERROR\"} 1")
        );
        assert!(
            text.contains("crm_gateway_response_errors_total{code=\"OTHER\"} 1"),
            "a malformed code must not become a label: {text}"
        );
    }
}
