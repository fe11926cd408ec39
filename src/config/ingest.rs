//! The `[ingest]` table: where the transcripts that hooks name may be read from.
//!
//! ```toml
//! [ingest]
//! transcript_roots = ["/srv/claude/projects"]   # besides Claude Code's projects directories
//! ```
//!
//! A hook's `transcript_path` is tailed only when it resolves below Claude Code's projects
//! directories (`$CLAUDE_CONFIG_DIR/projects`, `~/.claude/projects`) or below one of these
//! roots (`docs/security.md`, "Transcripts named by hooks").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[ingest]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// More directories (absolute paths) below which the transcripts named by hooks are read;
    /// default none.
    pub transcript_roots: Vec<PathBuf>,
}

impl IngestConfig {
    pub(super) fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        for (index, root) in self.transcript_roots.iter().enumerate() {
            if !root.is_absolute() {
                return Err(ConfigError::BadEntry {
                    path: path.to_path_buf(),
                    table: "ingest.transcript_roots",
                    index,
                    field: "",
                    value: root.display().to_string(),
                    reason: "must be an absolute path".to_owned(),
                });
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
    fn roots_must_be_absolute() {
        let config = Config::parse(
            "[ingest]\ntranscript_roots = [\"/srv/claude/projects\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            config.ingest.transcript_roots,
            vec![PathBuf::from("/srv/claude/projects")]
        );
        let err = Config::parse(
            "[ingest]\ntranscript_roots = [\"/a\", \"rel/projects\"]\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::BadEntry {
                    table: "ingest.transcript_roots",
                    index: 1,
                    ..
                }
            ),
            "{err}"
        );
        let err = Config::parse("[ingest]\nroots = []\n", Path::new("c.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }
}
