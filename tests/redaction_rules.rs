//! Redaction (issue 6): every built-in rule has positive and negative cases, each positive
//! case is also found when split across two PTY chunks at every byte, JSON stays valid, rules
//! can be disabled, and bad configurations name the entry.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::path::Path;

use ctrace::config::redaction::DEFAULT_RULES;
use ctrace::config::{Config, ConfigError};
use ctrace::ingest::redact::{Redactor, StreamRedactor};

/// `(rule, text containing a secret, the secret part that must vanish)`; the secrets are
/// built at run time so the source holds no literal key.
fn positives() -> Vec<(&'static str, String, String)> {
    let alnum = |n: usize| -> String {
        "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYz"
            .chars()
            .cycle()
            .take(n)
            .collect()
    };
    let ant = format!("sk-ant-api03-{}", alnum(64));
    let oai = format!("sk-proj-{}", alnum(48));
    let aws = format!("AKIA{}", "IOSFODNN7EXAMPLE");
    let gh = format!("ghp_{}", alnum(36));
    let pat = format!("github_pat_{}", alnum(40));
    let body = alnum(64);
    let key =
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n{body}\n-----END RSA PRIVATE KEY-----");
    let bearer = alnum(32);
    vec![
        (
            "anthropic_api_key",
            format!("export ANTHROPIC_API_KEY={ant}\n"),
            ant.clone(),
        ),
        ("anthropic_api_key", format!("key:\\n{ant} done\n"), ant),
        (
            "age_secret_key",
            "# created: 2026-12-05\nAGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZ5HAQ3L\n"
                .into(),
            "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZ5HAQ3L".into(),
        ),
        (
            "openai_api_key",
            format!("OPENAI_API_KEY={oai}\n"),
            oai.clone(),
        ),
        ("openai_api_key", format!("\"{oai}\"\n"), oai),
        (
            "aws_access_key_id",
            format!("aws_access_key_id = {aws}\n"),
            aws.clone(),
        ),
        (
            "github_token",
            format!("git clone https://{gh}@github.com/x/y\n"),
            gh,
        ),
        ("github_token", format!("GH={pat}\n"), pat),
        (
            "private_key_block",
            format!("cat id_rsa\n{key}\n$ "),
            body.clone(),
        ),
        (
            "bearer_token",
            format!("curl -H 'Authorization: Bearer {bearer}' x\n"),
            bearer.clone(),
        ),
        (
            "password_assignment",
            "mysql --password=hunter2secret\n".into(),
            "hunter2secret".into(),
        ),
        (
            "password_assignment",
            "{\"db_password\": \"hunter2secret\"}\n".into(),
            "hunter2secret".into(),
        ),
        (
            "token_assignment",
            "export SLACK_TOKEN=xoxb-1234-abcd\n".into(),
            "xoxb-1234-abcd".into(),
        ),
        // Issue 14 item 15.
        (
            "aws_secret_access_key",
            format!("export AWS_SECRET_ACCESS_KEY={}\n", alnum(40)),
            alnum(40),
        ),
        (
            "aws_secret_access_key",
            format!("aws_secret_access_key = {}\n", alnum(40)),
            alnum(40),
        ),
        (
            "url_credentials",
            "psql postgres://app:s3cretPass@db.internal:5432/app\n".into(),
            "s3cretPass".into(),
        ),
        (
            "url_credentials",
            "git remote add o https://bob:hunter22@git.example.com/r.git\n".into(),
            "hunter22".into(),
        ),
        (
            "basic_auth_option",
            "curl -u admin:Sup3rSecret https://x\n".into(),
            "Sup3rSecret".into(),
        ),
        (
            "stripe_key",
            format!("STRIPE=sk_live_{}\n", alnum(24)),
            format!("sk_live_{}", alnum(24)),
        ),
        (
            "slack_token",
            format!("slack: xoxb-{}\n", alnum(30)),
            format!("xoxb-{}", alnum(30)),
        ),
        (
            "slack_webhook",
            format!("POST https://hooks.slack.com/services/{}\n", alnum(40)),
            alnum(40),
        ),
        (
            "gitlab_token",
            format!("GL=glpat-{}\n", alnum(20)),
            format!("glpat-{}", alnum(20)),
        ),
        (
            "gcp_api_key",
            format!("key=AIza{}\n", alnum(35)),
            format!("AIza{}", alnum(35)),
        ),
        (
            "huggingface_token",
            format!("HF hf_{}\n", "abcdefghijABCDEFGHIJabcdefghijABCD"),
            "hf_abcdefghijABCDEFGHIJabcdefghijABCD".into(),
        ),
        (
            "npm_token",
            format!("//registry.npmjs.org/:_authToken npm_{}\n", alnum(36)),
            format!("npm_{}", alnum(36)),
        ),
        (
            "pypi_token",
            format!("pw pypi-AgEIcHlwaS5vcmc{}\n", alnum(60)),
            format!("pypi-AgEIcHlwaS5vcmc{}", alnum(60)),
        ),
        (
            "groq_api_key",
            format!("GROQ gsk_{}\n", alnum(52)),
            format!("gsk_{}", alnum(52)),
        ),
        (
            "sendgrid_api_key",
            format!("SG SG.{}.{}\n", alnum(22), alnum(43)),
            format!("SG.{}.{}", alnum(22), alnum(43)),
        ),
        (
            "jwt",
            format!("cookie eyJ{}.eyJ{}.{}\n", alnum(20), alnum(30), alnum(25)),
            format!("eyJ{}.eyJ{}.{}", alnum(20), alnum(30), alnum(25)),
        ),
    ]
}

/// `(rule, text that must be left alone)`.
fn negatives() -> Vec<(&'static str, String)> {
    vec![
        ("anthropic_api_key", "sk-ant-short is not a key\n".into()),
        (
            "age_secret_key",
            "age-keygen prints AGE-SECRET-KEY-1 keys\n".into(),
        ),
        (
            "openai_api_key",
            "the task-abcdefghijklmnopqrstuvwxyz0123 ran\n".into(),
        ),
        ("openai_api_key", "sk-short\n".into()),
        (
            "aws_access_key_id",
            "AKIAIOSFODNN7EXAMPLEXYZ is too long\n".into(),
        ),
        (
            "aws_access_key_id",
            "akiaiosfodnn7example lowercase\n".into(),
        ),
        ("github_token", "ghp_tooShort and gho_\n".into()),
        (
            "private_key_block",
            "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n".into(),
        ),
        ("bearer_token", "the bearer of bad news\n".into()),
        ("password_assignment", "a password is required\n".into()),
        (
            "token_assignment",
            "{\"max_tokens\": 1000, \"input_tokens\": 5}\n".into(),
        ),
        (
            "aws_secret_access_key",
            "the aws_secret_access_key setting is documented\n".into(),
        ),
        (
            "url_credentials",
            "see https://example.com:8443/path\n".into(),
        ),
        ("url_credentials", "git@github.com:x/y.git\n".into()),
        ("basic_auth_option", "docker run -u 1000:1000 img\n".into()),
        ("basic_auth_option", "git push -u origin main\n".into()),
        ("stripe_key", "sk_live_short\n".into()),
        ("slack_token", "xoxb- is the bot prefix\n".into()),
        (
            "slack_webhook",
            "https://hooks.slack.com/ is documented\n".into(),
        ),
        ("gitlab_token", "glpat- prefix\n".into()),
        ("gcp_api_key", "AIza is a prefix\n".into()),
        ("huggingface_token", "hf_hub_download(repo)\n".into()),
        ("npm_token", "npm_config_cache=/tmp\n".into()),
        ("pypi_token", "pypi-AgEIcHlwaS5vcmc short\n".into()),
        ("groq_api_key", "gsk_short\n".into()),
        ("sendgrid_api_key", "SG.short.key\n".into()),
        ("jwt", "eyJhbGciOi is only a header\n".into()),
    ]
}

/// Issue 14 item 15: a secret hidden by JSON `\\u` escapes is found in the decoded string and
/// the payload stays valid JSON.
#[test]
fn json_escaped_secrets_are_redacted() {
    let redactor = default_redactor();
    let key: String = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYz".repeat(2);
    let escaped =
        format!(r#"{{"tool_input":{{"command":"echo sk\u002dant\u002dapi03\u002d{key}"}}}}"#);
    let (out, count) = redactor.redact_json(escaped.into_bytes());
    let out = String::from_utf8(out).unwrap();
    assert!(count >= 1, "{out}");
    assert!(!out.contains(&key), "{out}");
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        value["tool_input"]["command"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:anthropic_api_key]")
    );
}

/// Issue 14 item 15: the record's `session` and every extracted field are redacted, not only
/// the payload.
#[test]
fn every_stored_string_field_is_redacted() {
    use ctrace::model::{Body, HookBody, Record, Source};
    let redactor = default_redactor();
    let key = format!("sk-ant-api03-{}", "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYz");
    let mut record = Record {
        ts: 1,
        source: Source::Hook,
        session: Some(key.clone()),
        body: Body::Hook(HookBody {
            cwd: Some(format!("/home/{key}")),
            raw: b"{}".to_vec(),
            ..HookBody::default()
        }),
        redactions: 0,
    };
    let count = redactor.redact_record(&mut record);
    assert_eq!(count, 2);
    let encoded = format!("{record:?}");
    assert!(!encoded.contains(&key), "{encoded}");
}

fn default_redactor() -> Redactor {
    Redactor::new(&Config::default().redaction)
}

#[test]
fn every_builtin_rule_has_cases() {
    let positives = positives();
    let negatives = negatives();
    for rule in DEFAULT_RULES {
        assert!(
            positives.iter().any(|(name, ..)| *name == rule.name),
            "no positive case for {}",
            rule.name
        );
        assert!(
            negatives.iter().any(|(name, _)| *name == rule.name),
            "no negative case for {}",
            rule.name
        );
    }
}

#[test]
fn positives_are_redacted_by_their_rule() {
    let redactor = default_redactor();
    for (rule, text, secret) in positives() {
        let (out, count) = redactor.redact(text.as_bytes()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains(&secret), "{rule}: {out}");
        assert!(out.contains(&format!("[REDACTED:{rule}]")), "{rule}: {out}");
        assert!(count >= 1, "{rule}");
    }
}

#[test]
fn negatives_are_left_alone() {
    let redactor = default_redactor();
    for (rule, text) in negatives() {
        let out = redactor
            .redact(text.as_bytes())
            .map(|(bytes, _)| String::from_utf8(bytes).unwrap());
        assert!(
            out.as_deref()
                .is_none_or(|out| !out.contains(&format!("[REDACTED:{rule}]"))),
            "{rule} matched {text:?}: {out:?}"
        );
    }
}

/// A stream of two chunks split at `at`, then flushed.
fn streamed(redactor: &Redactor, text: &[u8], at: usize) -> (Vec<u8>, u32) {
    let mut stream = StreamRedactor::default();
    let (mut out, mut count) = stream.push(redactor, &text[..at]);
    for part in [stream.push(redactor, &text[at..]), stream.finish(redactor)] {
        out.extend_from_slice(&part.0);
        count += part.1;
    }
    (out, count)
}

#[test]
fn a_secret_split_across_two_chunks_is_redacted_at_every_split() {
    let redactor = default_redactor();
    for (rule, text, secret) in positives() {
        let whole = redactor.redact(text.as_bytes()).unwrap();
        for at in 0..=text.len() {
            let (out, count) = streamed(&redactor, text.as_bytes(), at);
            let shown = String::from_utf8_lossy(&out);
            assert!(!shown.contains(&secret), "{rule} split at {at}: {shown}");
            assert_eq!(out, whole.0, "{rule} split at {at}");
            assert_eq!(count, whole.1, "{rule} split at {at}");
        }
    }
}

#[test]
fn held_back_tail_is_bounded() {
    let redactor = default_redactor();
    let mut stream = StreamRedactor::default();
    // A literal that never ends its line keeps being a candidate; the hold stays bounded.
    let (_, _) = stream.push(&redactor, b"password=");
    for _ in 0..100 {
        let _ = stream.push(&redactor, &[b'x'; 1000]);
        assert!(stream.pending_bytes() <= ctrace::ingest::redact::MAX_HOLD_BYTES);
    }
    // Ordinary text is not held at all.
    let mut stream = StreamRedactor::default();
    let (out, _) = stream.push(&redactor, b"hello world\r\n");
    assert_eq!(out, b"hello world\r\n");
    assert_eq!(stream.pending_bytes(), 0);
}

#[test]
fn json_stays_valid() {
    let redactor = default_redactor();
    for (_, text, secret) in positives() {
        let payload = serde_json::to_vec(&serde_json::json!({
            "session_id": "s1",
            "tool_input": {"command": text, "quoted": format!("say \"{text}\"")},
        }))
        .unwrap();
        let (out, count) = redactor.redact_json(payload);
        assert!(count >= 2);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(!value.to_string().contains(&secret));
    }
    // A user rule that would swallow JSON structure: the payload is redacted per string.
    let config = Config::parse(
        "[[redaction.rules]]\nname = \"greedy\"\npattern = \"internal-[^ ]*\"\nliterals = [\"internal-\"]\n",
        Path::new("c.toml"),
    )
    .unwrap();
    let redactor = Redactor::new(&config.redaction);
    let (out, count) =
        redactor.redact_json(br#"{"a":"internal-host","b":"x internal-db y"}"#.to_vec());
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["a"], "[REDACTED:greedy]");
    assert_eq!(value["b"], "x [REDACTED:greedy] y");
    assert_eq!(count, 2);
}

#[test]
fn defaults_can_be_disabled() {
    let text = b"export SLACK_TOKEN=xoxb-1234-abcd password=hunter2";
    let config = Config::parse(
        "[redaction]\ndisable = [\"token_assignment\"]\n",
        Path::new("c.toml"),
    )
    .unwrap();
    let (out, count) = Redactor::new(&config.redaction).redact(text).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("xoxb-1234-abcd"));
    assert!(!out.contains("hunter2"));
    assert_eq!(count, 1);
    let config = Config::parse("[redaction]\ndefaults = false\n", Path::new("c.toml")).unwrap();
    let redactor = Redactor::new(&config.redaction);
    assert!(redactor.is_empty());
    assert!(redactor.redact(text).is_none());
}

#[test]
fn user_rules_with_groups_and_without_literals() {
    let config = Config::parse(
        r#"
[[redaction.rules]]
name = "ticket"
pattern = "(TICKET-)[0-9]+"
replacement = "${1}NNN"
"#,
        Path::new("c.toml"),
    )
    .unwrap();
    let redactor = Redactor::new(&config.redaction);
    let (out, count) = redactor.redact(b"see TICKET-1234 and TICKET-9").unwrap();
    assert_eq!(out, b"see TICKET-NNN and TICKET-NNN");
    assert_eq!(count, 2);
    // Without literals the rule runs on every chunk and still sees a split match.
    let (out, _) = streamed(&redactor, b"see TICKET-1234\n", 13);
    assert_eq!(out, b"see TICKET-NNN\n");
}

fn bad_entry(toml: &str) -> (&'static str, usize, &'static str) {
    match Config::parse(toml, Path::new("c.toml")).unwrap_err() {
        ConfigError::BadEntry {
            table,
            index,
            field,
            ..
        } => (table, index, field),
        other => panic!("expected BadEntry, got {other:?}"),
    }
}

#[test]
fn bad_rules_name_the_entry() {
    let rule = |name: &str, pattern: &str| {
        format!("[[redaction.rules]]\nname = \"{name}\"\npattern = '{pattern}'\n")
    };
    let three = format!(
        "{}{}{}",
        rule("a", "x"),
        rule("b", "y"),
        rule("c", "(unclosed")
    );
    assert_eq!(bad_entry(&three), ("redaction.rules", 2, "pattern"));
    assert_eq!(
        bad_entry(&rule("a", "x*")),
        ("redaction.rules", 0, "pattern")
    );
    let dup = format!("{}{}", rule("a", "x"), rule("a", "y"));
    assert_eq!(bad_entry(&dup), ("redaction.rules", 1, "name"));
    assert_eq!(
        bad_entry(&rule("openai_api_key", "x")),
        ("redaction.rules", 0, "name")
    );
    assert_eq!(
        bad_entry(&format!("{}replacement = 'a\"b'\n", rule("a", "x"))),
        ("redaction.rules", 0, "replacement")
    );
    assert_eq!(
        bad_entry("[redaction]\ndisable = [\"openai_api_key\", \"nope\"]\n"),
        ("redaction.disable", 1, "")
    );
    // Unknown keys are rejected by the parser.
    let err = Config::parse(
        "[[redaction.rules]]\nname = \"a\"\npattern = \"x\"\nflags = \"i\"\n",
        Path::new("c.toml"),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    let err = Config::parse("[redaction]\ndefault = false\n", Path::new("c.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
}

#[test]
fn large_inputs_use_the_automaton_with_the_same_result() {
    let redactor = default_redactor();
    let filler = "lorem ipsum dolor sit amet ".repeat(4000);
    assert!(filler.len() > 64 << 10);
    assert!(redactor.redact(filler.as_bytes()).is_none());
    for (rule, text, secret) in positives() {
        let big = format!("{filler}{text}{filler}");
        let (out, count) = redactor.redact(big.as_bytes()).unwrap();
        let small = redactor.redact(text.as_bytes()).unwrap();
        assert_eq!(count, small.1, "{rule}");
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains(&secret), "{rule}");
        assert!(out.contains(&format!("[REDACTED:{rule}]")), "{rule}");
    }
}
