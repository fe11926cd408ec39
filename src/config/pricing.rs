//! The `[pricing]` table: Price overrides and new models (issue 5).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[pricing]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {}

impl PricingConfig {
    /// Checks values the TOML types cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let _ = path;
        Ok(())
    }
}
