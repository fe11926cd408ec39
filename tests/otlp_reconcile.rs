//! `ctrace cost --reconcile` and `--source` (issue 17, "Fold") on numbers known in advance:
//! a corpus transcript is ingested, telemetry `api_request` events are generated from its own
//! usage rows (same request ids, tokens and the price table's USD) and sent to `ctrace serve`
//! over OTLP/HTTP; the reconciliation finds nothing to report. Then one request's event is
//! left out and another's cost changed: both are named.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::path::{Path, PathBuf};

use common::Sandbox;
use common::http::Server;
use common::otlp::{event, key_value, logs_request, post};
use ctrace::views::pricing::{PriceTable, TokenCounts};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use serde_json::Value;

/// The corpus transcript with the most usage rows among the small ones.
fn transcript(corpus: &Path) -> PathBuf {
    corpus.join(
        "claude-home/projects/claude-code-viewer-sample/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl",
    )
}

struct Usage {
    request_id: String,
    model: String,
    tokens: TokenCounts,
    ts_ns: u64,
}

/// The store's usage rows of `session`, read from the views database.
fn usage_rows(store: &Path, session: &str) -> Vec<Usage> {
    let db = rusqlite::Connection::open_with_flags(
        store.join("views/views.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare(
            "SELECT request_id, model, input_tokens, output_tokens, cache_creation_tokens,
                cache_creation_1h_tokens, cache_read_tokens, ts_ns
             FROM usage WHERE session = ?1 ORDER BY ts_ns",
        )
        .unwrap();
    let n = |v: i64| u64::try_from(v).unwrap();
    stmt.query_map([session], |row| {
        Ok(Usage {
            request_id: row.get(0)?,
            model: row.get(1)?,
            tokens: TokenCounts {
                input: n(row.get(2)?),
                output: n(row.get(3)?),
                cache_creation: n(row.get(4)?),
                cache_creation_1h: n(row.get(5)?),
                cache_read: n(row.get(6)?),
            },
            ts_ns: n(row.get(7)?),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn reconcile(sandbox: &Sandbox, store: &Path) -> Vec<Value> {
    let stdout = sandbox
        .command_in(store, &["cost", "--reconcile", "--json"])
        .output()
        .unwrap();
    common::assert_success(&["cost", "--reconcile"], &stdout);
    serde_json::from_slice(&stdout.stdout).unwrap()
}

fn total_usd(sandbox: &Sandbox, store: &Path, source: &str) -> (f64, u64) {
    let stdout = sandbox
        .command_in(store, &["cost", "--json", "--source", source])
        .output()
        .unwrap();
    common::assert_success(&["cost", "--source", source], &stdout);
    let rows: Vec<Value> = serde_json::from_slice(&stdout.stdout).unwrap();
    rows.iter().fold((0.0, 0), |(usd, reported), r| {
        (
            usd + r["cost_usd"].as_f64().unwrap_or(0.0),
            reported + r["reported_responses"].as_u64().unwrap_or(0),
        )
    })
}

#[test]
fn telemetry_generated_from_a_transcript_reconciles_exactly_and_differences_are_named() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let summary = sandbox.ingest(&[&transcript(&corpus)]);
    assert!(summary.records > 0);
    sandbox.ok(&["compact"]);
    let session = "fe5e1c67-53e7-4862-81ae-d0e013e3270b";
    let usage = usage_rows(&store, session);
    assert!(
        usage.len() >= 5,
        "the transcript has {} usage rows",
        usage.len()
    );
    let prices = PriceTable::new(&Default::default());
    // One event per request, as Claude Code would have sent it; the second request's event is
    // left out and the third's cost changed.
    let (missing, changed) = (&usage[1].request_id, &usage[2].request_id);
    let events = usage
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(i, u)| {
            let mut cost = prices.cost(&u.model, &u.tokens).unwrap();
            if i == 2 {
                cost += 0.5;
            }
            event(
                "api_request",
                session,
                u.ts_ns,
                vec![
                    key_value("model", Any::StringValue(u.model.clone())),
                    key_value("cost_usd", Any::DoubleValue(cost)),
                    key_value("duration_ms", Any::IntValue(1000)),
                    key_value("input_tokens", Any::IntValue(u.tokens.input as i64)),
                    key_value("output_tokens", Any::IntValue(u.tokens.output as i64)),
                    key_value(
                        "cache_read_tokens",
                        Any::IntValue(u.tokens.cache_read as i64),
                    ),
                    key_value(
                        "cache_creation_tokens",
                        Any::IntValue(u.tokens.cache_creation as i64),
                    ),
                    key_value("request_id", Any::StringValue(u.request_id.clone())),
                ],
            )
        })
        .collect();
    let server = Server::spawn(sandbox.command_in(
        &store,
        &["serve", "--bind", "127.0.0.1:0", "--no-transcripts"],
    ));
    let before = server.json("/api/health")["next_offset"].as_u64().unwrap();
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        false,
        &logs_request(events).encode_to_vec(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    server.wait_caught_up(before + usage.len() as u64 - 1);
    assert_eq!(server.terminate(), Some(0));

    let rows = reconcile(&sandbox, &store);
    let mine: Vec<&Value> = rows.iter().filter(|r| r["session"] == session).collect();
    assert!(!mine.is_empty(), "{rows:?}");
    let sum = |key: &str| -> u64 { mine.iter().map(|r| r[key].as_u64().unwrap()).sum() };
    assert_eq!(sum("missing_in_telemetry"), 1, "{mine:#?}");
    assert_eq!(sum("missing_in_transcript"), 0, "{mine:#?}");
    assert_eq!(sum("mismatched"), 1, "{mine:#?}");
    let named_missing: Vec<&Value> = mine
        .iter()
        .flat_map(|r| r["missing_in_telemetry_ids"].as_array().unwrap())
        .collect();
    assert_eq!(named_missing, [missing.as_str()]);
    let mismatch = mine
        .iter()
        .flat_map(|r| r["mismatched_requests"].as_array().unwrap())
        .next()
        .unwrap();
    assert_eq!(mismatch["request_id"], changed.as_str());
    assert_eq!(mismatch["tokens_differ"], false);
    let delta =
        mismatch["telemetry_usd"].as_f64().unwrap() - mismatch["transcript_usd"].as_f64().unwrap();
    assert!((delta - 0.5).abs() < 1e-9, "{mismatch}");
    // Tokens: telemetry has every request but one, with the transcript's own counts.
    for r in &mine {
        let side = |name: &str, key: &str| r[name][key].as_u64().unwrap();
        for key in ["input_tokens", "output_tokens", "cache_read_tokens"] {
            assert!(side("telemetry", key) <= side("transcript", key));
        }
    }
    let (missing_usd, changed_usd) = {
        let find = |id: &str| usage.iter().find(|u| u.request_id == id).unwrap();
        let price = |u: &Usage| prices.cost(&u.model, &u.tokens).unwrap();
        (price(find(missing)), price(find(changed)))
    };
    let difference: f64 = mine
        .iter()
        .map(|r| r["difference_usd"].as_f64().unwrap())
        .sum();
    assert!(
        (difference - (0.5 - missing_usd)).abs() < 1e-9,
        "difference {difference} (changed request ${changed_usd:.4}, missing ${missing_usd:.4})"
    );

    // `--source`: telemetry is what was reported (every request but the missing one, one of
    // them 0.5 dearer); best fills the missing one from the transcript.
    let (transcript_usd, reported) = total_usd(&sandbox, &store, "transcript");
    assert_eq!(reported, 0);
    let (telemetry_usd, reported) = total_usd(&sandbox, &store, "telemetry");
    assert_eq!(reported, usage.len() as u64 - 1);
    assert!((telemetry_usd - (transcript_usd - missing_usd + 0.5)).abs() < 1e-6);
    let (best_usd, reported) = total_usd(&sandbox, &store, "best");
    assert_eq!(reported, usage.len() as u64 - 1);
    assert!((best_usd - (transcript_usd + 0.5)).abs() < 1e-6);

    // The human table names both requests.
    let text = sandbox.ok_stdout(&["cost", "--reconcile"]);
    assert!(text.contains(missing.as_str()), "{text}");
    assert!(text.contains(changed.as_str()), "{text}");
}
