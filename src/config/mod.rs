//! Configuration (`DESIGN.md` §7): `$CTRACE_HOME/config.toml` or `--config FILE`.
//!
//! Every key is optional with a documented default (see `docs/config.md`). Unknown keys and bad
//! values are errors that name the key. Sizes accept integers (bytes) or strings with a unit
//! (`"64MiB"`, `"256 KiB"`, `"1GB"`); durations use humantime (`"1h"`, `"30m"`).

pub mod forward;
pub mod ingest;
pub mod pricing;
pub mod redaction;
pub mod retention;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::segments::frame::{DEFAULT_FRAME_LIMIT_BYTES, MAX_FRAME_LIMIT_BYTES};
use crate::segments::segment::DEFAULT_BLOCK_BYTES;

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is invalid, has an unknown key, or a value of the wrong type or range.
    #[error(
        "config {}: {}{error}",
        path.display(),
        key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default()
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The dotted key whose value failed (`storage.segment_bytes`), when the error points
        /// at a `key = value` line.
        key: Option<String>,
        /// The parser's error, with the line and a snippet. Shown in this error's message
        /// rather than as its source, so `{:#}` does not print it twice.
        error: Box<toml::de::Error>,
    },
    /// A value parsed but is out of range.
    #[error("config {}: key `{key}` = {value}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `storage.zstd_level`.
        key: &'static str,
        /// The value as given.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// An entry of an array (`redaction.rules[2].pattern`, `redaction.disable[0]`) is invalid.
    #[error(
        "config {}: key `{table}[{index}]{}{field}` = {value:?}: {reason}",
        path.display(),
        if field.is_empty() { "" } else { "." }
    )]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// Dotted key of the array, e.g. `redaction.rules`.
        table: &'static str,
        /// Index in the array, from 0.
        index: usize,
        /// Field of the entry (`pattern`), empty when the entry is a plain value.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong (for patterns, the regex compiler's message).
        reason: String,
    },
}

/// Default of `storage.max_record_bytes` (16 MiB): about 90× the longest line of the corpus
/// (174 KiB), and small enough that the few copies of one record a command holds at once stay
/// well under the 256 MiB peak-RSS bound (`docs/benchmarks.md`).
pub(crate) const DEFAULT_MAX_RECORD_BYTES: u64 = 16 << 20;
/// Largest `storage.max_record_bytes` accepted (64 MiB): a record this large plus its
/// envelope fits a block that every reader accepts
/// ([`crate::segments::segment::MAX_BLOCK_RAW_BYTES`], 256 MiB) with room to spare.
pub(crate) const MAX_MAX_RECORD_BYTES: u64 = 64 << 20;

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Rely on the OS page cache; a record survives a process crash but maybe not a power cut.
    #[default]
    None,
    /// `fdatasync` after every appended record.
    Fsync,
}

/// The `[storage]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Roll to a new segment once the current one holds this many raw bytes (default 64 MiB).
    #[serde(deserialize_with = "de_bytes")]
    pub segment_bytes: u64,
    /// Roll to a new segment once the current one is this old (default 1h).
    #[serde(with = "humantime_serde")]
    pub segment_age: Duration,
    /// Raw bytes per compressed block (default 512 KiB).
    #[serde(deserialize_with = "de_bytes")]
    pub block_bytes: u64,
    /// zstd level for blocks when sealing, 1–22 (default 3: sealing stays fast).
    pub zstd_level: i32,
    /// zstd level the compactor (`ctrace compact`) recompresses sealed segments to, 1–22, or 0
    /// to leave them as sealed (default 9: about 10% smaller than level 3 at 512 KiB blocks,
    /// at ~30 MB/s of one core, off the hook path).
    pub compaction_zstd_level: i32,
    /// `none` (default) or `fsync` after every appended record.
    pub durability: Durability,
    /// Largest frame payload in bytes (default 1 MiB, at most 64 MiB); larger records are
    /// split across continuation frames, never truncated.
    #[serde(deserialize_with = "de_bytes")]
    pub frame_limit: u64,
    /// Largest hook payload or transcript line kept whole, in bytes (default 16 MiB, 4 KiB to
    /// 64 MiB). A larger input is stored as a record holding its first `max_record_bytes`
    /// bytes, flagged `truncated` with the whole input's size and SHA-256, and reported; never
    /// dropped, and never read into memory whole (`docs/config.md`).
    #[serde(deserialize_with = "de_bytes")]
    pub max_record_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            segment_age: Duration::from_secs(3600),
            block_bytes: DEFAULT_BLOCK_BYTES as u64,
            zstd_level: 3,
            compaction_zstd_level: 9,
            durability: Durability::None,
            frame_limit: u64::from(DEFAULT_FRAME_LIMIT_BYTES),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Storage keys.
    pub storage: StorageConfig,
    /// Retention policy.
    pub retention: retention::RetentionConfig,
    /// Redaction rules.
    pub redaction: redaction::RedactionConfig,
    /// Price overrides.
    pub pricing: pricing::PricingConfig,
    /// Forwarding to an OpenTelemetry Collector (`ctrace serve`).
    pub forward: forward::ForwardConfig,
    /// Where the transcripts hooks name may be read from.
    pub ingest: ingest::IngestConfig,
}

impl Config {
    /// Loads `path`; a missing file gives the defaults when `required` is false.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and key.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&text, path)
    }

    /// Parses TOML text; `path` is only used in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            key: error.span().and_then(|span| key_at(text, span.start)),
            error: Box::new(error),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        self.retention.validate(path)?;
        self.redaction.validate(path)?;
        self.pricing.validate(path)?;
        self.forward.validate(path)?;
        self.ingest.validate(path)?;
        let s = &self.storage;
        let invalid = |key, value: String, reason| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            value,
            reason,
        };
        if !(1..=22).contains(&s.zstd_level) {
            return Err(invalid(
                "storage.zstd_level",
                s.zstd_level.to_string(),
                "must be 1 to 22",
            ));
        }
        if !(0..=22).contains(&s.compaction_zstd_level) {
            return Err(invalid(
                "storage.compaction_zstd_level",
                s.compaction_zstd_level.to_string(),
                "must be 0 (off) or 1 to 22",
            ));
        }
        if !(4096..=(64 << 20)).contains(&s.block_bytes) {
            return Err(invalid(
                "storage.block_bytes",
                s.block_bytes.to_string(),
                "must be 4 KiB to 64 MiB",
            ));
        }
        if s.segment_bytes < s.block_bytes {
            return Err(invalid(
                "storage.segment_bytes",
                s.segment_bytes.to_string(),
                "must be at least storage.block_bytes",
            ));
        }
        if !(4096..=u64::from(MAX_FRAME_LIMIT_BYTES)).contains(&s.frame_limit) {
            return Err(invalid(
                "storage.frame_limit",
                s.frame_limit.to_string(),
                "must be 4 KiB to 64 MiB",
            ));
        }
        if !(4096..=MAX_MAX_RECORD_BYTES).contains(&s.max_record_bytes) {
            return Err(invalid(
                "storage.max_record_bytes",
                s.max_record_bytes.to_string(),
                "must be 4 KiB to 64 MiB",
            ));
        }
        if s.segment_age.is_zero() {
            return Err(invalid(
                "storage.segment_age",
                "0s".into(),
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// `storage.max_record_bytes` as usize bytes.
    pub fn max_record_bytes(&self) -> usize {
        usize::try_from(self.storage.max_record_bytes).unwrap_or(usize::MAX)
    }

    /// The frame limit as u32 bytes.
    pub fn frame_limit(&self) -> u32 {
        u32::try_from(self.storage.frame_limit).unwrap_or(DEFAULT_FRAME_LIMIT_BYTES)
    }

    /// The effective configuration as TOML.
    ///
    /// # Errors
    /// Never in practice; serialization errors come from the toml crate.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}

/// The dotted key of the `key = value` line holding byte position `at` of `text`: the key
/// before the `=`, prefixed by the nearest `[table]` header above it (`storage.zstd_level`).
/// `None` when the line is not a simple assignment (a header, an inline table, an array).
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text.get(at..)?.find('\n').map_or(text.len(), |i| at + i);
    let line = text.get(line_start..line_end)?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let table = text
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_owned(),
    })
}

/// Largest byte size accepted (`i64::MAX` bytes, 8 EiB): every value must print back as a
/// TOML integer (`ctrace config`), and TOML integers are signed 64-bit (TOML 1.0, "Integer").
pub const MAX_SIZE_BYTES: u64 = i64::MAX as u64;

/// Parses a byte size with the `parse-size` crate: an integer, or a number with a unit `B`,
/// `K`/`KB`/`M`/`MB`/`G`/`GB`/`T`/`TB` (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of
/// 1024), case-insensitive, optional spaces (`PB`/`EB`/`PiB`/`EiB`, `_` digit separators and
/// exponents such as `1e6` parse too). A fraction is exact and rounded to the nearest byte
/// (`1.5 KiB` = 1536); a leading `.` (`.5 KiB`) reads as `0.5`. At most [`MAX_SIZE_BYTES`].
///
/// # Errors
/// A message saying what was wrong with `text`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    // parse-size wants a digit first; `.5 KiB` has always meant half a KiB here.
    let number = match text.strip_prefix('.') {
        Some(fraction) if fraction.starts_with(|c: char| c.is_ascii_digit()) => {
            std::borrow::Cow::Owned(format!("0.{fraction}"))
        }
        _ => std::borrow::Cow::Borrowed(text),
    };
    let out_of_range = || format!("size `{text}` is out of range (at most 8 EiB)");
    let bytes = parse_size::parse_size(number.as_bytes()).map_err(|error| match error {
        parse_size::Error::PosOverflow => out_of_range(),
        _ => format!(
            "`{text}` is not a size (examples: 4096, \"256KiB\", \"64 MiB\"; units B, KB, MB, \
             GB, TB, KiB, MiB, GiB, TiB)"
        ),
    })?;
    if bytes > MAX_SIZE_BYTES {
        return Err(out_of_range());
    }
    Ok(bytes)
}

fn de_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Int(n) if n <= MAX_SIZE_BYTES => Ok(n),
        Size::Int(n) => Err(serde::de::Error::custom(format!(
            "size {n} is out of range (at most 8 EiB)"
        ))),
        Size::Text(text) => parse_bytes(&text).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_units() {
        let config = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(config, Config::default());
        let config = Config::parse(
            "[storage]\nsegment_bytes = \"128MiB\"\nblock_bytes = 65536\nsegment_age = \"30m\"\ndurability = \"fsync\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(config.storage.segment_bytes, 128 << 20);
        assert_eq!(config.storage.block_bytes, 65536);
        assert_eq!(config.storage.segment_age, Duration::from_secs(1800));
        assert_eq!(config.storage.durability, Durability::Fsync);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::parse("[storage]\nsegmnet_bytes = 1\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("segmnet_bytes"), "{err}");
        let err = Config::parse("[storage]\nzstd_level = 99\n", Path::new("c.toml")).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "storage.zstd_level",
                ..
            }
        ));
        let err = Config::parse(
            "[storage]\ndurability = \"sometimes\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("durability"), "{err}");
        let err = Config::parse(
            "[storage]\nblock_bytes = \"12 parsecs\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("block_bytes"), "{err}");
        let err = Config::parse("[nope]\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    /// Issue 14 item 18: an out-of-range or malformed value names its key, and whatever loads
    /// prints back (`ctrace config`).
    #[test]
    fn range_errors_name_the_key() {
        let cases = [
            (
                "[storage]\nsegment_bytes = \"18446744073709551615B\"\n",
                "storage.segment_bytes",
            ),
            (
                "[storage]\nsegment_bytes = \"9223372036854775808\"\n",
                "storage.segment_bytes",
            ),
            (
                "[storage]\nblock_bytes = \"99999999999999999999999B\"\n",
                "storage.block_bytes",
            ),
            (
                "[storage]\nframe_limit = \"1 parsec\"\n",
                "storage.frame_limit",
            ),
            (
                "[storage]\nzstd_level = 99999999999\n",
                "storage.zstd_level",
            ),
            ("[storage]\nzstd_level = \"high\"\n", "storage.zstd_level"),
            (
                "[storage]\nsegment_age = \"forever\"\n",
                "storage.segment_age",
            ),
            (
                "[storage]\ncompaction_zstd_level = -1\n",
                "storage.compaction_zstd_level",
            ),
            (
                "# c\n[retention]\nmax_bytes = \"18446744073709551615B\"\n",
                "retention.max_bytes",
            ),
            (
                "[retention]\nmax_age = \"9999999999999999999999d\"\n",
                "retention.max_age",
            ),
        ];
        for (text, key) in cases {
            let err = Config::parse(text, Path::new("c.toml")).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let config = Config::parse("[storage]\nsegment_bytes = \"8EiB\"\n", Path::new("c.toml"));
        assert!(config.is_err(), "8 EiB is one past the TOML integer range");
        let config = Config::parse(
            "[storage]\nsegment_bytes = \"9223372036854775807\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(config.to_toml().is_ok());
    }

    #[test]
    fn parse_bytes_units() {
        assert_eq!(parse_bytes("5GiB").unwrap(), 5 << 30);
        assert_eq!(parse_bytes("1.5 KiB").unwrap(), 1536);
        assert_eq!(parse_bytes("2kb").unwrap(), 2000);
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("").is_err());
    }

    /// Issue 15: `parse_bytes` goes through `parse-size`; every unit accepted before still
    /// parses to the same value, and the edges (empty, unit only, negative, overflow of u64
    /// and of the TOML integer range) are errors.
    #[test]
    fn parse_bytes_edges() {
        let cases: [(&str, u64); 22] = [
            ("0", 0),
            ("4096", 4096),
            ("7B", 7),
            ("7 b", 7),
            ("2k", 2000),
            ("2K", 2000),
            ("3MB", 3_000_000),
            ("3m", 3_000_000),
            ("4gb", 4_000_000_000),
            ("5 TB", 5_000_000_000_000),
            ("1KiB", 1024),
            ("64 MiB", 64 << 20),
            ("1gib", 1 << 30),
            ("2 TiB", 2 << 40),
            ("  256KiB  ", 256 << 10),
            ("0.5KiB", 512),
            (".5 KiB", 512),
            ("1.25 MiB", 1_310_720),
            ("1.", 1),
            ("7EiB", 7 << 60),
            ("9223372036854775807", MAX_SIZE_BYTES),
            ("9223372036854775807B", MAX_SIZE_BYTES),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "   ",
            "KiB",
            ".",
            "-1",
            "1 parsec",
            "1,5",
            "0x10",
            "8EiB",
            "9223372036854775808",
            "18446744073709551615B",
            "18446744073709551616B",
            "99999999999999999999999B",
            "1e30",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} parsed");
        }
    }

    /// Issue 15: `segment_age` goes through `humantime-serde`; what `ctrace config` prints
    /// parses back to the same duration, and a bad duration names its key.
    #[test]
    fn segment_age_round_trips_through_humantime_serde() {
        let config = Config::parse(
            "[storage]\nsegment_age = \"1h 30m 5s\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(config.storage.segment_age, Duration::from_secs(5405));
        let printed = config.to_toml().unwrap();
        assert!(printed.contains("segment_age = \"1h 30m 5s\""), "{printed}");
        assert_eq!(
            Config::parse(&printed, Path::new("c.toml")).unwrap(),
            config
        );
        let err = Config::parse("[storage]\nsegment_age = 5\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("storage.segment_age"), "{err}");
    }
}
