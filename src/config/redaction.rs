//! The `[redaction]` table: Redaction rules applied before anything is written (issue 6).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[redaction]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {}

impl RedactionConfig {
    /// Checks values the TOML types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let _ = path;
        Ok(())
    }
}
