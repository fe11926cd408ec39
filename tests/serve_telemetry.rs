//! `GET /api/sessions/{id}/telemetry` and the session page's Telemetry panel (issue 17,
//! "Fold"): Claude-Code-shaped OTLP log events posted to `ctrace serve` over `/v1/logs` come
//! back per session as API requests (reported and computed cost), API errors and retries,
//! tool results and the session's reconciliation rows; the lists are bounded by `limit`, newest
//! last. Every wait polls with a deadline; no test sleeps for a fixed time.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::path::{Path, PathBuf};

use common::Sandbox;
use common::browser::{browser_tools, run_browser};
use common::http::Server;
use common::otlp::{event, key_value, logs_request, post};
use ctrace::views::pricing::{PriceTable, TokenCounts};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z, ns since the epoch.
const T0: u64 = 1_767_225_600_000_000_000;
/// One second, ns.
const SECOND: u64 = 1_000_000_000;
const MODEL: &str = "claude-opus-4-6";

/// `ctrace serve` on the sandbox's store (any free port), never this machine's transcripts.
fn start(sandbox: &Sandbox) -> Server {
    Server::spawn(sandbox.command(&["serve", "--bind", "127.0.0.1:0", "--no-transcripts"]))
}

fn text(value: &str) -> Any {
    Any::StringValue(value.to_owned())
}

fn int(value: u64) -> Any {
    Any::IntValue(i64::try_from(value).unwrap())
}

/// Tokens of a request: input, output, cache reads, cache writes.
#[derive(Clone, Copy)]
struct Tokens(u64, u64, u64, u64);

impl Tokens {
    fn counts(self) -> TokenCounts {
        TokenCounts {
            input: self.0,
            output: self.1,
            cache_creation: self.3,
            cache_creation_1h: 0,
            cache_read: self.2,
        }
    }
}

/// A `claude_code.api_request` event.
fn api_request(
    session: &str,
    ts: u64,
    request_id: &str,
    cost_usd: f64,
    duration_ms: u64,
    tokens: Tokens,
) -> LogRecord {
    event(
        "api_request",
        session,
        ts,
        vec![
            key_value("prompt.id", text("prompt-1")),
            key_value("model", text(MODEL)),
            key_value("cost_usd", Any::DoubleValue(cost_usd)),
            key_value("duration_ms", int(duration_ms)),
            key_value("input_tokens", int(tokens.0)),
            key_value("output_tokens", int(tokens.1)),
            key_value("cache_read_tokens", int(tokens.2)),
            key_value("cache_creation_tokens", int(tokens.3)),
            key_value("request_id", text(request_id)),
        ],
    )
}

/// A `claude_code.api_error` event (numbers as strings, as Claude Code sends some of them).
fn api_error(session: &str, ts: u64, status: u64, attempt: u64, error: &str) -> LogRecord {
    event(
        "api_error",
        session,
        ts,
        vec![
            key_value("prompt.id", text("prompt-1")),
            key_value("model", text(MODEL)),
            key_value("status_code", text(&status.to_string())),
            key_value("attempt", int(attempt)),
            key_value("error", text(error)),
            key_value("duration_ms", int(300 * attempt)),
        ],
    )
}

/// A `claude_code.tool_result` event.
fn tool_result(session: &str, ts: u64, tool: &str, id: &str, error: Option<&str>) -> LogRecord {
    let mut attributes = vec![
        key_value("tool_name", text(tool)),
        key_value("tool_use_id", text(id)),
        key_value("success", Any::BoolValue(error.is_none())),
        key_value("duration_ms", int(42)),
    ];
    if let Some(error) = error {
        attributes.push(key_value("error", text(error)));
    }
    event("tool_result", session, ts, attributes)
}

/// Posts `records` to `/v1/logs`: protobuf, or OTLP/JSON gzipped.
fn post_logs(server: &Server, records: Vec<LogRecord>, json: bool) {
    let request = logs_request(records);
    let response = if json {
        post(
            server,
            "/v1/logs",
            "application/json",
            true,
            &serde_json::to_vec(&request).unwrap(),
        )
    } else {
        post(
            server,
            "/v1/logs",
            "application/x-protobuf",
            false,
            &request.encode_to_vec(),
        )
    };
    assert_eq!(response.status, 200, "{}", response.text());
}

/// A session's telemetry: an API request per second (`requests` of them, the `i`-th taking
/// `1000 + 100 i` ms, costing `0.01 (i + 1)` USD, id `req_i`), a failed first try and a failed
/// retry, two tool results (one failed), and a `user_prompt` (not listed). Returns how many
/// records were posted.
fn post_session_telemetry(server: &Server, session: &str, requests: u64) -> u64 {
    let mut records: Vec<LogRecord> = (0..requests)
        .map(|i| {
            api_request(
                session,
                T0 + (i + 1) * SECOND,
                &format!("req_{i}"),
                0.01 * (i + 1) as f64,
                1000 + 100 * i,
                Tokens(10 + i, 20, 30, 40),
            )
        })
        .collect();
    records.push(event(
        "user_prompt",
        session,
        T0,
        vec![key_value("prompt_length", int(12))],
    ));
    let count = records.len() as u64;
    // Out of time order on purpose: the lists are ordered by the events' times.
    records.reverse();
    post_logs(server, records, false);
    let others = vec![
        api_error(session, T0 + 1500 * SECOND / 1000, 529, 1, "Overloaded"),
        api_error(session, T0 + 1800 * SECOND / 1000, 529, 2, "Overloaded"),
        tool_result(session, T0 + 2 * SECOND, "Bash", "toolu_1", None),
        tool_result(
            session,
            T0 + 3 * SECOND,
            "Read",
            "toolu_2",
            Some("no such file"),
        ),
    ];
    let count = count + others.len() as u64;
    post_logs(server, others, true);
    count
}

fn telemetry(server: &Server, session: &str, query: &str) -> Value {
    server.json(&format!("/api/sessions/{session}/telemetry{query}"))
}

/// Issue 17 ("Fold"), the dashboard's telemetry: requests, errors and tool results of a
/// session come back with their fields (times as RFC 3339 and ns, oldest first), without a
/// transcript `computed_usd` is null and every request is missing from the transcript in the
/// reconciliation; `limit` keeps the newest and sets `truncated`; a session without telemetry
/// has empty lists; an unknown session is a JSON 404 and a bad `limit` a JSON 400.
#[test]
fn telemetry_of_a_session_is_listed_bounded_and_reconciled() {
    let sandbox = Sandbox::new();
    let server = start(&sandbox);
    let hook = br#"{"hook_event_name":"UserPromptSubmit","session_id":"plain-session","cwd":"/tmp/p","prompt":"hi"}"#;
    assert_eq!(server.post_hook(hook).status, 200);
    let session = "tele-session-1";
    let posted = post_session_telemetry(&server, session, 3);
    server.wait_caught_up(1 + posted);

    let all = telemetry(&server, session, "");
    assert_eq!(
        all["counts"],
        json!({"requests": 3, "errors": 2, "tool_results": 2})
    );
    assert_eq!(all["truncated"], false);
    let requests = all["requests"].as_array().unwrap();
    let ids: Vec<&str> = requests
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["req_0", "req_1", "req_2"], "oldest first");
    let first = &requests[0];
    assert_eq!(first["ts"], "2026-01-01T00:00:01.000Z");
    assert_eq!(first["ts_ns"], T0 + SECOND);
    assert_eq!(first["model"], MODEL);
    assert_eq!(first["duration_ms"], 1000);
    assert_eq!(first["input_tokens"], 10);
    assert_eq!(first["output_tokens"], 20);
    assert_eq!(first["cache_read_tokens"], 30);
    assert_eq!(first["cache_creation_tokens"], 40);
    assert_eq!(first["cost_usd"], 0.01);
    assert_eq!(first["computed_usd"], Value::Null, "no transcript");
    assert_eq!(first["prompt_id"], "prompt-1");
    assert!(first["offset"].is_u64());

    let errors = all["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["ts"], "2026-01-01T00:00:01.500Z");
    assert_eq!(errors[0]["status_code"], 529, "a number sent as a string");
    assert_eq!(errors[0]["attempt"], 1);
    assert_eq!(errors[1]["attempt"], 2);
    assert_eq!(errors[1]["error"], "Overloaded");
    assert_eq!(errors[1]["duration_ms"], 600);
    assert_eq!(errors[1]["model"], MODEL);
    assert_eq!(errors[1]["request_id"], Value::Null);

    let tools = all["tool_results"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["tool_name"], "Bash");
    assert_eq!(tools[0]["tool_use_id"], "toolu_1");
    assert_eq!(tools[0]["success"], true);
    assert_eq!(tools[0]["duration_ms"], 42);
    assert_eq!(tools[0]["error"], Value::Null);
    assert_eq!(tools[1]["success"], false);
    assert_eq!(tools[1]["error"], "no such file");

    // Telemetry alone: every reported request is missing from the transcript.
    let reconcile = all["reconcile"].as_array().unwrap();
    assert_eq!(reconcile.len(), 1, "{reconcile:?}");
    assert_eq!(reconcile[0]["session"], session);
    assert_eq!(reconcile[0]["model"], MODEL);
    assert_eq!(reconcile[0]["telemetry"]["requests"], 3);
    assert_eq!(reconcile[0]["transcript"]["requests"], 0);
    assert_eq!(reconcile[0]["missing_in_transcript"], 3);
    let reported = reconcile[0]["telemetry"]["cost_usd"].as_f64().unwrap();
    assert!((reported - 0.06).abs() < 1e-9, "{reported}");
    assert!(all["price_table"].is_string());

    // Bounded: the newest `limit` of each list, still oldest first.
    let two = telemetry(&server, session, "?limit=2");
    assert_eq!(two["truncated"], true);
    let ids: Vec<&str> = two["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["req_1", "req_2"], "newest last");
    assert_eq!(two["errors"].as_array().unwrap().len(), 2);
    assert_eq!(two["counts"]["requests"], 3, "counts are whole");
    let one = telemetry(&server, session, "?limit=1");
    assert_eq!(one["errors"][0]["attempt"], 2, "the newest error");
    assert_eq!(one["tool_results"][0]["tool_name"], "Read");
    assert_eq!(telemetry(&server, session, "?limit=3")["truncated"], false);

    // A unique prefix resolves like the other session endpoints.
    assert_eq!(telemetry(&server, "tele-", "")["counts"], all["counts"]);

    // A session without telemetry: empty lists, no reconciliation row.
    let plain = telemetry(&server, "plain-session", "");
    assert_eq!(
        plain,
        json!({
            "requests": [], "errors": [], "tool_results": [],
            "counts": {"requests": 0, "errors": 0, "tool_results": 0},
            "truncated": false, "reconcile": [], "price_table": all["price_table"],
        })
    );

    let unknown = server.get("/api/sessions/no-such-session/telemetry");
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(unknown.error().contains("no-such-session"));
    for bad in ["0", "10001", "many"] {
        let response = server.get(&format!("/api/sessions/{session}/telemetry?limit={bad}"));
        assert_eq!(response.status, 400, "limit={bad}: {}", response.text());
        assert!(response.error().contains("limit"));
    }
    assert_eq!(
        telemetry(&server, session, "?limit=10000")["requests"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The endpoint and the OTLP receiver are in the API description.
    let openapi = server.json("/api/openapi.json");
    let paths = &openapi["paths"];
    assert!(paths["/api/sessions/{id}/telemetry"]["get"].is_object());
    for path in ["/v1/logs", "/v1/metrics", "/v1/traces"] {
        let responses = &paths[path]["post"]["responses"];
        for status in ["200", "400", "401", "403", "413", "415", "429", "503"] {
            assert!(
                responses.get(status).is_some(),
                "POST {path} lacks {status}"
            );
        }
    }
}

/// A transcript of `session` with two priced responses, `req_a` and `req_b`.
fn write_transcript(sandbox: &Sandbox, session: &str) -> PathBuf {
    let usage = |t: Tokens| {
        json!({"input_tokens": t.0, "output_tokens": t.1,
            "cache_read_input_tokens": t.2, "cache_creation_input_tokens": t.3})
    };
    let lines = [
        json!({"type": "user", "uuid": "u1", "sessionId": session, "cwd": "/tmp/tele",
            "timestamp": "2026-01-01T00:00:00Z",
            "message": {"role": "user", "content": "count the files"}}),
        json!({"type": "assistant", "uuid": "a1", "parentUuid": "u1", "sessionId": session,
            "requestId": "req_a", "timestamp": "2026-01-01T00:00:02Z",
            "message": {"id": "msg_a", "role": "assistant", "model": MODEL,
                "usage": usage(A_TOKENS), "content": [{"type": "text", "text": "Counting."}]}}),
        json!({"type": "assistant", "uuid": "a2", "parentUuid": "a1", "sessionId": session,
            "requestId": "req_b", "timestamp": "2026-01-01T00:00:04Z",
            "message": {"id": "msg_b", "role": "assistant", "model": MODEL,
                "usage": usage(B_TOKENS), "content": [{"type": "text", "text": "Three."}]}}),
    ];
    let file = sandbox.path(&format!("{session}.jsonl"));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    file
}

const A_TOKENS: Tokens = Tokens(100, 200, 3000, 400);
const B_TOKENS: Tokens = Tokens(50, 60, 70, 80);
/// What telemetry reports for `req_a` above its computed price, USD.
const OVERCHARGE: f64 = 0.25;

/// A store with a transcript of `session` and its telemetry: `req_a` reported
/// [`OVERCHARGE`] above its price, `req_b` not reported, `req_c` reported but in no transcript;
/// a failed first try and a failed retry. Returns the served store, after every record is
/// folded, and `req_a`'s price.
fn priced_session(sandbox: &Sandbox, session: &str) -> (Server, f64) {
    let transcript = write_transcript(sandbox, session);
    sandbox.ingest(&[&transcript]);
    let server = start(sandbox);
    let before = server.json("/api/health")["next_offset"].as_u64().unwrap();
    let price = PriceTable::new(&Default::default())
        .cost(MODEL, &A_TOKENS.counts())
        .unwrap();
    let records = vec![
        api_error(session, T0 + SECOND, 529, 1, "Overloaded"),
        api_error(session, T0 + 3 * SECOND / 2, 529, 2, "Overloaded"),
        api_request(
            session,
            T0 + 2 * SECOND,
            "req_a",
            price + OVERCHARGE,
            2400,
            A_TOKENS,
        ),
        api_request(
            session,
            T0 + 5 * SECOND,
            "req_c",
            0.5,
            800,
            Tokens(1, 2, 3, 4),
        ),
        tool_result(session, T0 + 3 * SECOND, "Bash", "toolu_1", None),
    ];
    let count = records.len() as u64;
    post_logs(&server, records, false);
    server.wait_caught_up(before + count);
    (server, price)
}

/// With the session's transcript, a reported request gets the price of the transcript's usage
/// of the same request id (`computed_usd`), a request in no transcript gets null, and the
/// reconciliation names the request only in the transcript, the one only in telemetry and the
/// one whose cost differs.
#[test]
fn computed_cost_comes_from_the_transcript_of_the_same_request() {
    let sandbox = Sandbox::new();
    let session = "tele-priced-1";
    let (server, price) = priced_session(&sandbox, session);

    let answer = telemetry(&server, session, "");
    let requests = answer["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["request_id"], "req_a");
    let computed = requests[0]["computed_usd"].as_f64().unwrap();
    assert!((computed - price).abs() < 1e-12, "{computed} vs {price}");
    let reported = requests[0]["cost_usd"].as_f64().unwrap();
    assert!((reported - computed - OVERCHARGE).abs() < 1e-9);
    assert_eq!(requests[1]["request_id"], "req_c");
    assert_eq!(requests[1]["computed_usd"], Value::Null);

    let rows = answer["reconcile"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["transcript"]["requests"], 2);
    assert_eq!(row["telemetry"]["requests"], 2);
    assert_eq!(row["missing_in_telemetry_ids"], json!(["req_b"]));
    assert_eq!(row["missing_in_transcript_ids"], json!(["req_c"]));
    assert_eq!(row["mismatched"], 1);
    assert_eq!(row["mismatched_requests"][0]["request_id"], "req_a");
}

/// Issue 17 ("Fold"), the dashboard: the session page of a session with telemetry shows the
/// Telemetry panel (a latency bar per request, reported vs computed cost with the difference
/// marked, the API errors with the retry marked) and marks the API errors on the timeline;
/// a session without telemetry shows no panel until its first telemetry arrives, live. Runs `tests/e2e/dashboard.mjs` with its
/// `telemetry` step only; the screenshot is `target/e2e-screenshots/telemetry.png`.
#[test]
fn telemetry_panel_in_chromium() {
    let Some((playwright, chromium)) = browser_tools() else {
        return;
    };
    let sandbox = Sandbox::new();
    let session = "tele-browser-1";
    let (server, _) = priced_session(&sandbox, session);
    let hook = br#"{"hook_event_name":"UserPromptSubmit","session_id":"plain-session","cwd":"/tmp/p","prompt":"hi"}"#;
    let before = server.json("/api/health")["next_offset"].as_u64().unwrap();
    assert_eq!(server.post_hook(hook).status, 200);
    server.wait_caught_up(before + 1);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("e2e-screenshots");
    let config = json!({
        "steps": ["telemetry"],
        "telemetry_session": session,
        "plain_session": "plain-session",
        "screenshots": shots,
    });
    let report = run_browser(&sandbox, &server, &config, &playwright, &chromium);
    assert_eq!(report["telemetry_error"], Value::Null, "{report:#}");
    assert_eq!(report["page_errors"], json!([]));
    assert_eq!(report["outside_requests"], json!([]));
    assert_eq!(report["failed_requests"], json!([]));
    for error in report["http_errors"].as_array().unwrap() {
        let error = error.as_str().unwrap();
        assert!(
            error.starts_with("404 ") && error.ends_with("/cast"),
            "unexpected HTTP error on the page: {error}"
        );
    }

    assert_eq!(report["telemetry_requests"], 2);
    assert_eq!(report["telemetry_latency_bars"], 2);
    assert_eq!(report["telemetry_errors"], 2);
    assert_eq!(report["telemetry_retries"], 1);
    assert_eq!(report["telemetry_reconcile_rows"], 1);
    // The overcharged request, the total, the per-model difference and the differing count.
    assert!(
        report["telemetry_diff_cells"].as_u64().unwrap() >= 3,
        "{report:#}"
    );
    assert_eq!(report["telemetry_request_diffs"], 1, "only req_a differs");
    assert_eq!(report["timeline_markers"], 2);
    assert_eq!(report["timeline_retry_markers"], 1);
    assert_eq!(report["jump_telemetry_visible"], true);
    assert_eq!(report["plain_telemetry_hidden"], true);
    // Live: the session's first telemetry shows the panel and the marker without a reload.
    assert_eq!(report["plain_live_post_status"], 200);
    assert_eq!(report["plain_live_errors"], 1);
    assert_eq!(report["plain_live_markers"], 1);
    assert_eq!(report["plain_live_jump_visible"], true);
    assert!(shots.join("telemetry.png").is_file());
}
