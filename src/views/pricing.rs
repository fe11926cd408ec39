//! The bundled price table and cost arithmetic. Cost is computed at query time, so a new table
//! (or a `[pricing]` override) reprices all history.
//!
//! Prices are Anthropic's list prices in USD per million tokens
//! (<https://docs.anthropic.com/en/docs/about-claude/pricing>). Model names are matched exactly,
//! then without a `-YYYYMMDD` date suffix (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`).
//! Long-context (> 200k input tokens) rates are not applied.

use std::collections::BTreeMap;

use crate::config::pricing::{ModelPrice, PricingConfig};

/// Version of the bundled price table, shown by `ctrace cost`.
pub(crate) const PRICE_TABLE_VERSION: &str = "anthropic-list-2026-02";

const fn price(
    input: f64,
    output: f64,
    cache_write_5m: f64,
    cache_write_1h: f64,
    cache_read: f64,
) -> ModelPrice {
    ModelPrice {
        input,
        output,
        cache_write_5m,
        cache_write_1h,
        cache_read,
    }
}

const OPUS_45: ModelPrice = price(5.0, 25.0, 6.25, 10.0, 0.50);
const OPUS_4: ModelPrice = price(15.0, 75.0, 18.75, 30.0, 1.50);
const SONNET: ModelPrice = price(3.0, 15.0, 3.75, 6.0, 0.30);
const HAIKU_45: ModelPrice = price(1.0, 5.0, 1.25, 2.0, 0.10);
const HAIKU_35: ModelPrice = price(0.80, 4.0, 1.0, 1.6, 0.08);
const HAIKU_3: ModelPrice = price(0.25, 1.25, 0.30, 0.50, 0.03);

/// The bundled table: model name (without date suffix) and its prices.
pub(crate) const BUNDLED: &[(&str, ModelPrice)] = &[
    ("claude-opus-4-8", OPUS_45),
    ("claude-opus-4-7", OPUS_45),
    ("claude-opus-4-6", OPUS_45),
    ("claude-opus-4-5", OPUS_45),
    ("claude-opus-4-1", OPUS_4),
    ("claude-opus-4-0", OPUS_4),
    ("claude-opus-4", OPUS_4),
    ("claude-3-opus", OPUS_4),
    ("claude-3-opus-latest", OPUS_4),
    ("claude-sonnet-4-6", SONNET),
    ("claude-sonnet-4-5", SONNET),
    ("claude-sonnet-4-0", SONNET),
    ("claude-sonnet-4", SONNET),
    ("claude-3-7-sonnet", SONNET),
    ("claude-3-7-sonnet-latest", SONNET),
    ("claude-3-5-sonnet", SONNET),
    ("claude-3-5-sonnet-latest", SONNET),
    ("claude-haiku-4-5", HAIKU_45),
    ("claude-3-5-haiku", HAIKU_35),
    ("claude-3-5-haiku-latest", HAIKU_35),
    ("claude-3-haiku", HAIKU_3),
    // Retired, but still in old transcripts; priced as it was listed (same rates as Sonnet 3.x).
    ("claude-3-sonnet", SONNET),
];

/// Claude Code writes this model name on messages it made up itself (no API call): free.
pub(crate) const SYNTHETIC_MODEL: &str = "<synthetic>";

/// Token counts of one or more API responses, split the way they are priced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache writes, all TTLs.
    pub cache_creation: u64,
    /// Of the cache writes, those with the 1-hour TTL (the rest are priced as 5-minute).
    pub cache_creation_1h: u64,
    /// Cache reads.
    pub cache_read: u64,
}

impl TokenCounts {
    /// Adds another count to this one.
    pub fn add(&mut self, other: &TokenCounts) {
        self.input += other.input;
        self.output += other.output;
        self.cache_creation += other.cache_creation;
        self.cache_creation_1h += other.cache_creation_1h;
        self.cache_read += other.cache_read;
    }

    /// This count minus `other`, each field at least 0.
    pub fn minus(&self, other: &TokenCounts) -> TokenCounts {
        TokenCounts {
            input: self.input.saturating_sub(other.input),
            output: self.output.saturating_sub(other.output),
            cache_creation: self.cache_creation.saturating_sub(other.cache_creation),
            cache_creation_1h: self
                .cache_creation_1h
                .saturating_sub(other.cache_creation_1h),
            cache_read: self.cache_read.saturating_sub(other.cache_read),
        }
    }

    /// All tokens.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_creation + self.cache_read
    }
}

/// The price table in force: the bundled table plus `[pricing]` overrides.
#[derive(Debug, Clone)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
    overrides: usize,
}

impl PriceTable {
    /// The bundled table with `config`'s overrides applied.
    pub fn new(config: &PricingConfig) -> Self {
        let mut models: BTreeMap<String, ModelPrice> = BUNDLED
            .iter()
            .map(|(name, price)| ((*name).to_owned(), *price))
            .collect();
        for (name, price) in &config.models {
            models.insert(name.clone(), *price);
        }
        Self {
            models,
            overrides: config.models.len(),
        }
    }

    /// The version string: the bundled table's, plus the number of config overrides.
    pub fn version(&self) -> String {
        if self.overrides == 0 {
            PRICE_TABLE_VERSION.to_owned()
        } else {
            format!(
                "{PRICE_TABLE_VERSION} + {} override(s) from config",
                self.overrides
            )
        }
    }

    /// The prices of `model`: exact name, then without a `-YYYYMMDD` suffix, then without a
    /// provider prefix (`anthropic/`, `us.anthropic.`). `None` when unknown.
    pub(crate) fn lookup(&self, model: &str) -> Option<ModelPrice> {
        if model == SYNTHETIC_MODEL {
            return Some(price(0.0, 0.0, 0.0, 0.0, 0.0));
        }
        let mut name = model.trim();
        for prefix in ["anthropic/", "anthropic.", "us.anthropic.", "eu.anthropic."] {
            if let Some(rest) = name.strip_prefix(prefix) {
                name = rest;
            }
        }
        if let Some(price) = self.models.get(name) {
            return Some(*price);
        }
        let base = strip_date(name);
        self.models.get(base).copied()
    }

    /// Cost in USD of `tokens` answered by `model`; `None` when the model is unpriced.
    pub fn cost(&self, model: &str, tokens: &TokenCounts) -> Option<f64> {
        let p = self.lookup(model)?;
        let one_hour = tokens.cache_creation_1h.min(tokens.cache_creation);
        let five_minutes = tokens.cache_creation - one_hour;
        Some(
            (tokens.input as f64 * p.input
                + tokens.output as f64 * p.output
                + five_minutes as f64 * p.cache_write_5m
                + one_hour as f64 * p.cache_write_1h
                + tokens.cache_read as f64 * p.cache_read)
                / 1_000_000.0,
        )
    }
}

/// `name` without a trailing `-YYYYMMDD` (8 digits) or `@YYYYMMDD`.
fn strip_date(name: &str) -> &str {
    let bytes = name.as_bytes();
    if bytes.len() > 9 {
        let split = bytes.len() - 9;
        if matches!(bytes[split], b'-' | b'@') && bytes[split + 1..].iter().all(u8::is_ascii_digit)
        {
            return &name[..split];
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_with_and_without_dates() {
        let table = PriceTable::new(&PricingConfig::default());
        assert_eq!(table.lookup("claude-opus-4-6"), Some(OPUS_45));
        assert_eq!(table.lookup("claude-sonnet-4-5-20250929"), Some(SONNET));
        assert_eq!(table.lookup("claude-opus-4-20250514"), Some(OPUS_4));
        assert_eq!(table.lookup("claude-opus-4-1-20250805"), Some(OPUS_4));
        assert_eq!(table.lookup("claude-haiku-4-5-20251001"), Some(HAIKU_45));
        assert_eq!(table.lookup("claude-3-5-haiku-20241022"), Some(HAIKU_35));
        assert_eq!(table.lookup("gpt-5"), None);
        assert_eq!(table.lookup("claude-opus-9"), None);
    }

    #[test]
    fn cost_splits_cache_write_ttls() {
        let table = PriceTable::new(&PricingConfig::default());
        let tokens = TokenCounts {
            input: 1_000_000,
            output: 1_000_000,
            cache_creation: 2_000_000,
            cache_creation_1h: 1_000_000,
            cache_read: 1_000_000,
        };
        let cost = table.cost("claude-opus-4-6", &tokens).unwrap();
        assert!((cost - (5.0 + 25.0 + 6.25 + 10.0 + 0.5)).abs() < 1e-9);
        assert_eq!(table.cost("mystery", &tokens), None);
    }

    #[test]
    fn overrides_win_and_add_models() {
        let mut config = PricingConfig::default();
        config
            .models
            .insert("claude-opus-4-6".into(), price(1.0, 1.0, 1.0, 1.0, 1.0));
        config
            .models
            .insert("house-model".into(), price(2.0, 2.0, 2.0, 2.0, 2.0));
        let table = PriceTable::new(&config);
        assert_eq!(table.lookup("claude-opus-4-6-20260101").unwrap().input, 1.0);
        assert_eq!(table.lookup("house-model").unwrap().input, 2.0);
        assert!(table.version().contains("2 override"));
    }
}
