//! The `[retention]` table: the retention policy (issue 6). Every key is optional; the default
//! keeps everything.
//!
//! ```toml
//! [retention]
//! max_age = "30d"        # segments whose newest record is older than this go (humantime)
//! max_bytes = "5GiB"     # oldest segments go while the sealed segments take more on disk
//!
//! [retention.pty]        # per source: hook, transcript, pty, otlp, import, internal
//! max_age = "7d"
//! max_bytes = "1GiB"     # raw (uncompressed) bytes of this source's records
//! ```
//!
//! Values are kept as written and checked by [`RetentionConfig::validate`], so that a bad
//! value is a [`ConfigError::Invalid`] naming its key (`retention.pty.max_age`).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A size as written: an integer (bytes) or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// Text such as `"5GiB"`.
    Text(String),
}

impl SizeValue {
    /// The size in bytes, or why it is not a size.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            SizeValue::Bytes(n) => Ok(*n),
            SizeValue::Text(text) => super::parse_bytes(text),
        }
    }

    fn text(&self) -> String {
        match self {
            SizeValue::Bytes(n) => n.to_string(),
            SizeValue::Text(text) => text.clone(),
        }
    }
}

/// Limits of one scope (all records, or one source).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Age limit (humantime, e.g. `"30d"`): for `[retention]`, segments whose newest record is
    /// older go; for a source, its records older than this go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    /// Size limit: for `[retention]`, bytes of sealed segment files on disk; for a source,
    /// raw (uncompressed, framed) bytes of its records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<SizeValue>,
}

impl Limits {
    /// The age limit (`None` when unset or invalid; [`RetentionConfig::validate`] rejects
    /// invalid values).
    pub fn age(&self) -> Option<Duration> {
        self.max_age
            .as_deref()
            .and_then(|text| humantime::parse_duration(text).ok())
    }

    /// The size limit in bytes (`None` when unset or invalid).
    pub fn bytes(&self) -> Option<u64> {
        self.max_bytes.as_ref().and_then(|size| size.bytes().ok())
    }

    /// Whether neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.max_age.is_none() && self.max_bytes.is_none()
    }

    fn validate(
        &self,
        path: &Path,
        age_key: &'static str,
        bytes_key: &'static str,
    ) -> Result<(), ConfigError> {
        let invalid = |key, value: String, reason| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            value,
            reason,
        };
        if let Some(text) = &self.max_age {
            match humantime::parse_duration(text) {
                Err(_) => {
                    return Err(invalid(
                        age_key,
                        text.clone(),
                        "not a duration (examples: \"30d\", \"12h\", \"2weeks\")",
                    ));
                }
                Ok(age) if age.is_zero() => {
                    return Err(invalid(age_key, text.clone(), "must be longer than zero"));
                }
                Ok(_) => {}
            }
        }
        if let Some(size) = &self.max_bytes {
            match size.bytes() {
                Err(_) => {
                    return Err(invalid(
                        bytes_key,
                        size.text(),
                        "not a size (examples: 1073741824, \"5GiB\", \"500 MB\")",
                    ));
                }
                Ok(0) => return Err(invalid(bytes_key, size.text(), "must be more than zero")),
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

/// The `[retention]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Segments whose newest record is older than this are removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    /// Oldest segments are removed while sealed segment files take more bytes than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<SizeValue>,
    /// `[retention.hook]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<Limits>,
    /// `[retention.transcript]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Limits>,
    /// `[retention.pty]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<Limits>,
    /// `[retention.otlp]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<Limits>,
    /// `[retention.import]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<Limits>,
    /// `[retention.internal]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal: Option<Limits>,
}

impl RetentionConfig {
    /// The store-wide limits.
    pub fn global(&self) -> Limits {
        Limits {
            max_age: self.max_age.clone(),
            max_bytes: self.max_bytes.clone(),
        }
    }

    /// The per-source tables by source name (`"pty"`), with their keys for errors.
    pub fn sources(&self) -> [(&'static str, Option<&Limits>, &'static str, &'static str); 6] {
        [
            (
                "hook",
                self.hook.as_ref(),
                "retention.hook.max_age",
                "retention.hook.max_bytes",
            ),
            (
                "transcript",
                self.transcript.as_ref(),
                "retention.transcript.max_age",
                "retention.transcript.max_bytes",
            ),
            (
                "pty",
                self.pty.as_ref(),
                "retention.pty.max_age",
                "retention.pty.max_bytes",
            ),
            (
                "otlp",
                self.otlp.as_ref(),
                "retention.otlp.max_age",
                "retention.otlp.max_bytes",
            ),
            (
                "import",
                self.import.as_ref(),
                "retention.import.max_age",
                "retention.import.max_bytes",
            ),
            (
                "internal",
                self.internal.as_ref(),
                "retention.internal.max_age",
                "retention.internal.max_bytes",
            ),
        ]
    }

    /// Whether any limit is set (else retention keeps everything).
    pub fn is_configured(&self) -> bool {
        !self.global().is_empty()
            || self
                .sources()
                .iter()
                .any(|(_, limits, ..)| limits.is_some_and(|l| !l.is_empty()))
    }

    /// Checks durations and sizes.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key, e.g. `retention.pty.max_age`.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        self.global()
            .validate(path, "retention.max_age", "retention.max_bytes")?;
        for (_, limits, age_key, bytes_key) in self.sources() {
            if let Some(limits) = limits {
                limits.validate(path, age_key, bytes_key)?;
            }
        }
        Ok(())
    }
}
