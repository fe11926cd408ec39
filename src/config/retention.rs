//! The `[retention]` table: Retention policy (issue 6): keep everything by default.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[retention]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {}

impl RetentionConfig {
    /// Checks values the TOML types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let _ = path;
        Ok(())
    }
}
