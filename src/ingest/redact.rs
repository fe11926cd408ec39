//! Redaction: secrets are replaced before anything is written (hook payloads, transcript
//! lines, the PTY stream). Rules are the built-in set ([`DEFAULT_RULES`]) minus the disabled
//! ones, then the user's `[[redaction.rules]]`, applied in that order.
//!
//! Cost: a [`Redactor`] costs nothing to build (no regex, no automaton). One ASCII
//! case-insensitive pass over the input looks for the rules' required literals (a first-byte
//! table; for inputs of 64 KiB or more an Aho-Corasick automaton, built once per `Redactor`);
//! a rule's regex is compiled (once per `Redactor`) and run only when one of its literals
//! occurs. Input without any literal is returned untouched, without copying.
//!
//! Invariants:
//! - Valid JSON stays valid JSON: built-in patterns never consume `"` or `\`, replacements
//!   contain neither; if a user pattern breaks the JSON anyway, the payload is parsed and every
//!   string value is redacted on its own, then the JSON is serialized again.
//! - In a stream ([`StreamRedactor`]) a secret split across chunks is still found: each chunk's
//!   tail that could be the start of a secret is held back, at most [`MAX_HOLD_BYTES`], until
//!   the next chunk or [`StreamRedactor::finish`].

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

mod records;
mod rules;

pub use crate::config::redaction::DEFAULT_RULES;
use crate::config::redaction::RedactionConfig;
use rules::{BLOCK_RULE, Fast, PASSWORD_KEYWORDS, Rule};

/// Largest tail of a stream held back as a possible start of a secret (8 KiB: a PEM private
/// key of an 8192-bit RSA key fits).
pub const MAX_HOLD_BYTES: usize = 8 << 10;

/// A literal a rule requires (one occurrence triggers the rule).
struct Literal {
    /// The rule's index.
    rule: usize,
    text: String,
}

/// A compiled set of redaction rules.
#[derive(Debug)]
pub struct Redactor {
    rules: Vec<Rule>,
    /// Rule index of each literal.
    literal_rule: Vec<usize>,
    /// Lowercased literals (ASCII), never empty.
    literals_lower: Vec<Vec<u8>>,
    /// Whether some literal starts with this (lowercased) byte.
    first_bytes: [bool; 256],
    /// Aho-Corasick automaton over the literals, built on first use for large inputs.
    automaton: OnceLock<Option<AhoCorasick>>,
}

/// Inputs at least this long are searched with the Aho-Corasick automaton; shorter ones (a
/// hook payload, a PTY chunk) with a first-byte scan, so that a `Redactor` costs nothing to
/// build (64 KiB).
const AUTOMATON_MIN_BYTES: usize = 64 << 10;

impl Redactor {
    /// Builds the rules of `config` (no regex is compiled yet).
    pub fn new(config: &RedactionConfig) -> Self {
        let mut rules = Vec::new();
        let mut literals: Vec<Literal> = Vec::new();
        if config.defaults {
            for rule in DEFAULT_RULES {
                if config.disable.iter().any(|name| name == rule.name) {
                    continue;
                }
                let index = rules.len();
                literals.extend(rule.literals.iter().map(|l| Literal {
                    rule: index,
                    text: (*l).to_owned(),
                }));
                rules.push(Rule {
                    name: rule.name.to_owned(),
                    pattern: rule.pattern.to_owned(),
                    replacement: rule.replacement.to_owned(),
                    filtered: !rule.literals.is_empty(),
                    unicode: false,
                    end_marker: (rule.name == BLOCK_RULE).then_some(b"-----END".as_slice()),
                    fast: match rule.name {
                        "password_assignment" => Some(Fast::Assignment(PASSWORD_KEYWORDS)),
                        "token_assignment" => Some(Fast::Assignment(&["token"])),
                        "bearer_token" => Some(Fast::Bearer),
                        _ => None,
                    },
                    regex: OnceLock::new(),
                });
            }
        }
        for rule in &config.rules {
            let index = rules.len();
            literals.extend(rule.literals.iter().map(|l| Literal {
                rule: index,
                text: l.clone(),
            }));
            rules.push(Rule {
                name: rule.name.clone(),
                pattern: rule.pattern.clone(),
                replacement: rule.replacement(),
                filtered: !rule.literals.is_empty(),
                unicode: true,
                end_marker: None,
                fast: None,
                regex: OnceLock::new(),
            });
        }
        literals.retain(|l| !l.text.is_empty());
        let mut first_bytes = [false; 256];
        for literal in &literals {
            if let Some(&b) = literal.text.as_bytes().first() {
                first_bytes[usize::from(b.to_ascii_lowercase())] = true;
            }
        }
        Self {
            rules,
            literal_rule: literals.iter().map(|l| l.rule).collect(),
            literals_lower: literals
                .iter()
                .map(|l| l.text.to_ascii_lowercase().into_bytes())
                .collect(),
            first_bytes,
            automaton: OnceLock::new(),
        }
    }

    /// Calls `found(position, literal)` for every occurrence of every literal in `input`
    /// (ASCII case-insensitive, overlapping).
    fn for_each_literal(&self, input: &[u8], mut found: impl FnMut(usize, usize)) {
        if self.literals_lower.is_empty() {
            return;
        }
        if input.len() >= AUTOMATON_MIN_BYTES
            && let Some(automaton) = self
                .automaton
                .get_or_init(|| {
                    AhoCorasick::builder()
                        .ascii_case_insensitive(true)
                        .build(&self.literals_lower)
                        .map_err(
                            |e| tracing::error!(error = %e, "redaction prefilter does not build"),
                        )
                        .ok()
                })
                .as_ref()
        {
            for m in automaton.find_overlapping_iter(input) {
                found(m.start(), m.pattern().as_usize());
            }
            return;
        }
        for (at, &b) in input.iter().enumerate() {
            let lower = b.to_ascii_lowercase();
            if !self.first_bytes[usize::from(lower)] {
                continue;
            }
            for (k, literal) in self.literals_lower.iter().enumerate() {
                if literal[0] == lower
                    && input
                        .get(at..at + literal.len())
                        .is_some_and(|window| window.eq_ignore_ascii_case(literal))
                {
                    found(at, k);
                }
            }
        }
    }

    /// Whether there is no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules that may match `input`: unfiltered ones, and those whose literal occurs.
    fn triggered(&self, input: &[u8]) -> Vec<bool> {
        let mut hit: Vec<bool> = self.rules.iter().map(|r| !r.filtered).collect();
        if hit.iter().any(|h| !h) {
            self.for_each_literal(input, |_, literal| hit[self.literal_rule[literal]] = true);
        }
        hit
    }

    /// Redacts `input`. Returns `None` when nothing matched (the common case, no copy), else
    /// the redacted bytes and the number of replacements.
    pub fn redact(&self, input: &[u8]) -> Option<(Vec<u8>, u32)> {
        let hit = self.triggered(input);
        let mut current: Option<Vec<u8>> = None;
        let mut count = 0u32;
        for (rule, _) in self.rules.iter().zip(&hit).filter(|(_, hit)| **hit) {
            let text = current.as_deref().unwrap_or(input);
            if let Some((out, n)) = rule.replace(text) {
                current = Some(out);
                count = count.saturating_add(n);
            }
        }
        current.map(|bytes| (bytes, count))
    }

    /// Redacts a payload that may be JSON (a hook payload, a transcript line), keeping valid
    /// JSON valid. Returns the bytes to store and the number of replacements.
    pub fn redact_json(&self, input: Vec<u8>) -> (Vec<u8>, u32) {
        let Some((out, count)) = self.redact(&input) else {
            // `\uXXXX` escapes can hide a secret from the byte-level rules
            // (`sk\u002dant\u002d…`): match the decoded strings as well.
            if memchr::memmem::find(&input, b"\\u").is_some()
                && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&input)
            {
                let count = self.redact_value(&mut value);
                if count > 0
                    && let Ok(bytes) = serde_json::to_vec(&value)
                {
                    return (bytes, count);
                }
            }
            return (input, 0);
        };
        let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&input) else {
            return (out, count);
        };
        if serde_json::from_slice::<serde_json::Value>(&out)
            .is_ok_and(|redacted| same_shape(&value, &redacted))
        {
            return (out, count);
        }
        // A match crossed JSON structure: redact each string value on its own.
        let count = self.redact_value(&mut value);
        match serde_json::to_vec(&value) {
            Ok(bytes) => (bytes, count),
            Err(_) => (out, count),
        }
    }

    /// Redacts every string of a JSON value in place; returns the number of replacements.
    pub fn redact_value(&self, value: &mut serde_json::Value) -> u32 {
        use serde_json::Value;
        match value {
            Value::String(text) => match self.redact(text.as_bytes()) {
                Some((bytes, n)) => {
                    *text = String::from_utf8_lossy(&bytes).into_owned();
                    n
                }
                None => 0,
            },
            Value::Array(items) => items.iter_mut().map(|v| self.redact_value(v)).sum(),
            Value::Object(map) => map.values_mut().map(|v| self.redact_value(v)).sum(),
            _ => 0,
        }
    }

    /// Where the held-back tail of `buf` starts: the earliest position from which a secret
    /// could still continue into the next chunk (`buf.len()` when nothing needs holding).
    fn hold_point(&self, buf: &[u8]) -> usize {
        let window = buf.len().saturating_sub(MAX_HOLD_BYTES);
        let mut hold = buf.len();
        // A suffix that is the beginning of a literal (`...sk-a` | `nt-api03...`).
        for literal in &self.literals_lower {
            for len in (1..literal.len()).rev() {
                if buf.len() >= len && buf[buf.len() - len..].eq_ignore_ascii_case(&literal[..len])
                {
                    hold = hold.min(buf.len() - len);
                    break;
                }
            }
        }
        // A literal whose secret may not be complete: no line end after it yet (or, for a
        // private key block, no end marker).
        self.for_each_literal(&buf[window..], |at, literal| {
            let start = window + at;
            let rule = &self.rules[self.literal_rule[literal]];
            let rest = &buf[start + self.literals_lower[literal].len()..];
            let complete = match rule.end_marker {
                Some(marker) => memchr::memmem::find(rest, marker)
                    .is_some_and(|at| memchr::memchr(b'\n', &rest[at..]).is_some()),
                None => memchr::memchr2(b'\n', b'\r', rest).is_some(),
            };
            if !complete {
                // Two bytes of context: the rules' leading separator or escape.
                hold = hold.min(start.saturating_sub(2));
            }
        });
        // Unfiltered rules: a match that reaches the end may continue.
        for rule in self.rules.iter().filter(|r| !r.filtered) {
            for (start, end) in rule.spans(&buf[window..]) {
                if window + end == buf.len() {
                    hold = hold.min(window + start);
                }
            }
        }
        // Never cut through a match: move the hold point to the start of one that spans it.
        if hold < buf.len() {
            let hit = self.triggered(buf);
            for (rule, _) in self.rules.iter().zip(&hit).filter(|(_, hit)| **hit) {
                for (start, end) in rule.spans(buf) {
                    if start < hold && hold < end {
                        hold = start;
                    }
                }
            }
        }
        hold.max(window)
    }
}

/// Whether two JSON values have the same structure: types, keys and array lengths (strings
/// may differ).
fn same_shape(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_shape(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_shape(va, vb))
        }
        (a, b) => a == b,
    }
}

/// Redaction of a byte stream delivered in chunks (a PTY's output or input): the state
/// between chunks, used with the stream's [`Redactor`].
#[derive(Debug, Default)]
pub struct StreamRedactor {
    pending: Vec<u8>,
}

impl StreamRedactor {
    /// Bytes currently held back.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Takes the next chunk; returns the redacted bytes that can be written now (possibly
    /// empty) and the number of replacements in them.
    pub fn push(&mut self, redactor: &Redactor, chunk: &[u8]) -> (Vec<u8>, u32) {
        if redactor.is_empty() {
            return (chunk.to_vec(), 0);
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(chunk);
        let hold = redactor.hold_point(&buf);
        self.pending = buf.split_off(hold);
        match redactor.redact(&buf) {
            Some(redacted) => redacted,
            None => (buf, 0),
        }
    }

    /// Ends the stream: returns the held-back tail, redacted.
    pub fn finish(&mut self, redactor: &Redactor) -> (Vec<u8>, u32) {
        let buf = std::mem::take(&mut self.pending);
        match redactor.redact(&buf) {
            Some(redacted) => redacted,
            None => (buf, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use regex::bytes::RegexBuilder;

    use super::*;
    use crate::model::{Body, PtyKind, Record};

    fn redactor() -> Redactor {
        Redactor::new(&RedactionConfig::default())
    }

    #[test]
    fn clean_input_is_not_copied() {
        assert!(redactor().redact(b"{\"hello\":\"world\"}").is_none());
    }

    fn output(data: &[u8]) -> Record {
        Record {
            ts: 0,
            source: crate::log::Source::Pty,
            session: Some("s".into()),
            body: Body::Pty(crate::model::PtyBody {
                kind: PtyKind::Output,
                data: data.to_vec(),
                command: None,
                cwd: None,
                term: None,
                width: None,
                height: None,
                status: None,
            }),
            redactions: 0,
        }
    }

    fn data(record: &Record) -> &[u8] {
        match &record.body {
            Body::Pty(pty) => &pty.data,
            _ => &[],
        }
    }

    /// Regression (asciicast round trip): an event ending in bytes that could start a secret
    /// (`\x1b(B` ends in `B`, as in `Bearer`) keeps its bytes when the stream has no secret.
    #[test]
    fn recordings_without_secrets_keep_event_boundaries() {
        let mut records = vec![output(b"\x1b[0m\x1b(B"), output(b"earlier text\r\n")];
        redactor().redact_pty_records(&mut records);
        assert_eq!(data(&records[0]), b"\x1b[0m\x1b(B");
        assert_eq!(data(&records[1]), b"earlier text\r\n");
        assert!(records.iter().all(|r| r.redactions == 0));

        let key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
        let mut records = vec![
            output(format!("$ echo {}", &key[..12]).as_bytes()),
            output(format!("{}\r\n", &key[12..]).as_bytes()),
        ];
        redactor().redact_pty_records(&mut records);
        let all = [data(&records[0]), data(&records[1])].concat();
        let text = String::from_utf8(all).unwrap();
        assert!(!text.contains("abcdefghij"), "{text}");
        assert_eq!(records.iter().map(|r| r.redactions).sum::<u32>(), 1);
    }

    #[test]
    fn stream_holds_a_split_key() {
        let r = redactor();
        let mut stream = StreamRedactor::default();
        let key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";
        let (a, _) = stream.push(&r, format!("$ echo {}", &key[..12]).as_bytes());
        let (b, _) = stream.push(&r, format!("{}\r\n$ ", &key[12..]).as_bytes());
        let (c, _) = stream.finish(&r);
        let all = [a, b, c].concat();
        let text = String::from_utf8(all).unwrap();
        assert!(!text.contains("abcdefghij"), "{text}");
        assert!(text.contains("[REDACTED:anthropic_api_key]"), "{text}");
    }

    /// The hand-written matchers replace exactly what their rules' regexes replace.
    fn regex_replace(name: &str, text: &[u8]) -> Vec<u8> {
        let rule = DEFAULT_RULES.iter().find(|r| r.name == name).unwrap();
        let regex = RegexBuilder::new(rule.pattern)
            .unicode(false)
            .build()
            .unwrap();
        regex
            .replace_all(text, rule.replacement.as_bytes())
            .into_owned()
    }

    fn fast_replace(name: &str, text: &[u8]) -> Vec<u8> {
        let r = redactor();
        let rule = r.rules.iter().find(|rule| rule.name == name).unwrap();
        assert!(rule.fast.is_some());
        rule.replace(text)
            .map_or_else(|| text.to_vec(), |(out, _)| out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        #[test]
        fn fast_matchers_equal_their_regexes(
            parts in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just("password".to_owned()),
                proptest::strategy::Just("PassWd".to_owned()),
                proptest::strategy::Just("API-KEY".to_owned()),
                proptest::strategy::Just("apikey".to_owned()),
                proptest::strategy::Just("Token".to_owned()),
                proptest::strategy::Just("Bearer".to_owned()),
                proptest::strategy::Just("secret".to_owned()),
                "[ =:\"'\\\\a-zA-Z0-9_.+/~,\t\n{}()-]{0,12}",
            ], 0..8)
        ) {
            let text = parts.concat();
            for name in ["password_assignment", "token_assignment", "bearer_token"] {
                proptest::prop_assert_eq!(
                    String::from_utf8_lossy(&fast_replace(name, text.as_bytes())).into_owned(),
                    String::from_utf8_lossy(&regex_replace(name, text.as_bytes())).into_owned(),
                    "{} on {:?}", name, text
                );
            }
        }
    }
}
