//! The `[redaction]` table: redaction rules applied before anything is written (issue 6).
//!
//! ```toml
//! [redaction]
//! defaults = true                      # the built-in set (see docs/redaction.md)
//! disable = ["token_assignment"]       # built-in rules to turn off, by name
//!
//! [[redaction.rules]]
//! name = "internal_host"
//! pattern = "corp\\.example\\.com"
//! replacement = "[REDACTED:host]"      # optional; default "[REDACTED:<name>]"
//! literals = ["corp.example"]          # optional prefilter: the rule runs only when one occurs
//! ```
//!
//! Patterns are `regex` crate syntax, matched on bytes. The replacement may use `$1` / `${name}`
//! group references; its literal text must not contain `"`, `\` or control characters, so that
//! redacting inside a JSON string keeps the JSON valid.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[redaction]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Whether the built-in rules are applied (default true).
    pub defaults: bool,
    /// Names of built-in rules not to apply.
    pub disable: Vec<String>,
    /// User rules, applied after the built-in ones, in order.
    pub rules: Vec<RedactionRule>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            defaults: true,
            disable: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// One user redaction rule (`[[redaction.rules]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionRule {
    /// The rule's name, shown in counts and the default replacement.
    pub name: String,
    /// A `regex` crate pattern, matched on the raw bytes.
    pub pattern: String,
    /// Replacement text (default `[REDACTED:<name>]`); may reference groups (`$1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// Literals of which at least one occurs in every match (ASCII case-insensitive). When
    /// given, the pattern is compiled and run only on input containing one of them; when
    /// absent, the rule runs on every input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub literals: Vec<String>,
}

impl RedactionRule {
    /// The replacement text in force.
    pub fn replacement(&self) -> String {
        self.replacement
            .clone()
            .unwrap_or_else(|| format!("[REDACTED:{}]", self.name))
    }
}

/// Whether `text` can stand inside a JSON string unescaped: no `"`, `\` or control characters.
pub(crate) fn json_safe(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
}

impl RedactionConfig {
    /// Checks values the TOML types cannot express: rule names, patterns, replacements and
    /// names of disabled built-in rules.
    ///
    /// # Errors
    /// [`ConfigError::BadEntry`] naming the entry, e.g. `redaction.rules[2].pattern`.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |table, index, field, value: &str, reason: String| ConfigError::BadEntry {
            path: path.to_path_buf(),
            table,
            index,
            field,
            value: value.to_owned(),
            reason,
        };
        for (index, name) in self.disable.iter().enumerate() {
            if !DEFAULT_RULES.iter().any(|rule| rule.name == name) {
                let known: Vec<&str> = DEFAULT_RULES.iter().map(|r| r.name).collect();
                return Err(bad(
                    "redaction.disable",
                    index,
                    "",
                    name,
                    format!("not a built-in rule (built-in: {})", known.join(", ")),
                ));
            }
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let valid_name = !rule.name.is_empty()
                && rule
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                return Err(bad(
                    "redaction.rules",
                    index,
                    "name",
                    &rule.name,
                    "must be non-empty ASCII letters, digits, `_` or `-`".into(),
                ));
            }
            if self.rules[..index].iter().any(|r| r.name == rule.name)
                || DEFAULT_RULES.iter().any(|r| r.name == rule.name)
            {
                return Err(bad(
                    "redaction.rules",
                    index,
                    "name",
                    &rule.name,
                    "is already the name of another rule".into(),
                ));
            }
            match regex::bytes::Regex::new(&rule.pattern) {
                Err(e) => {
                    return Err(bad(
                        "redaction.rules",
                        index,
                        "pattern",
                        &rule.pattern,
                        e.to_string(),
                    ));
                }
                Ok(re) if re.is_match(b"") => {
                    return Err(bad(
                        "redaction.rules",
                        index,
                        "pattern",
                        &rule.pattern,
                        "matches the empty string".into(),
                    ));
                }
                Ok(_) => {}
            }
            if let Some(replacement) = &rule.replacement
                && !json_safe(replacement)
            {
                return Err(bad(
                    "redaction.rules",
                    index,
                    "replacement",
                    replacement,
                    "must not contain `\"`, `\\` or control characters (it must stay valid \
                     inside a JSON string)"
                        .into(),
                ));
            }
            if let Some(literal) = rule.literals.iter().find(|l| l.is_empty()) {
                return Err(bad(
                    "redaction.rules",
                    index,
                    "literals",
                    literal,
                    "must not be empty".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A built-in redaction rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRule {
    /// The rule's name (used in `redaction.disable` and the replacement).
    pub name: &'static str,
    /// The `regex` pattern.
    pub pattern: &'static str,
    /// Replacement (group references allowed).
    pub replacement: &'static str,
    /// Literals of which one occurs in every match (ASCII case-insensitive prefilter).
    pub literals: &'static [&'static str],
}

/// Characters that end an assigned secret value: whitespace, quotes, backslash (a JSON escape)
/// and shell / URL separators.
macro_rules! value_chars {
    () => {
        r#"[^\s"'\\,;&|<>(){}\[\]`]"#
    };
}

/// The built-in rules, applied in this order (documented in `docs/redaction.md`).
pub const DEFAULT_RULES: &[DefaultRule] = &[
    DefaultRule {
        name: "private_key_block",
        pattern: r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        replacement: "[REDACTED:private_key_block]",
        literals: &["-----BEGIN"],
    },
    DefaultRule {
        name: "anthropic_api_key",
        pattern: r"sk-ant-[A-Za-z0-9_\-]{20,}",
        replacement: "[REDACTED:anthropic_api_key]",
        literals: &["sk-ant-"],
    },
    DefaultRule {
        // age (https://age-encryption.org/v1) X25519 and post-quantum identities: Bech32 with
        // the HRP `AGE-SECRET-KEY-` (or `AGE-SECRET-KEY-PQ-`), upper case as `age-keygen`
        // prints them. `ctrace export --encrypt-to` users keep these files beside their work.
        name: "age_secret_key",
        pattern: r"AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Za-z]{20,}",
        replacement: "[REDACTED:age_secret_key]",
        literals: &["AGE-SECRET-KEY-"],
    },
    DefaultRule {
        name: "openai_api_key",
        pattern: r"(^|[^A-Za-z0-9_\-]|\\[nrtbf])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
        replacement: "${1}[REDACTED:openai_api_key]",
        literals: &["sk-"],
    },
    DefaultRule {
        name: "aws_access_key_id",
        pattern: r"(^|[^A-Za-z0-9]|\\[nrtbf])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        replacement: "${1}[REDACTED:aws_access_key_id]",
        literals: &["AKIA", "ASIA", "ABIA", "ACCA"],
    },
    DefaultRule {
        name: "github_token",
        pattern: r"(^|[^A-Za-z0-9]|\\[nrtbf])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
        replacement: "${1}[REDACTED:github_token]",
        literals: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    },
    DefaultRule {
        name: "aws_secret_access_key",
        pattern: r#"(?i)(aws_secret_access_key(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)[A-Za-z0-9/+=]{40}"#,
        replacement: "${1}[REDACTED:aws_secret_access_key]",
        literals: &["aws_secret_access_key"],
    },
    DefaultRule {
        name: "url_credentials",
        // Starts at its literal, so a stream split inside the scheme is still found.
        pattern: r#"(://[^\s:/@"'\\\[\]]+:)[^\s@/"'\\\[\]]+(@)"#,
        replacement: "${1}[REDACTED:url_credentials]${2}",
        literals: &["://"],
    },
    DefaultRule {
        name: "basic_auth_option",
        // The password must hold a non-digit: `-u 1000:1000` (uid:gid, docker) is not one.
        pattern: r#"((?:^|\s)(?:-u|--user|--proxy-user)(?:\s+|=)["']?[^\s:"']+:)\d*[^\s"'\d][^\s"']*"#,
        replacement: "${1}[REDACTED:basic_auth_option]",
        literals: &["-u", "--user", "--proxy-user"],
    },
    DefaultRule {
        name: "stripe_key",
        pattern: r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
        replacement: "[REDACTED:stripe_key]",
        literals: &["sk_live_", "rk_live_", "sk_test_", "rk_test_", "pk_live_"],
    },
    DefaultRule {
        name: "slack_token",
        pattern: r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
        replacement: "[REDACTED:slack_token]",
        literals: &["xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"],
    },
    DefaultRule {
        name: "slack_webhook",
        pattern: r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,}",
        replacement: "[REDACTED:slack_webhook]",
        literals: &["hooks.slack.com/"],
    },
    DefaultRule {
        name: "gitlab_token",
        pattern: r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_\-]{20,}",
        replacement: "[REDACTED:gitlab_token]",
        literals: &["glpat-", "gldt-", "glptt-", "glrt-"],
    },
    DefaultRule {
        name: "gcp_api_key",
        pattern: r"\bAIza[0-9A-Za-z_\-]{35}",
        replacement: "[REDACTED:gcp_api_key]",
        literals: &["AIza"],
    },
    DefaultRule {
        name: "huggingface_token",
        pattern: r"\bhf_[A-Za-z]{34}\b",
        replacement: "[REDACTED:huggingface_token]",
        literals: &["hf_"],
    },
    DefaultRule {
        name: "npm_token",
        pattern: r"\bnpm_[A-Za-z0-9]{36}\b",
        replacement: "[REDACTED:npm_token]",
        literals: &["npm_"],
    },
    DefaultRule {
        name: "pypi_token",
        pattern: r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        replacement: "[REDACTED:pypi_token]",
        literals: &["pypi-AgEIcHlwaS5vcmc"],
    },
    DefaultRule {
        name: "groq_api_key",
        pattern: r"\bgsk_[A-Za-z0-9]{52}\b",
        replacement: "[REDACTED:groq_api_key]",
        literals: &["gsk_"],
    },
    DefaultRule {
        name: "sendgrid_api_key",
        pattern: r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
        replacement: "[REDACTED:sendgrid_api_key]",
        literals: &["SG."],
    },
    DefaultRule {
        name: "jwt",
        pattern: r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        replacement: "[REDACTED:jwt]",
        literals: &["eyJ"],
    },
    DefaultRule {
        name: "bearer_token",
        pattern: r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*",
        replacement: "${1}[REDACTED:bearer_token]",
        literals: &["bearer"],
    },
    DefaultRule {
        name: "password_assignment",
        pattern: concat!(
            r#"(?i)((?:password|passwd|pwd|secret|api[_-]?key)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)"#,
            value_chars!(),
            "+"
        ),
        replacement: "${1}[REDACTED:password_assignment]",
        literals: &[
            "password", "passwd", "pwd", "secret", "apikey", "api_key", "api-key",
        ],
    },
    DefaultRule {
        name: "token_assignment",
        pattern: concat!(
            r#"(?i)(token(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)"#,
            value_chars!(),
            "+"
        ),
        replacement: "${1}[REDACTED:token_assignment]",
        literals: &["token"],
    },
];
