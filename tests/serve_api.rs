//! `ctrace serve` (issue 16): the built binary on a temp store, driven over loopback HTTP with
//! the plain `TcpStream` client of `tests/common/http.rs`. Every wait polls with a deadline; no test sleeps for a fixed
//! time.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use common::http::{DEADLINE, Server};
use common::{Sandbox, hook_payload, sized_hook};
use serde_json::Value;

/// Issue 16 item 2 (HTTP hook target): valid, malformed and oversized payloads are answered
/// 200 with an empty body, stored through the hook path (malformed kept byte for byte, the
/// oversized one truncated and flagged as `ctrace hook` does), and readable through `cat` and
/// the API; a body above `--max-body` is refused with a JSON 413.
#[test]
fn hooks_posted_over_http_are_stored() {
    let sandbox = Sandbox::without_redaction();
    std::fs::write(
        sandbox.store().join("config.toml"),
        "[redaction]\ndefaults = false\n[storage]\nmax_record_bytes = \"64KiB\"\n",
    )
    .unwrap();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &["--max-body", "1MiB"]);
    let valid = hook_payload("http-session", 1);
    let malformed = br#"{"hook_event_name":"UserPromptSubmit","session_id":"http-session", oops"#;
    let mut oversized =
        br#"{"hook_event_name":"UserPromptSubmit","session_id":"http-session","prompt":""#.to_vec();
    oversized.extend(std::iter::repeat_n(b'x', 100 << 10));
    oversized.extend_from_slice(b"\"}");
    for body in [&valid[..], &malformed[..], &oversized[..]] {
        let response = server.post_hook(body);
        assert_eq!(response.status, 200, "{}", response.text());
        assert!(response.body.is_empty(), "{}", response.text());
    }
    let too_big = vec![b'y'; 2 << 20];
    let response = server.post_hook(&too_big);
    assert_eq!(response.status, 413);
    assert!(response.error().contains("limit"));

    server.wait_caught_up(3);
    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), 3, "the 413 body is not stored");
    assert_eq!(records[0].raw, valid);
    assert_eq!(records[1].raw, malformed);
    assert!(records[1].malformed.is_some());
    assert_eq!(
        records[2].raw.len(),
        64 << 10,
        "kept its first max_record_bytes"
    );
    assert!(
        records[2].line.contains("\"truncated\""),
        "{}",
        records[2].line
    );

    let page = server.json("/api/sessions/http-session/records");
    let api: Vec<&Value> = page["records"].as_array().unwrap().iter().collect();
    let cli = sandbox.json_lines_in(&store, &["cat", "--json"]);
    assert_eq!(api.len(), 3);
    for (api, cli) in api.iter().zip(&cli) {
        assert_eq!(*api, cli);
    }
    assert_eq!(server.terminate(), Some(0));
}

/// Issue 16 item 3 (REST rows as the CLI's `--json`): sessions, one session, its tree,
/// records, tasks and cost equal the command line's output for the same store.
#[test]
fn rows_equal_the_cli() {
    let sandbox = Sandbox::new();
    let store = sandbox.demo_store();
    let server = Server::start(&sandbox, &store, &[]);
    server.wait_caught_up(1);

    let cli_sessions = sandbox.json_lines_in(&store, &["sessions", "--json"]);
    let api = server.json("/api/sessions");
    assert_eq!(api["sessions"].as_array().unwrap(), &cli_sessions);
    assert_eq!(api["next_cursor"], Value::Null);
    let id = cli_sessions[0]["session"].as_str().unwrap();
    let prefix = &id[..8];
    assert_eq!(
        server.json(&format!("/api/sessions/{prefix}")),
        cli_sessions[0]
    );
    assert_eq!(
        server.json(&format!("/api/sessions/{prefix}/timeline")),
        sandbox.json_in(&store, &["show", id, "--json"])
    );
    assert_eq!(
        server.json(&format!("/api/sessions/{prefix}/tree")),
        sandbox.json_in(&store, &["tree", id, "--json"])
    );
    assert_eq!(
        server.json(&format!("/api/sessions/{id}/records"))["records"]
            .as_array()
            .unwrap(),
        &sandbox.json_lines_in(&store, &["cat", "--json", "--session", id])
    );
    // Paging the records: three at a time, `next_after` walks them all once.
    let all = server.json(&format!("/api/sessions/{id}/records"))["records"].clone();
    let mut paged = Vec::new();
    let mut path = format!("/api/sessions/{id}/records?limit=3");
    loop {
        let page = server.json(&path);
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= 3);
        paged.extend(records.iter().cloned());
        match page["next_after"].as_u64() {
            Some(after) => path = format!("/api/sessions/{id}/records?limit=3&after={after}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), all);
    let mermaid = server.get(&format!("/api/sessions/{prefix}/tree?format=mermaid"));
    assert_eq!(mermaid.status, 200);
    let cli_mermaid = sandbox
        .command_in(&store, &["tree", id, "--mermaid"])
        .output()
        .unwrap();
    assert_eq!(mermaid.body, cli_mermaid.stdout);
    assert_eq!(
        server.json("/api/tasks"),
        sandbox.json_in(&store, &["tasks", "--json"])
    );
    for by in ["session", "day", "model", "tool"] {
        assert_eq!(
            server.json(&format!("/api/cost?by={by}")),
            sandbox.json_in(&store, &["cost", "--by", by, "--json"]),
            "cost by {by}"
        );
    }
    // Paging: one row per page, the cursor walks every session once.
    let mut seen = Vec::new();
    let mut path = "/api/sessions?limit=1".to_owned();
    loop {
        let page = server.json(&path);
        seen.extend(page["sessions"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/sessions?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, cli_sessions);

    // The model and cost filters, against the rows and `cost --by session`.
    let costs = sandbox.json_in(&store, &["cost", "--by", "session", "--json"]);
    let cost_of = |session: &str| -> f64 {
        costs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["session"] == session)
            .map(|r| r["cost_usd"].as_f64().unwrap_or(0.0))
            .sum()
    };
    let claude = cli_sessions
        .iter()
        .find(|s| !s["models"].as_array().unwrap().is_empty())
        .expect("the demo has a Claude session");
    let claude_id = claude["session"].as_str().unwrap();
    let model = claude["models"][0].as_str().unwrap().to_owned();
    let with_model: Vec<&Value> = cli_sessions
        .iter()
        .filter(|s| {
            s["models"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == model.as_str())
        })
        .collect();
    assert!(!with_model.is_empty());
    // The sessions `query` keeps are `want`, and `none` keeps none.
    let filters = |query: &str, want: &[&Value], none: &str| {
        let api = server.json(&format!("/api/sessions?{query}"));
        let got: Vec<&Value> = api["sessions"].as_array().unwrap().iter().collect();
        assert_eq!(got, want, "{query}");
        let empty = &server.json(&format!("/api/sessions?{none}"))["sessions"];
        assert_eq!(empty, &serde_json::json!([]), "{none}");
    };
    filters(
        &format!("model={model}"),
        &with_model,
        "model=no-such-model",
    );
    // `tool`: the sessions whose `tools` name it; the rows' tallies add up.
    for s in &cli_sessions {
        let tools = s["tools"].as_object().unwrap();
        let calls: u64 = tools.values().map(|t| t["calls"].as_u64().unwrap()).sum();
        let errors: u64 = tools.values().map(|t| t["errors"].as_u64().unwrap()).sum();
        assert_eq!(
            (s["tool_calls"].as_u64(), s["tool_errors"].as_u64()),
            (Some(calls), Some(errors))
        );
    }
    assert!(
        claude["tool_errors"].as_u64().unwrap() >= 1,
        "the demo's failing command: {claude}"
    );
    let tool = claude["tools"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .expect("the demo session calls tools")
        .clone();
    let with_tool: Vec<&Value> = cli_sessions
        .iter()
        .filter(|s| s["tools"].as_object().unwrap().contains_key(&tool))
        .collect();
    filters(&format!("tool={tool}"), &with_tool, "tool=NoSuchTool");
    let top = cost_of(claude_id);
    assert!(top > 0.0, "the demo session costs something");
    let api = server.json(&format!("/api/sessions?min_cost={top}"));
    let kept: Vec<&str> = api["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect();
    assert!(kept.contains(&claude_id), "{kept:?}");
    assert!(kept.iter().all(|s| cost_of(s) >= top), "{kept:?}");
    assert_eq!(
        server.json(&format!("/api/sessions?min_cost={}", top * 2.0 + 1.0))["sessions"],
        serde_json::json!([])
    );

    // The API description: 3.1, every reference resolves, the token and its refusals told.
    let openapi = server.json("/api/openapi.json");
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = Vec::new();
    refs(&openapi, &mut targets);
    for target in targets {
        let pointer = target.strip_prefix('#').unwrap();
        assert!(openapi.pointer(pointer).is_some(), "dangling $ref {target}");
    }
    assert_eq!(
        openapi["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let hook = &openapi["paths"]["/ingest/hook"]["post"]["responses"];
    for status in ["401", "403", "413", "415"] {
        assert!(
            hook.get(status).is_some(),
            "POST /ingest/hook lacks {status}"
        );
    }
}

/// Issue 16 item 3 (errors): unknown session 404, ambiguous prefix 400, bad parameters 400,
/// unknown route 404, each with a JSON `{"error": …}` body.
#[test]
fn bad_requests_get_json_errors() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    for session in ["dup-a", "dup-b"] {
        assert_eq!(server.post_hook(&hook_payload(session, 0)).status, 200);
    }
    server.wait_caught_up(2);
    for (path, status) in [
        ("/api/sessions/nope", 404),
        ("/api/sessions/nope/tree", 404),
        ("/api/sessions/nope/records", 404),
        ("/api/sessions/nope/timeline", 404),
        ("/api/sessions/dup-", 400),
        ("/api/sessions/dup-/tree", 400),
        ("/api/sessions/dup-a/tree?format=svg", 400),
        ("/api/sessions/dup-a/cast", 404),
        ("/api/sessions/nope/cast", 404),
        ("/api/sessions?since=yesterdayish", 400),
        ("/api/sessions?limit=0", 400),
        ("/api/sessions?cursor=zzz", 400),
        ("/api/sessions?min_cost=-1", 400),
        ("/api/sessions?min_cost=lots", 400),
        ("/api/cost?by=planet", 400),
        ("/api/cost?until=2026-13-45", 400),
        ("/api/stream?source=martian", 400),
        ("/api/stream?session=dup-", 400),
        ("/api/nothing-here", 404),
        // Rejections of the query extractor (a bool that is not one, a repeated parameter).
        ("/api/cost?breakdown=yes", 400),
        ("/api/sessions?project=a&project=b", 400),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, status, "GET {path}: {}", response.text());
        assert!(!response.error().is_empty(), "GET {path}");
    }
    // A method a route does not take: 405 with `Allow` and a JSON error.
    for (method, path) in [("POST", "/api/health"), ("GET", "/ingest/hook")] {
        let response = server.request(method, path, &[("Content-Type", "application/json")], b"{}");
        assert_eq!(response.status, 405, "{method} {path}: {}", response.text());
        assert!(response.error().contains("not allowed"), "{method} {path}");
        assert!(
            response.header("allow").is_some(),
            "{method} {path}: no Allow"
        );
    }
    assert_eq!(
        server.json("/api/sessions/dup-a")["session"],
        Value::from("dup-a")
    );
}

/// An open SSE connection read line by line.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    fn open(addr: SocketAddr, query: &str, last_event_id: Option<u64>) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut head = format!("GET /api/stream{query} HTTP/1.1\r\nHost: {addr}\r\n");
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Self { reader }
    }

    /// The next event as (event name, id, data), skipping keep-alives and chunk sizes.
    fn next_event(&mut self) -> (String, Option<u64>, Value) {
        let (mut id, mut data, mut event) = (None, None, None);
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_owned());
            } else if line.is_empty()
                && let (Some(name), Some(value)) = (event.take(), data.take())
            {
                return (name, id.take(), value);
            }
        }
    }

    /// The next `record` event as (id, data), skipping `session` events.
    fn next_record(&mut self) -> (u64, Value) {
        loop {
            let (event, id, data) = self.next_event();
            if event == "record" {
                return (id.unwrap(), data);
            }
            assert_eq!(event, "session", "unknown event {event}: {data}");
            assert_eq!(id, None, "a session event moves the resume point");
        }
    }
}

/// Issue 16 item 4 (SSE): a hook posted after a client connected arrives as a `record` event
/// with its offset as id; reconnecting with `Last-Event-ID` delivers exactly the records
/// after it, in order, without gaps or duplicates.
#[test]
fn stream_delivers_and_resumes_without_gaps() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    assert_eq!(server.post_hook(&hook_payload("before", 0)).status, 200);
    server.wait_caught_up(1);

    let mut events = Events::open(server.addr, "?session=live", None);
    assert_eq!(server.post_hook(&hook_payload("other", 0)).status, 200);
    assert_eq!(server.post_hook(&hook_payload("live", 1)).status, 200);
    let (first, data) = events.next_record();
    assert_eq!(data["session"], "live");
    assert_eq!(data["offset"].as_u64(), Some(first));
    drop(events);

    for n in 2..5 {
        assert_eq!(server.post_hook(&hook_payload("live", n)).status, 200);
    }
    server.wait_caught_up(first + 4);
    let mut resumed = Events::open(server.addr, "", Some(first));
    let ids: Vec<u64> = (0..3).map(|_| resumed.next_record().0).collect();
    assert_eq!(ids, vec![first + 1, first + 2, first + 3]);
    assert_eq!(server.post_hook(&hook_payload("live", 5)).status, 200);
    let (next, data) = resumed.next_record();
    assert_eq!(next, first + 4);
    assert_eq!(data["body"]["payload"]["prompt"], "prompt 5");
}

/// Issue 16 item 4 (SSE with many clients): clients at the live edge share one read per
/// pass; each still gets exactly the records its filter keeps, in offset order, none twice,
/// across several batches (more records than `stream_batch`, 256, per pass).
#[test]
fn many_stream_clients_get_their_records_once_in_order() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let queries = ["", "?session=a", "?session=b&source=hook", "?source=pty"];
    let mut clients: Vec<(&str, Events)> = queries
        .iter()
        .cycle()
        .take(12)
        .map(|q| (*q, Events::open(server.addr, q, None)))
        .collect();
    let total = 600;
    let bodies: Vec<Vec<u8>> = (0..total)
        .map(|n| hook_payload(if n % 3 == 0 { "b" } else { "a" }, n))
        .collect();
    let expected = |query: &str| match query {
        "" => total,
        "?session=a" => total - total.div_ceil(3),
        "?session=b&source=hook" => total.div_ceil(3),
        _ => 0,
    };
    // Every client reads on its own thread while the hooks arrive: a client that leaves its
    // queue full for 10 s is dropped as too slow.
    let everything: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let readers: Vec<_> = clients
            .iter_mut()
            .map(|(query, events)| {
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    for _ in 0..expected(query) {
                        let (id, data) = events.next_record();
                        match *query {
                            "?session=a" => assert_eq!(data["session"], "a"),
                            "?session=b&source=hook" => assert_eq!(data["session"], "b"),
                            _ => {}
                        }
                        ids.push(id);
                    }
                    assert!(
                        ids.windows(2).all(|w| w[0] < w[1]),
                        "{query}: ids out of order or repeated"
                    );
                    (query.is_empty(), ids)
                })
            })
            .collect();
        for body in &bodies {
            assert_eq!(server.post_hook(body).status, 200);
        }
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|(all, _)| *all)
            .map(|(_, ids)| ids)
            .collect()
    });
    assert!(everything.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(everything[0], (0..total).collect::<Vec<u64>>());
    // Nothing more for anyone: one more hook is the next record of every unfiltered client.
    assert_eq!(server.post_hook(&hook_payload("c", 0)).status, 200);
    for (query, events) in &mut clients {
        if query.is_empty() {
            assert_eq!(events.next_record().0, total);
        }
    }
}

/// Issue 16 item 1 (graceful shutdown): SIGTERM with a stream client connected exits 0 and
/// leaves a store that verifies.
#[test]
fn sigterm_exits_zero_and_the_store_verifies() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    for n in 0..5 {
        assert_eq!(server.post_hook(&hook_payload("bye", n)).status, 200);
    }
    server.wait_caught_up(5);
    let _client = Events::open(server.addr, "", None);
    assert_eq!(server.terminate(), Some(0));
    sandbox.ok(&["verify"]);
    assert_eq!(sandbox.cat(&[]).len(), 5);
}

/// Issue 16 item 4 (SSE `session` events): after a session's records, a `session` event
/// carries its row as `/api/sessions/{id}` gives it, without an id.
#[test]
fn stream_sends_session_rows_after_records() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let mut events = Events::open(server.addr, "", None);
    for n in 0..3 {
        assert_eq!(server.post_hook(&hook_payload("rows", n)).status, 200);
    }
    // Session rows include records not sealed yet, so the row that follows the third record
    // is the one to check.
    let mut records = 0;
    let row = loop {
        let (event, id, data) = events.next_event();
        match event.as_str() {
            "record" => records += 1,
            "session" => {
                assert_eq!(id, None);
                assert_eq!(data["session"], "rows");
                if records == 3 {
                    break data;
                }
            }
            other => panic!("unknown event {other}"),
        }
    };
    assert_eq!(row["records"]["hook"], 3);
    server.wait_caught_up(3);
    assert_eq!(row["session"], server.json("/api/sessions/rows")["session"]);
    assert_eq!(row["records"], server.json("/api/sessions/rows")["records"]);
}

/// Issue 16 item 4 (SSE across a restart): hooks written by `ctrace hook` (the command, not
/// HTTP) while a client listens arrive as events; hooks written while the service is down are
/// delivered after a restart to a client resuming with `Last-Event-ID`, none lost or repeated.
#[test]
fn stream_resumes_across_a_restart_with_command_hooks() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let mut events = Events::open(server.addr, "?source=hook", None);
    sandbox.hook(&hook_payload("cli", 0));
    let (first, data) = events.next_record();
    assert_eq!(data["body"]["payload"]["prompt"], "prompt 0");
    drop(events);
    assert_eq!(server.terminate(), Some(0));

    for n in 1..4 {
        sandbox.hook(&hook_payload("cli", n));
    }
    let server = Server::start(&sandbox, &store, &[]);
    let mut resumed = Events::open(server.addr, "?source=hook", Some(first));
    let prompts: Vec<(u64, Value)> = (0..3).map(|_| resumed.next_record()).collect();
    assert_eq!(
        prompts.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![first + 1, first + 2, first + 3]
    );
    for (n, (_, data)) in (1..4).zip(&prompts) {
        assert_eq!(data["body"]["payload"]["prompt"], format!("prompt {n}"));
    }
    sandbox.hook(&hook_payload("cli", 4));
    let (next, data) = resumed.next_record();
    assert_eq!(next, first + 4);
    assert_eq!(data["body"]["payload"]["prompt"], "prompt 4");
}

/// Issue 16 item 3 (search, sources, cast): on the demo store, `/api/search` gives the hits
/// of `ctrace search --json`, `/api/sources` counts every source's records, and
/// `/api/sessions/{id}/cast` is the asciicast `ctrace export` writes, for the recording and
/// for the Claude session that ran inside it.
#[test]
fn search_sources_and_cast_equal_the_cli() {
    let sandbox = Sandbox::new();
    let store = sandbox.demo_store();
    // The CLI's search builds the index; the service then keeps it current.
    let cli_hits = sandbox.json_lines_in(&store, &["search", "error", "--json", "-n", "20"]);
    assert!(!cli_hits.is_empty(), "the demo has an error to find");
    let server = Server::start(&sandbox, &store, &[]);
    server.wait_caught_up(1);
    let page = server.json("/api/search?q=error&limit=20");
    assert_eq!(page["hits"].as_array().unwrap(), &cli_hits);
    assert_eq!(page["unindexed_records"], 0);
    let hook_only = server.json("/api/search?q=error&source=hook&limit=20");
    assert!(
        hook_only["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["source"] == "hook")
    );

    let sessions = sandbox.json_lines_in(&store, &["sessions", "--json"]);
    let sources = server.json("/api/sources");
    for source in ["hook", "transcript", "pty"] {
        let expected: u64 = sessions
            .iter()
            .filter_map(|s| s["records"][source].as_u64())
            .sum();
        let row = sources["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"] == source)
            .unwrap_or_else(|| panic!("no {source} in {sources}"));
        assert_eq!(row["records"].as_u64(), Some(expected), "{source}");
        assert!(row["last_ns"].as_u64().unwrap() > 0);
    }
    // Every source is listed; one without records has no latest time. A record without a
    // session (an OTLP metric point without `session.id`) counts for its source.
    let row = |sources: &Value, name: &str| {
        sources["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"] == name)
            .unwrap_or_else(|| panic!("no {name} in {sources}"))
            .clone()
    };
    assert_eq!(row(&sources, "otlp")["records"], 0);
    assert_eq!(row(&sources, "otlp")["last_ns"], Value::Null);
    let metric = serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "claude_code.session.count",
        "sum": {"dataPoints": [{"asInt": "1", "timeUnixNano": "1700000000000000000"}],
                "aggregationTemporality": 1, "isMonotonic": true}
    }]}]}]});
    let before = server.json("/api/health")["next_offset"].as_u64().unwrap();
    let posted = server.request(
        "POST",
        "/v1/metrics",
        &[("Content-Type", "application/json")],
        metric.to_string().as_bytes(),
    );
    assert_eq!(posted.status, 200, "{}", posted.text());
    server.wait_caught_up(before + 1);
    let after = server.json("/api/sources");
    let otlp = row(&after, "otlp");
    assert_eq!(
        (
            otlp["records"].as_u64(),
            otlp["sessionless_records"].as_u64(),
            otlp["sessions"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{otlp}"
    );
    assert_eq!(otlp["last_offset"].as_u64(), Some(before));

    let recording = sessions
        .iter()
        .find(|s| s["records"]["pty"].as_u64().is_some_and(|n| n > 0))
        .expect("the demo records its terminal");
    let recording_id = recording["session"].as_str().unwrap();
    let claude = recording["linked_sessions"][0].as_str().unwrap();
    let exported = sandbox
        .command_in(
            &store,
            &["export", "--format", "asciicast", "--session", recording_id],
        )
        .output()
        .unwrap();
    common::assert_success(&["export"], &exported);
    for id in [recording_id, claude] {
        let cast = server.get(&format!("/api/sessions/{id}/cast"));
        assert_eq!(cast.status, 200, "{}", cast.text());
        assert_eq!(
            cast.text(),
            String::from_utf8_lossy(&exported.stdout),
            "{id}"
        );
    }
    let header: Value = serde_json::from_str(
        String::from_utf8_lossy(&exported.stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        server
            .get(&format!("/api/sessions/{recording_id}/cast?version=9"))
            .status,
        400
    );
    for (path, status) in [
        ("/api/search", 400),
        ("/api/search?q=", 400),
        ("/api/search?q=nofield:x", 400),
        ("/api/search?q=error&sort=random", 400),
        ("/api/search?q=error&source=martian", 400),
        ("/api/search?q=error&session=nope", 404),
        ("/api/tasks/no-such-task", 404),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, status, "GET {path}: {}", response.text());
        assert!(!response.error().is_empty(), "GET {path}");
    }
}

/// Issue 16 item 3 (one task): on the corpus, `/api/tasks/{id}` is the node `ctrace tasks
/// --json` has for that id (children left out, counted by status), and `/tree` the node with
/// its children; tool usage counts are consistent.
#[test]
fn one_task_equals_its_node_in_the_forest() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.ingest(&[&corpus.join("claude-home/projects")]);
    let store = sandbox.store();
    let forest = sandbox.json_in(&store, &["tasks", "--json"]);
    // The first to-do or task whose id is unique in the forest.
    let mut nodes = Vec::new();
    let mut stack: Vec<(Value, Value)> = forest["roots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|root| {
            root["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |c| (root.clone(), c.clone()))
        })
        .collect();
    while let Some((root, node)) = stack.pop() {
        for child in node["children"].as_array().unwrap() {
            stack.push((root.clone(), child.clone()));
        }
        nodes.push((root, node));
    }
    let unique = nodes
        .iter()
        .find(|(_, n)| nodes.iter().filter(|(_, m)| m["id"] == n["id"]).count() == 1)
        .expect("the corpus has tasks");
    let (root, node) = unique;
    let id = node["id"].as_str().unwrap();
    let server = Server::start(&sandbox, &store, &[]);
    server.wait_caught_up(1);
    let path_id: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let tree = server.json(&format!("/api/tasks/{path_id}/tree"));
    assert_eq!(&tree["task"], node);
    assert_eq!(tree["root_id"], root["id"]);
    let detail = server.json(&format!("/api/tasks/{path_id}"));
    let mut bare = node.clone();
    bare["children"] = Value::Array(Vec::new());
    assert_eq!(detail["task"], bare);
    assert_eq!(
        detail["children_summary"]["total"].as_u64(),
        Some(node["children"].as_array().unwrap().len() as u64)
    );
    let usage_sum: u64 = detail["tool_usage"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(detail["tool_calls"].as_u64(), Some(usage_sum));
    assert!(detail["errors"].as_u64().unwrap() <= usage_sum);
    // The tree answers what the task answers, with the descendants.
    for key in [
        "root_kind",
        "root_id",
        "tool_usage",
        "tool_calls",
        "errors",
        "children_summary",
    ] {
        assert_eq!(tree[key], detail[key], "/tree {key}");
    }
}

/// Issue 16 item 1 (`--open`): once listening, the dashboard's URL is handed to `$BROWSER`.
#[test]
fn open_hands_the_dashboard_url_to_the_browser() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let seen = sandbox.path("opened.txt");
    let browser = sandbox.path("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let mut command = sandbox.command_in(
        &store,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-transcripts",
            "--open",
        ],
    );
    command.env("BROWSER", &browser);
    let server = Server::spawn(command);
    let deadline = Instant::now() + DEADLINE;
    while !seen.exists() {
        assert!(Instant::now() < deadline, "the browser was not started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut url = String::new();
    while url.is_empty() {
        url = std::fs::read_to_string(&seen).unwrap();
    }
    assert_eq!(url, format!("http://{}/", server.addr));
}

/// Issue 16 item 3 (`/api/sessions` follows the views): a change another process makes to the
/// views (`ctrace forget`, with the service running) shows on the next request (a guard for any
/// cache of the session rows).
#[test]
fn session_rows_follow_changes_made_by_other_processes() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    for session in ["keep-me", "forget-me"] {
        assert_eq!(server.post_hook(&hook_payload(session, 0)).status, 200);
    }
    server.wait_caught_up(2);
    let ids = |server: &Server| -> Vec<String> {
        server.json("/api/sessions")["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut before = ids(&server);
    before.sort();
    assert_eq!(before, ["forget-me", "keep-me"]);
    assert_eq!(ids(&server).len(), 2, "a second read of the same views");
    sandbox.ok(&["forget", "forget-me"]);
    assert_eq!(ids(&server), ["keep-me"]);
    assert_eq!(server.get("/api/sessions/forget-me").status, 404);
}

/// Review finding 3 (memory per response): pages of `/api/sessions/{id}/records` end at
/// `max_bytes` of rendered records as well as at `limit` (at least one record each), and
/// following `next_after` walks every record of the session exactly once, in order, whatever
/// the byte budget; a stream client resuming from the start over records larger than a read
/// step (1 MiB) gets every one, in order.
#[test]
fn pages_and_stream_steps_are_cut_by_bytes() {
    let sandbox = Sandbox::without_redaction();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let sizes = [
        200, 30_000, 500, 300_000, 100, 450_000, 2_000, 700_000, 50, 10,
    ];
    for (n, size) in sizes.iter().enumerate() {
        let other = hook_payload("other", n as u64);
        assert_eq!(server.post_hook(&other).status, 200);
        let body = sized_hook("paged", n as u64, *size);
        assert_eq!(server.post_hook(&body).status, 200);
    }
    let total = 2 * sizes.len() as u64;
    server.wait_caught_up(total);
    let whole = server.json("/api/sessions/paged/records");
    let expected: Vec<u64> = whole["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(expected.len(), sizes.len());
    assert_eq!(whole["next_after"], Value::Null);
    for (max_bytes, limit) in [(1, 1000), (40_000, 1000), (400_000, 3), (1 << 20, 1000)] {
        let mut seen = Vec::new();
        let mut after: Option<u64> = None;
        let mut pages = 0;
        loop {
            let mut path =
                format!("/api/sessions/paged/records?max_bytes={max_bytes}&limit={limit}");
            if let Some(after) = after {
                path.push_str(&format!("&after={after}"));
            }
            let response = server.get(&path);
            assert_eq!(response.status, 200, "{path}: {}", response.text());
            let page: Value = serde_json::from_slice(&response.body).unwrap();
            let records = page["records"].as_array().unwrap();
            assert!(!records.is_empty(), "{path}: an empty page");
            assert!(records.len() <= limit, "{path}");
            let rendered: usize = records.iter().map(|r| r.to_string().len()).sum();
            assert!(
                records.len() == 1 || rendered <= max_bytes,
                "{path}: {} records, {rendered} bytes",
                records.len()
            );
            seen.extend(records.iter().map(|r| r["offset"].as_u64().unwrap()));
            pages += 1;
            match page["next_after"].as_u64() {
                Some(next) => {
                    assert_eq!(Some(next), seen.last().copied(), "{path}");
                    after = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(seen, expected, "max_bytes={max_bytes} limit={limit}");
        if max_bytes == 1 {
            assert_eq!(pages, sizes.len(), "one record a page");
        }
    }
    let response = server.get("/api/sessions/paged/records?max_bytes=0");
    assert_eq!(response.status, 400);
    assert!(
        response.error().contains("max_bytes"),
        "{}",
        response.text()
    );
    // A stream client from the start: the reads are cut by bytes, nothing lost or repeated.
    let mut events = Events::open(server.addr, "?session=paged", Some(0));
    let mut ids = Vec::new();
    while ids.len() < expected.len() {
        let (id, data) = events.next_record();
        assert_eq!(data["session"], "paged");
        ids.push(id);
    }
    assert_eq!(ids, expected);
    assert_eq!(server.terminate(), Some(0));
}

/// The status line and head of `GET /api/stream` (read up to the blank line).
fn stream_head(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = format!("GET /api/stream HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            return (stream, head);
        }
        head.push_str(&line);
    }
}

/// Review finding 3 (stream clients): at most `--max-stream-clients` (here 8) stream clients
/// at once; the next one gets 503 with `Retry-After` and a JSON error, and a place that frees
/// up is taken again.
#[test]
fn stream_clients_are_capped() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &["--max-stream-clients", "8"]);
    let mut clients: Vec<Events> = (0..8)
        .map(|_| Events::open(server.addr, "", None))
        .collect();
    let response = server.get("/api/stream");
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.header("retry-after").is_some(),
        "{}",
        response.head
    );
    assert!(response.error().contains('8'), "{}", response.text());
    // Other endpoints still answer.
    assert_eq!(server.get("/api/health").status, 200);
    // One client leaves; the service notices when it next writes to it (a record, or the
    // keep-alive comment), and the next client is taken.
    drop(clients.pop());
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    loop {
        assert_eq!(server.post_hook(&hook_payload("cap", n)).status, 200);
        n += 1;
        let (_stream, head) = stream_head(server.addr);
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(Instant::now() < deadline, "the freed place was not taken");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(clients);
    assert_eq!(server.terminate(), Some(0));
}

/// Review finding 2 (hook backlog): while the unsealed inbox is over `--max-inbox` (here the
/// store lock is held by another process, so nothing seals), hooks are still stored (Claude
/// Code does not retry them), a large one cut to its first 64 KiB and flagged truncated with
/// its full size; over 4 times the limit they are refused with 503 and `Retry-After` and not
/// stored. Once the backlog is sealed, hooks are taken whole again.
#[test]
fn hooks_over_the_inbox_limit_are_kept_cut_then_refused() {
    let sandbox = Sandbox::without_redaction();
    let store = sandbox.store();
    sandbox.hook(&hook_payload("backlog", 0));
    sandbox.ok(&["compact"]);
    for n in 1..4 {
        sandbox.hook(&sized_hook("backlog", n, 300));
    }
    let lock = sandbox.lock_store();
    let server = Server::start(&sandbox, &store, &["--max-inbox", "1KiB"]);
    let small = sized_hook("backlog", 4, 300);
    let response = server.post_hook(&small);
    assert_eq!(response.status, 200, "{}", response.text());
    let large = sized_hook("backlog", 5, 200_000);
    let response = server.post_hook(&large);
    assert_eq!(response.status, 200, "{}", response.text());
    // Now over 4 KiB: refused.
    let refused = sized_hook("backlog", 6, 10);
    let response = server.post_hook(&refused);
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.header("retry-after").is_some(),
        "{}",
        response.head
    );
    assert!(!response.error().is_empty());
    assert_eq!(server.json("/api/health")["unsealed_records"], 5);
    // Paging meanwhile: the unsealed records (no offset to continue after) come together,
    // after the sealed one.
    let page = server.json("/api/sessions/backlog/records?limit=3");
    assert_eq!(page["records"].as_array().unwrap().len(), 1, "{page}");
    let first = page["records"][0]["offset"].as_u64().unwrap();
    assert_eq!(page["next_after"].as_u64(), Some(first), "{page}");
    let rest = server.json(&format!("/api/sessions/backlog/records?after={first}"));
    assert_eq!(rest["records"].as_array().unwrap().len(), 5, "{rest}");
    assert!(
        rest["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["offset"].is_null())
    );
    assert_eq!(rest["next_after"], Value::Null);
    drop(lock);
    let deadline = Instant::now() + DEADLINE;
    while server.json("/api/health")["unsealed_records"] != 0 {
        // The refusal woke the compactor; `--no-watch` is not set, so the inbox watcher does too.
        assert!(Instant::now() < deadline, "the backlog was not sealed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let whole = sized_hook("backlog", 7, 200_000);
    assert_eq!(server.post_hook(&whole).status, 200);
    server.wait_caught_up(7);
    let records = sandbox.cat(&[]);
    assert_eq!(records.len(), 7, "the refused hook is not stored");
    assert_eq!(records[4].raw, small);
    assert_eq!(records[5].raw.len(), 64 << 10, "cut to 64 KiB");
    assert_eq!(records[5].raw[..], large[..64 << 10]);
    let line: Value = serde_json::from_str(&records[5].line).unwrap();
    assert_eq!(
        line["body"]["truncated"]["total_bytes"].as_u64(),
        Some(large.len() as u64),
        "{}",
        records[5].line
    );
    assert_eq!(records[6].raw, whole, "taken whole once sealed");
    assert_eq!(server.terminate(), Some(0));
}
