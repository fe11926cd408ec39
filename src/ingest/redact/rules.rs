//! The redaction rules as they run: each rule's pattern, compiled on first use, or a
//! hand-written matcher for the built-in rules that are the most expensive to compile.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

/// The name of the built-in rule whose matches run until an end marker, possibly over many
/// lines.
pub(super) const BLOCK_RULE: &str = "private_key_block";

/// One rule ready to run.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) pattern: String,
    pub(super) replacement: String,
    /// Has literals in the prefilter (else runs on every input).
    pub(super) filtered: bool,
    /// Unicode-aware classes (user rules); the built-in patterns are ASCII-only, which
    /// compiles several times faster (the hook pays it when a literal occurs).
    pub(super) unicode: bool,
    /// Matches may span lines (held back until `end_marker`).
    pub(super) end_marker: Option<&'static [u8]>,
    /// A hand-written matcher equivalent to `pattern` (no compile cost on the hook path).
    pub(super) fast: Option<Fast>,
    pub(super) regex: OnceLock<Option<Regex>>,
}

/// Hand-written matchers for the built-in rules whose case-insensitive patterns are the most
/// expensive to compile and the most often triggered (by words such as `password` or `token`
/// in code). Each matches exactly what its rule's pattern matches (ASCII).
#[derive(Debug, Clone, Copy)]
pub(super) enum Fast {
    /// `(?i)(KEYWORD(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)VALUE+`, keywords tried in order.
    Assignment(&'static [&'static str]),
    /// `(?i)(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*`.
    Bearer,
}

/// Keywords of `password_assignment` (`api[_-]?key` spelled out).
pub(super) const PASSWORD_KEYWORDS: &[&str] = &[
    "password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A byte that may be part of an assigned value (see `value_chars!` in the config module).
fn is_value(b: u8) -> bool {
    !is_space(b) && !b"\"'\\,;&|<>(){}[]`".contains(&b)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// Skips an optional quote, or backslash and quote, at `at`.
fn skip_quote(text: &[u8], at: usize) -> usize {
    match (text.get(at), text.get(at + 1)) {
        (Some(b'\\'), Some(b'"' | b'\'')) => at + 2,
        (Some(b'"' | b'\''), _) => at + 1,
        _ => at,
    }
}

fn skip_spaces(text: &[u8], mut at: usize) -> usize {
    while text.get(at).is_some_and(|b| is_space(*b)) {
        at += 1;
    }
    at
}

impl Fast {
    /// The match starting exactly at `start`: `(end of the kept prefix, end of the match)`.
    fn match_at(self, text: &[u8], start: usize) -> Option<(usize, usize)> {
        let keyword_end = |keyword: &str| {
            let end = start + keyword.len();
            text.get(start..end)
                .is_some_and(|w| w.eq_ignore_ascii_case(keyword.as_bytes()))
                .then_some(end)
        };
        match self {
            Fast::Assignment(keywords) => keywords.iter().find_map(|keyword| {
                let mut at = keyword_end(keyword)?;
                at = skip_spaces(text, skip_quote(text, at));
                if !matches!(text.get(at), Some(b':' | b'=')) {
                    return None;
                }
                let keep = skip_quote(text, skip_spaces(text, at + 1));
                let mut end = keep;
                while text.get(end).is_some_and(|b| is_value(*b)) {
                    end += 1;
                }
                (end > keep).then_some((keep, end))
            }),
            Fast::Bearer => {
                let at = keyword_end("bearer")?;
                let keep = skip_spaces(text, at);
                if keep == at {
                    return None;
                }
                let mut end = keep;
                while text.get(end).is_some_and(|b| is_token(*b)) {
                    end += 1;
                }
                if end - keep < 8 {
                    return None;
                }
                while text.get(end) == Some(&b'=') {
                    end += 1;
                }
                Some((keep, end))
            }
        }
    }

    /// Leftmost non-overlapping matches: `(start, end of kept prefix, end)`.
    fn find_all(self, text: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < text.len() {
            match self.match_at(text, at) {
                Some((keep, end)) => {
                    out.push((at, keep, end));
                    at = end.max(at + 1);
                }
                None => at += 1,
            }
        }
        out
    }
}

impl Rule {
    /// Spans `(start, end)` of the rule's matches in `text`.
    pub(super) fn spans(&self, text: &[u8]) -> Vec<(usize, usize)> {
        if let Some(fast) = self.fast {
            return fast
                .find_all(text)
                .into_iter()
                .map(|(start, _, end)| (start, end))
                .collect();
        }
        self.regex().map_or_else(Vec::new, |regex| {
            regex
                .find_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect()
        })
    }

    /// `text` with every match replaced, and the number of matches; `None` when none.
    pub(super) fn replace(&self, text: &[u8]) -> Option<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut last = 0;
        let mut n = 0u32;
        if let Some(fast) = self.fast {
            let replacement = format!("[REDACTED:{}]", self.name);
            for (_, keep, end) in fast.find_all(text) {
                out.extend_from_slice(&text[last..keep]);
                out.extend_from_slice(replacement.as_bytes());
                last = end;
                n += 1;
            }
        } else {
            for caps in self.regex()?.captures_iter(text) {
                let Some(whole) = caps.get(0) else {
                    continue;
                };
                if whole.is_empty() {
                    continue;
                }
                out.extend_from_slice(&text[last..whole.start()]);
                caps.expand(self.replacement.as_bytes(), &mut out);
                last = whole.end();
                n += 1;
            }
        }
        if n == 0 {
            return None;
        }
        out.extend_from_slice(&text[last..]);
        Some((out, n))
    }

    pub(super) fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| match RegexBuilder::new(&self.pattern)
                .unicode(self.unicode)
                .build()
            {
                Ok(regex) => Some(regex),
                Err(e) => {
                    // Unreachable for validated configurations (patterns are compiled there).
                    tracing::error!(rule = %self.name, error = %e, "redaction pattern does not compile");
                    None
                }
            })
            .as_ref()
    }
}
