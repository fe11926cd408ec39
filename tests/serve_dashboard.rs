//! The dashboard of `ctrace serve` (issue 16, "The dashboard"): the page and its assets as the
//! built binary serves them, and the page itself in headless Chromium (tests/e2e/dashboard.mjs,
//! driven by playwright-core) on a store built from the corpus. Every wait polls with a
//! deadline; no test sleeps for a fixed time.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::Sandbox;
use common::browser::{browser_tools, run_browser};
use common::http::{Response, Server};
use serde_json::Value;

/// The dashboard's sources, embedded into the binary.
fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// `ctrace serve --no-watch` on the sandbox's store, on a free loopback port.
fn start(sandbox: &Sandbox) -> Server {
    Server::spawn(sandbox.command(&["serve", "--bind", "127.0.0.1:0", "--no-watch"]))
}

/// `GET path` on `server`.
fn get(server: &Server, path: &str) -> Response {
    server.request("GET", path, &[], b"")
}

/// `GET path` with `headers`.
fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    common::http::request(addr, "GET", path, headers, b"")
}

/// Polls `/api/health` until every record is sealed and folded into the views.
fn wait_caught_up(server: &Server) {
    server.wait_for("/api/health", |health| {
        health["unsealed_records"] == 0 && health["views_checkpoint"] == health["next_offset"]
    });
}

/// The media type a browser needs for a file of the dashboard (module scripts are refused
/// with any other type than JavaScript's).
fn expected_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("html") => "text/html",
        Some("md") => "text/plain",
        _ => "text/plain",
    }
}

/// `/assets/...` paths referenced by `src=` and `href=` in `html`.
fn referenced_assets(html: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r#"(?:src|href)="(/assets/[^"]+)""#).unwrap();
    re.captures_iter(html).map(|c| c[1].to_owned()).collect()
}

/// Checks one embedded file: 200, its media type, caching headers, and the bytes of `web/`.
fn assert_asset(server: &Server, url: &str) {
    let response = get(server, url);
    assert_eq!(response.status, 200, "GET {url}: {}", response.text());
    let rel = url.strip_prefix("/assets/").unwrap();
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with(expected_type(rel)),
        "{url}: Content-Type {content_type:?}, expected {}",
        expected_type(rel)
    );
    assert!(response.header("etag").is_some(), "{url}: no ETag");
    assert!(
        response.header("cache-control").is_some(),
        "{url}: no Cache-Control"
    );
    let on_disk = std::fs::read(web().join(rel)).unwrap();
    assert!(
        response.body == on_disk,
        "{url}: served bytes differ from web/{rel}"
    );
}

/// Issue 16, "The dashboard": `/` is the page with a same-origin Content-Security-Policy;
/// every file the page references (its scripts, its styles, the vendored libraries), every
/// module its scripts import, and every vendored licence is served from the binary with the
/// right media type and an ETag that answers 304; an unknown asset is a JSON 404.
#[test]
fn page_and_assets_are_served_from_the_binary() {
    let sandbox = Sandbox::new();
    let server = start(&sandbox);

    let page = get(&server, "/");
    assert_eq!(page.status, 200, "GET /: {}", page.text());
    assert!(
        page.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "GET /: {:?}",
        page.header("content-type")
    );
    let csp = page
        .header("content-security-policy")
        .expect("GET / has a Content-Security-Policy");
    assert!(csp.contains("default-src 'self'"), "CSP: {csp}");
    assert!(
        !csp.contains("http") && !csp.contains('*'),
        "CSP allows another origin: {csp}"
    );
    let html = page.text();
    assert_eq!(
        html.as_bytes(),
        std::fs::read(web().join("index.html")).unwrap()
    );

    // The page's own references, and the libraries the modules load when a view needs them.
    let mut assets = referenced_assets(&html);
    let lazy = regex::Regex::new(r#"loadScript\('(/assets/[^']+)'\)"#).unwrap();
    for entry in std::fs::read_dir(web()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            let text = std::fs::read_to_string(&path).unwrap();
            assets.extend(lazy.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
    for lib in ["uplot", "mermaid", "asciinema-player"] {
        assert!(
            assets
                .iter()
                .any(|a| a.starts_with(&format!("/assets/vendor/{lib}/"))),
            "neither index.html nor a module loads a file of {lib}: {assets:?}"
        );
    }
    assert!(assets.contains("/assets/app.js") && assets.contains("/assets/style.css"));
    for url in &assets {
        assert_asset(&server, url);
    }

    // The ES modules app.js imports (and they import), by relative path.
    let import = regex::Regex::new(r#"from '\./([a-z]+\.js)'"#).unwrap();
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(web()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            let text = std::fs::read_to_string(&path).unwrap();
            modules.extend(import.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
    assert!(modules.len() >= 3, "imports found: {modules:?}");
    for module in &modules {
        assert_asset(&server, &format!("/assets/{module}"));
    }

    // Each vendored library keeps its licence, served and listed in the README.
    let readme = std::fs::read_to_string(web().join("vendor/README.md")).unwrap();
    assert_asset(&server, "/assets/vendor/README.md");
    assert_asset(&server, "/assets/vendor/mermaid/THIRD-PARTY.md");
    for entry in std::fs::read_dir(web().join("vendor")).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("`{name}/LICENSE`")),
            "README lacks {name}"
        );
        assert_asset(&server, &format!("/assets/vendor/{name}/LICENSE"));
    }

    // Revalidation: the ETag answers 304 with no body.
    let app = get(&server, "/assets/app.js");
    let etag = app.header("etag").unwrap().to_owned();
    let again = request(server.addr, "/assets/app.js", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let stale = request(server.addr, "/assets/app.js", &[("If-None-Match", "\"x\"")]);
    assert_eq!(stale.status, 200);

    for missing in [
        "/assets/nope.js",
        "/assets/vendor",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/vendor/mermaid/",
    ] {
        let response = get(&server, missing);
        assert_eq!(response.status, 404, "GET {missing}: {}", response.text());
        let body: Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("GET {missing}: not JSON ({e}): {}", response.text()));
        assert!(body["error"].is_string(), "GET {missing}: {body}");
    }
}

/// Records a terminal session with `ctrace record` and returns its session id.
fn record_terminal(sandbox: &Sandbox) -> String {
    let output = sandbox
        .command(&[
            "record",
            "-q",
            "--",
            "bash",
            "-c",
            "printf 'hello from the dashboard test\\n'; echo \"session=$CTRACE_PTY_SESSION\"",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    common::assert_success(&["record"], &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split("session=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no session id in: {stdout}"))
        .to_owned()
}

/// The steps of the browser script that failed, as `step: message`.
fn step_errors(report: &Value) -> Vec<String> {
    [
        "overview",
        "filter_tool",
        "sort",
        "live",
        "session",
        "cast",
        "search",
    ]
    .iter()
    .filter(|key| !report[format!("{key}_error")].is_null())
    .map(|key| format!("{key}: {}", report[format!("{key}_error")]))
    .collect()
}

/// No script error, nothing fetched from outside, no failed request; the only 404s the page
/// may see are `/cast` of sessions without a recording.
fn check_page_health(report: &Value) {
    assert_eq!(report["page_errors"], serde_json::json!([]));
    assert_eq!(report["outside_requests"], serde_json::json!([]));
    assert_eq!(report["failed_requests"], serde_json::json!([]));
    let http_errors = report["http_errors"].as_array().unwrap();
    for error in http_errors {
        let error = error.as_str().unwrap();
        assert!(
            error.starts_with("404 ") && error.ends_with("/cast"),
            "unexpected HTTP error on the page: {error}"
        );
    }
    for message in report["console_errors"].as_array().unwrap() {
        assert!(
            message
                .as_str()
                .unwrap()
                .starts_with("Failed to load resource"),
            "console error: {message}"
        );
    }
    assert!(report["console_errors"].as_array().unwrap().len() <= http_errors.len());
}

/// The terminal player plays the recording `/cast` serves, and search hits open their
/// session at the record (the service builds the index, so the search must find the word).
fn check_optional_endpoints(report: &Value) {
    assert_eq!(report["cast_status"], 200, "/cast of the recorded session");
    assert_eq!(report["player"], 1, "no asciinema player on the page");
    assert_eq!(
        report["player_played"], true,
        "the player did not show the recording's output"
    );
    assert_eq!(report["search_status"], 200);
    assert!(
        report["search_hits"].as_u64().unwrap_or(0) > 0,
        "no search hits: {report}"
    );
    assert!(report["search_opened_record"].is_u64());
    assert_eq!(
        report["search_opened_record"]
            .as_u64()
            .map(|o| o.to_string()),
        report["search_href"]
            .as_str()
            .and_then(|h| h.rsplit("at=").next())
            .map(str::to_owned)
    );
}

/// The tool the e2e filters the overview by: one that some but not all sessions called (the
/// filter must drop sessions), with what the overview must show for it.
struct FilterTool {
    name: String,
    /// Sessions that called it.
    sessions: usize,
    /// Tool calls (every tool) of those sessions.
    calls: u64,
}

fn filter_tool(sessions: &[Value]) -> FilterTool {
    let called = |s: &Value, tool: &str| s["tools"].as_object().unwrap().contains_key(tool);
    let mut names: Vec<String> = sessions
        .iter()
        .flat_map(|s| s["tools"].as_object().unwrap().keys().cloned())
        .filter(|t| !t.is_empty())
        .collect();
    names.sort();
    names.dedup();
    let name = names
        .into_iter()
        .find(|t| {
            let n = sessions.iter().filter(|s| called(s, t)).count();
            n > 0 && n < sessions.len()
        })
        .unwrap_or_else(|| panic!("no tool that some but not all corpus sessions called"));
    let using: Vec<&Value> = sessions.iter().filter(|s| called(s, &name)).collect();
    FilterTool {
        sessions: using.len(),
        calls: using
            .iter()
            .map(|s| s["tool_calls"].as_u64().unwrap())
            .sum(),
        name,
    }
}

/// Issue 16, "The dashboard" and its Chromium tests: on a store built from the corpus (plus a
/// terminal recording), the overview shows the totals `ctrace cost --json` and `ctrace
/// sessions --json` give, the sessions table sorts from the keyboard, a hook posted while the
/// page is open shows up in the activity strip and the table without a reload, a session page
/// shows its waterfall, its HTML tree and its Mermaid tree as an `<svg>`, and its records; the
/// terminal player appears for the recorded session when `/api/sessions/{id}/cast` answers
/// 200. Nothing outside the service is requested and the page logs no script error.
/// Screenshots are written to `target/e2e-screenshots/`.
#[test]
fn dashboard_in_chromium() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some((playwright, chromium)) = browser_tools() else {
        return;
    };
    let sandbox = Sandbox::new();
    let projects = corpus.join("claude-home/projects");
    sandbox.ok(&["ingest", "-q", projects.to_str().unwrap()]);
    let recorded = record_terminal(&sandbox);

    let cost: Vec<Value> = serde_json::from_slice(&sandbox.ok(&["cost", "--json"]).stdout).unwrap();
    let expected_cost: f64 = cost.iter().map(|r| r["cost_usd"].as_f64().unwrap()).sum();
    assert!(expected_cost > 1.0, "corpus cost: {expected_cost}");
    let sessions = sandbox.sessions();
    let busiest = sessions
        .iter()
        .max_by_key(|s| s["tool_calls"].as_u64().unwrap_or(0))
        .unwrap()["session"]
        .as_str()
        .unwrap()
        .to_owned();

    let filter_tool = filter_tool(&sessions);

    let server = start(&sandbox);
    wait_caught_up(&server);
    let tree = server.json(&format!("/api/sessions/{busiest}/tree"));
    let by_tool = server.json(&format!("/api/cost?by=tool&session={busiest}"));
    let timeline = server.json(&format!("/api/sessions/{busiest}/timeline"));
    let timeline = timeline.as_array().unwrap();
    let records = server.json(&format!("/api/sessions/{busiest}/records?limit=200"));
    let records = records["records"].as_array().unwrap().len();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("e2e-screenshots");
    let config = serde_json::json!({
        "session": busiest,
        "cast_session": recorded,
        "search": "README",
        "filter_tool": filter_tool.name,
        "screenshots": shots,
    });
    // No retry: the search step's intermittent timeout (about 1 run in 5 until session 12) was
    // the page moving focus from the search box to the new view when a slow render finished
    // between the click into the box and the key press; app.js no longer steals focus.
    let report = run_browser(&sandbox, &server, &config, &playwright, &chromium);
    assert_eq!(step_errors(&report), Vec::<String>::new());
    check_page_health(&report);

    // The overview agrees with the command line.
    let shown_cost = report["total_cost"].as_f64().unwrap();
    assert!(
        (shown_cost - expected_cost).abs() < 1e-6,
        "overview total cost {shown_cost}, `ctrace cost --json` {expected_cost}"
    );
    assert_eq!(
        report["total_cost_text"],
        format!("${expected_cost:.2}"),
        "the cost as shown"
    );
    assert_eq!(report["total_sessions"], sessions.len());
    for (kind, field) in [
        ("input", "input_tokens"),
        ("output", "output_tokens"),
        ("cache-creation", "cache_creation_tokens"),
        ("cache-read", "cache_read_tokens"),
    ] {
        let expected: u64 = cost.iter().map(|r| r[field].as_u64().unwrap()).sum();
        assert_eq!(
            report["tokens_by_type"][kind], expected,
            "{kind} tokens on the overview vs `ctrace cost --json`"
        );
    }
    assert_eq!(report["table_rows"], sessions.len().min(50));
    assert!(report["chart_canvas"].as_u64().unwrap() >= 1);
    // The tool error rate counts every session's tool calls, as `sessions --json` does.
    let (errors, calls) = sessions.iter().fold((0, 0), |(e, c), s| {
        (
            e + s["tool_errors"].as_u64().unwrap(),
            c + s["tool_calls"].as_u64().unwrap(),
        )
    });
    assert!(
        calls > 0 && errors > 0,
        "corpus tool calls {calls}, errors {errors}"
    );
    assert_eq!(report["error_rate_errors"], errors);
    assert_eq!(report["error_rate_calls"], calls);
    assert!(report["error_rate_text"].as_str().unwrap().contains('%'));
    assert!(
        report["tool_options"].as_u64().unwrap() > 2,
        "tool filter options"
    );
    // The Tool filter keeps the sessions that called the tool.
    assert_eq!(report["filter_tool_sessions"], filter_tool.sessions);
    assert_eq!(report["filter_tool_calls"], filter_tool.calls);
    assert_eq!(
        report["filter_tool_table_rows"],
        filter_tool.sessions.min(50)
    );
    assert!(report["top_tools"].as_u64().unwrap() >= 1, "no tool bars");
    assert!(
        !report["task_status_text"]
            .as_str()
            .unwrap()
            .contains("Loading"),
        "task counts never arrived"
    );

    // Sorting from the keyboard keeps the focus on the header button.
    assert_eq!(
        report["sort_descending"], true,
        "{}",
        report["sorted_costs"]
    );
    assert_eq!(report["focus_after_sort"], "cost");

    // Live: the hook shows up without a reload.
    assert_eq!(report["live_post_status"], 200);
    assert_eq!(report["live_in_activity"], true);
    assert_eq!(report["live_in_table"], true);
    assert_eq!(report["live_no_reload"], true);
    // The session page follows its session live: the second hook is appended.
    assert_eq!(report["live_session_records"], serde_json::json!([1, 2]));
    let tool_text = report["live_session_tool_text"].as_str().unwrap();
    assert!(
        tool_text.contains("→ Bash") && tool_text.contains("← e2e-tool-output"),
        "the PostToolUse hook as shown: {tool_text:?}"
    );
    assert!(report["live_session_timeline"].as_u64().unwrap() >= 2);

    // The session page.
    assert_eq!(report["waterfall_rows"], timeline.len().min(300));
    if timeline.iter().any(|i| i["children"].is_array()) {
        assert!(report["waterfall_nested"].as_u64().unwrap() >= 1);
    }
    assert!(report["tree_nodes"].as_u64().unwrap() > 1);
    assert_eq!(report["mermaid_svg"], 1, "the Mermaid tree is not an <svg>");
    assert!(report["mermaid_nodes"].as_u64().unwrap() > 1);
    assert_eq!(report["records_shown"], records);
    // The Cost panel: the turns add up to the session's cost, the tools to its cost rows.
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-6;
    let tree_cost = tree["cost_usd"].as_f64().unwrap();
    assert!(tree_cost > 0.0);
    assert!(
        close(&report["cost_turns_total"], tree_cost),
        "turns {} vs tree {tree_cost}",
        report["cost_turns_total"]
    );
    assert!(report["cost_turn_rows"].as_u64().unwrap() >= 1);
    let tools: Vec<f64> = by_tool
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(close(&report["cost_tools_total"], tools.iter().sum()));
    assert_eq!(report["cost_tools_rows"], tools.len());

    check_optional_endpoints(&report);
    assert!(shots.join("overview.png").is_file());
    assert!(shots.join("session.png").is_file());
}
