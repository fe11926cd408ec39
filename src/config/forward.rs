//! The `[forward]` table: `ctrace serve` sends every new record to an OpenTelemetry
//! Collector's OTLP/HTTP receiver (`docs/export.md`, "Forwarding").
//!
//! ```toml
//! [forward]
//! endpoint = "http://collector:4318"        # OTLP/HTTP base URL; /v1/logs etc. are appended
//! headers = { Authorization = "Bearer T" }  # sent with every request
//! signals = ["logs", "metrics", "traces"]   # ctrace's own records count as logs
//! batch = 512                               # records per request, 1 to 10000
//! max_batch_bytes = "4MiB"                   # and at most this much per request, encoded
//! ```
//!
//! Without `endpoint` nothing is forwarded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::model::Signal;

/// Default of `forward.max_batch_bytes` (4 MiB): under the body limits receivers start from
/// (the OpenTelemetry Collector's OTLP/HTTP 20 MiB, `ctrace serve`'s 16 MiB decompressed), and
/// still hundreds of ordinary records per request.
pub const DEFAULT_MAX_BATCH_BYTES: u64 = 4 << 20;

/// Range of `forward.max_batch_bytes`, bytes.
const MAX_BATCH_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=(256 << 20);

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
    /// Bytes per request, about, protobuf before gzip (default 4 MiB): a batch ends at
    /// `batch` records or once it holds this many bytes, whichever comes first (a record
    /// larger than this goes alone). A request the collector refuses as too large (413) is
    /// split in two and each half sent again.
    #[serde(deserialize_with = "super::de_bytes")]
    pub max_batch_bytes: u64,
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
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
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
        if !MAX_BATCH_BYTES_RANGE.contains(&self.max_batch_bytes) {
            return Err(invalid(
                "forward.max_batch_bytes",
                self.max_batch_bytes.to_string(),
                "must be 1KiB to 256MiB",
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    #[test]
    fn max_batch_bytes_takes_units_and_is_bounded() {
        let parse = |text: &str| Config::parse(text, Path::new("c.toml"));
        assert_eq!(
            parse("").unwrap().forward.max_batch_bytes,
            super::DEFAULT_MAX_BATCH_BYTES
        );
        let config = parse("[forward]\nmax_batch_bytes = \"1MiB\"\n").unwrap();
        assert_eq!(config.forward.max_batch_bytes, 1 << 20);
        let config = parse("[forward]\nmax_batch_bytes = 65536\n").unwrap();
        assert_eq!(config.forward.max_batch_bytes, 65536);
        for bad in ["512", "\"1GiB\""] {
            let error = parse(&format!("[forward]\nmax_batch_bytes = {bad}\n")).unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::Invalid {
                        key: "forward.max_batch_bytes",
                        ..
                    }
                ),
                "{bad}: {error:?}"
            );
        }
    }
}
