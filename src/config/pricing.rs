//! The `[pricing]` table: price overrides and models the bundled price table does not know.
//!
//! ```toml
//! [pricing.models."claude-opus-4-6"]      # replaces the bundled price of this model
//! input = 5.0                            # USD per million tokens
//! output = 25.0
//! cache_write_5m = 6.25
//! cache_write_1h = 10.0
//! cache_read = 0.5
//! ```
//!
//! A model name given here wins over the bundled table; names are matched with and without a
//! `-YYYYMMDD` date suffix, like the bundled ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Prices of one model, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Input tokens (not read from or written to the cache).
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cache writes with the 5-minute TTL.
    pub cache_write_5m: f64,
    /// Cache writes with the 1-hour TTL.
    pub cache_write_1h: f64,
    /// Cache reads.
    pub cache_read: f64,
}

impl ModelPrice {
    /// The five prices with their key names, in declaration order.
    pub fn fields(&self) -> [(&'static str, f64); 5] {
        [
            ("input", self.input),
            ("output", self.output),
            ("cache_write_5m", self.cache_write_5m),
            ("cache_write_1h", self.cache_write_1h),
            ("cache_read", self.cache_read),
        ]
    }
}

/// The `[pricing]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// Per-model prices (`[pricing.models."<model>"]`), overriding the bundled table.
    pub models: BTreeMap<String, ModelPrice>,
}

impl PricingConfig {
    /// Checks values the TOML types cannot express: every price finite and not negative.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        for (model, price) in &self.models {
            if model.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key: "pricing.models",
                    value: format!("{model:?}"),
                    reason: "a model name must not be empty",
                });
            }
            for (key, value) in price.fields() {
                if !value.is_finite() || value < 0.0 {
                    return Err(ConfigError::Invalid {
                        path: path.to_path_buf(),
                        key: match key {
                            "input" => "pricing.models.<model>.input",
                            "output" => "pricing.models.<model>.output",
                            "cache_write_5m" => "pricing.models.<model>.cache_write_5m",
                            "cache_write_1h" => "pricing.models.<model>.cache_write_1h",
                            _ => "pricing.models.<model>.cache_read",
                        },
                        value: format!("{value} (model {model})"),
                        reason: "must be a finite number of USD per million tokens, at least 0",
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn parses_and_validates() {
        let text = r#"
[pricing.models."claude-new-1"]
input = 1.0
output = 2.0
cache_write_5m = 1.25
cache_write_1h = 2.0
cache_read = 0.1
"#;
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(config.pricing.models["claude-new-1"].output, 2.0);
        let bad = text.replace("output = 2.0", "output = -2.0");
        assert!(matches!(
            Config::parse(&bad, Path::new("c.toml")),
            Err(ConfigError::Invalid { .. })
        ));
        let missing = text.replace("cache_read = 0.1", "");
        assert!(matches!(
            Config::parse(&missing, Path::new("c.toml")),
            Err(ConfigError::Parse { .. })
        ));
    }
}
