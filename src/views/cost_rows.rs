//! The rows of `ctrace cost --json` and the service's `/api/cost`, built from a
//! [`CostReport`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::cost::{CostReport, CostRow, GroupBy};
use super::pricing::TokenCounts;

/// One row of `ctrace cost --json` and `/api/cost`: the group key under its name (`session`,
/// `day`, …), tokens, the cost in USD (`None` when a model has no price) and the time range.
#[derive(Debug, Serialize)]
pub struct CostJsonRow {
    #[serde(flatten)]
    /// `key` of the JSON row.
    pub key: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `model` of the JSON row.
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `models` of the JSON row.
    pub models: Option<Vec<String>>,
    /// `input_tokens` of the JSON row.
    pub input_tokens: u64,
    /// `output_tokens` of the JSON row.
    pub output_tokens: u64,
    /// `cache_creation_tokens` of the JSON row.
    pub cache_creation_tokens: u64,
    /// `cache_creation_1h_tokens` of the JSON row.
    pub cache_creation_1h_tokens: u64,
    /// `cache_read_tokens` of the JSON row.
    pub cache_read_tokens: u64,
    /// `total_tokens` of the JSON row.
    pub total_tokens: u64,
    /// `responses` of the JSON row.
    pub responses: u64,
    /// `cost_usd` of the JSON row.
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    /// `unpriced_models` of the JSON row.
    pub unpriced_models: Vec<String>,
    /// `first` of the JSON row.
    pub first: String,
    /// `last` of the JSON row.
    pub last: String,
    /// `price_table` of the JSON row.
    pub price_table: String,
    /// Responses whose USD is what Claude Code's telemetry reported (`--source telemetry` or
    /// `best`; omitted when 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub reported_responses: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A group's rows merged (all models).
#[derive(Debug)]
pub struct Merged {
    /// The group key.
    pub key: String,
    /// Models of the group, in row order.
    pub models: Vec<String>,
    /// Tokens summed.
    pub tokens: TokenCounts,
    /// API responses.
    pub responses: u64,
    /// USD, `None` when a model is unpriced.
    pub cost: Option<f64>,
    /// Models without a price.
    pub unpriced: Vec<String>,
    /// First response, ns since the epoch.
    pub first_ns: u64,
    /// Last response, ns since the epoch.
    pub last_ns: u64,
    /// Responses whose USD came from telemetry.
    pub reported_responses: u64,
}

/// Merges consecutive rows of the same key (the query orders them by key) into one per group.
pub fn merge(rows: &[CostRow]) -> Vec<Merged> {
    let mut out: Vec<Merged> = Vec::new();
    for row in rows {
        if out.last().is_none_or(|m| m.key != row.key) {
            out.push(Merged {
                key: row.key.clone(),
                models: Vec::new(),
                tokens: TokenCounts::default(),
                responses: 0,
                cost: Some(0.0),
                unpriced: Vec::new(),
                first_ns: u64::MAX,
                last_ns: 0,
                reported_responses: 0,
            });
        }
        if let Some(m) = out.last_mut() {
            m.models.push(row.model.clone());
            m.tokens.add(&row.tokens);
            m.responses += row.responses;
            m.reported_responses += row.reported_responses;
            m.first_ns = m.first_ns.min(row.first_ns);
            m.last_ns = m.last_ns.max(row.last_ns);
            match row.cost_usd {
                Some(c) => m.cost = m.cost.map(|x| x + c),
                None => {
                    m.cost = None;
                    m.unpriced.push(row.model.clone());
                }
            }
        }
    }
    out
}

/// The JSON rows of a cost report: one per group (models merged), or with `breakdown` one per
/// group and model.
pub fn json_rows(by: GroupBy, report: &CostReport, breakdown: bool) -> Vec<CostJsonRow> {
    let ts = crate::model::format_ts;
    let key = |k: &str| BTreeMap::from([(by.key_name(), k.to_owned())]);
    let rows: Vec<CostJsonRow> = if breakdown {
        report
            .rows
            .iter()
            .map(|r| CostJsonRow {
                key: key(&r.key),
                model: Some(r.model.clone()),
                models: None,
                input_tokens: r.tokens.input,
                output_tokens: r.tokens.output,
                cache_creation_tokens: r.tokens.cache_creation,
                cache_creation_1h_tokens: r.tokens.cache_creation_1h,
                cache_read_tokens: r.tokens.cache_read,
                total_tokens: r.tokens.total(),
                responses: r.responses,
                cost_usd: r.cost_usd,
                unpriced_models: if r.cost_usd.is_none() {
                    vec![r.model.clone()]
                } else {
                    Vec::new()
                },
                first: ts(r.first_ns),
                last: ts(r.last_ns),
                price_table: report.price_table.clone(),
                reported_responses: r.reported_responses,
            })
            .collect()
    } else {
        merge(&report.rows)
            .into_iter()
            .map(|m| CostJsonRow {
                key: key(&m.key),
                model: None,
                models: Some(m.models),
                input_tokens: m.tokens.input,
                output_tokens: m.tokens.output,
                cache_creation_tokens: m.tokens.cache_creation,
                cache_creation_1h_tokens: m.tokens.cache_creation_1h,
                cache_read_tokens: m.tokens.cache_read,
                total_tokens: m.tokens.total(),
                responses: m.responses,
                cost_usd: m.cost,
                unpriced_models: m.unpriced,
                first: ts(m.first_ns),
                last: ts(m.last_ns),
                price_table: report.price_table.clone(),
                reported_responses: m.reported_responses,
            })
            .collect()
    };
    rows
}
