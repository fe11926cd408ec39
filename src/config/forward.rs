//! The `[forward]` table: `ctrace serve` sends every new record to an OpenTelemetry
//! Collector's OTLP/HTTP receiver (`docs/export.md`, "Forwarding").
//!
//! ```toml
//! [forward]
//! endpoint = "http://collector:4318"        # OTLP/HTTP base URL; /v1/logs etc. are appended
//! headers = { Authorization = "Bearer T" }  # sent with every request
//! signals = ["logs", "metrics", "traces"]   # ctrace's own records count as logs
//! batch = 512                               # records per request, 1 to 10000
//! ```
//!
//! Without `endpoint` nothing is forwarded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::model::Signal;

/// The `[forward]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// The collector's OTLP/HTTP base URL (`http://` or `https://`); `None`: no forwarding.
    pub endpoint: Option<String>,
    /// Headers of every request.
    pub headers: BTreeMap<String, String>,
    /// The signals forwarded (default all three).
    pub signals: Vec<Signal>,
    /// Records per request (default 512).
    pub batch: usize,
    /// Time limit of one request (default 10s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            headers: BTreeMap::new(),
            signals: vec![Signal::Logs, Signal::Metrics, Signal::Traces],
            batch: 512,
            timeout: Duration::from_secs(10),
        }
    }
}

impl ForwardConfig {
    pub(super) fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, value: String, reason| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            value,
            reason,
        };
        if let Some(endpoint) = &self.endpoint {
            let rest = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"));
            if rest.is_none_or(|r| r.split('/').next().unwrap_or("").is_empty()) {
                return Err(invalid(
                    "forward.endpoint",
                    endpoint.clone(),
                    "must be an http:// or https:// URL with a host",
                ));
            }
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(invalid(
                "forward.batch",
                self.batch.to_string(),
                "must be 1 to 10000 records",
            ));
        }
        if self.signals.is_empty() {
            return Err(invalid(
                "forward.signals",
                "[]".to_owned(),
                "must name at least one of logs, metrics, traces",
            ));
        }
        if self.timeout.is_zero() {
            return Err(invalid(
                "forward.timeout",
                "0s".to_owned(),
                "must be more than 0s",
            ));
        }
        for (name, value) in &self.headers {
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ':') {
                return Err(invalid(
                    "forward.headers",
                    name.clone(),
                    "is not a valid header name",
                ));
            }
            if value.contains(['\r', '\n']) {
                return Err(invalid(
                    "forward.headers",
                    name.clone(),
                    "has a line break in its value",
                ));
            }
        }
        Ok(())
    }
}
