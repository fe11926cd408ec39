//! Issue 5, acceptance 1: `ctrace cost --by session --breakdown --json` agrees with
//! `ccusage session --offline --json` (ccusage 20.0.24) on the corpus `claude-home/` tree: for
//! every session and model, token counts are equal and cost is within 0.5%.
//!
//! The ccusage binary comes from `CTRACE_CCUSAGE` (`.ci/setup-ccusage.sh` installs it); the test
//! skips visibly without it, and fails under `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::Sandbox;
use serde_json::Value;

fn ccusage() -> Option<PathBuf> {
    match std::env::var_os("CTRACE_CCUSAGE").filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CTRACE_CCUSAGE is not set (CI=true: source .ci/setup-ccusage.sh)"
            );
            eprintln!(
                "SKIP: CTRACE_CCUSAGE is not set (source .ci/setup-ccusage.sh to run the ccusage parity test)"
            );
            None
        }
    }
}

type Tokens = [u64; 4];

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn cost_by_session_matches_ccusage() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some(ccusage) = ccusage() else { return };
    let home = corpus.join("claude-home");
    let sandbox = Sandbox::new();

    let output = Command::new(&ccusage)
        .args(["session", "--offline", "--json"])
        .env("CLAUDE_CONFIG_DIR", &home)
        .env("HOME", sandbox.tmp())
        .env("TZ", "UTC")
        .output()
        .expect("running ccusage");
    assert!(
        output.status.success(),
        "ccusage failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reference: Value = serde_json::from_slice(&output.stdout).expect("ccusage JSON");
    let mut expected: BTreeMap<(String, String), (Tokens, f64)> = BTreeMap::new();
    for session in reference["session"].as_array().expect("session array") {
        let id = session["period"]
            .as_str()
            .or_else(|| session["sessionId"].as_str())
            .expect("session id")
            .to_owned();
        for model in session["modelBreakdowns"].as_array().expect("breakdowns") {
            let n = |k: &str| model[k].as_u64().expect("token count");
            expected.insert(
                (
                    id.clone(),
                    model["modelName"].as_str().expect("model").to_owned(),
                ),
                (
                    [
                        n("inputTokens"),
                        n("outputTokens"),
                        n("cacheCreationTokens"),
                        n("cacheReadTokens"),
                    ],
                    model["cost"].as_f64().expect("cost"),
                ),
            );
        }
    }
    assert!(
        expected.len() >= 10,
        "ccusage found {} session/model rows",
        expected.len()
    );

    sandbox.ingest(&[&home]);
    let text = sandbox.ok_stdout(&["cost", "--by", "session", "--breakdown", "--json"]);
    let rows: Value = serde_json::from_str(&text).expect("ctrace JSON");
    let mut actual: BTreeMap<(String, String), (Tokens, Option<f64>)> = BTreeMap::new();
    for row in rows.as_array().expect("array of rows") {
        let n = |k: &str| row[k].as_u64().expect("token count");
        actual.insert(
            (
                row["session"].as_str().expect("session").to_owned(),
                row["model"].as_str().expect("model").to_owned(),
            ),
            (
                [
                    n("input_tokens"),
                    n("output_tokens"),
                    n("cache_creation_tokens"),
                    n("cache_read_tokens"),
                ],
                row["cost_usd"].as_f64(),
            ),
        );
    }
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same sessions and models"
    );
    for (key, (tokens, cost)) in &expected {
        let (our_tokens, our_cost) = &actual[key];
        assert_eq!(our_tokens, tokens, "tokens of {key:?}");
        let our_cost = our_cost.unwrap_or_else(|| panic!("{key:?} is unpriced"));
        let diff = (our_cost - cost).abs() / cost.max(1e-9);
        assert!(
            diff <= 0.005,
            "cost of {key:?}: ctrace {our_cost} vs ccusage {cost} ({:.3}%)",
            diff * 100.0
        );
        eprintln!(
            "{} {}: tokens {tokens:?} equal; cost ctrace {our_cost:.6} ccusage {cost:.6} ({:+.4}%)",
            key.0,
            key.1,
            (our_cost - cost) / cost.max(1e-9) * 100.0
        );
    }
}
