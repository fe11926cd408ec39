//! `ctrace serve` (issue 16, REST API): the query parameters of `/api/sessions` and `/api/cost`
//! on a store of the corpus's Claude Code projects, against the command line's `--json` rows:
//! every filter, every sort order with its paging, every `cost --by` grouping, `/api/stats` and
//! `/api/health`.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::HashMap;

use common::Sandbox;
use common::http::Server;
use serde_json::Value;

/// The sessions of `path` (a `/api/sessions` query with `limit`), following `next_cursor` to
/// the end.
fn every_page(server: &Server, path: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut next = path.to_owned();
    loop {
        let page = server.json(&next);
        rows.extend(page["sessions"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}&cursor={cursor}"),
            None => return rows,
        }
    }
}

fn ids(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["session"].as_str().unwrap())
        .collect()
}

/// A corpus store and a service on it (hermetic: never this machine's own transcripts).
fn corpus_service() -> Option<(Sandbox, Server)> {
    let corpus = common::corpus()?;
    let sandbox = Sandbox::new();
    let projects = corpus.join("claude-home/projects");
    sandbox.ok(&["ingest", "-q", projects.to_str().unwrap()]);
    let server = Server::spawn(sandbox.command_in(
        &sandbox.store(),
        &["serve", "--bind", "127.0.0.1:0", "--no-transcripts"],
    ));
    server.wait_caught_up(1);
    Some((sandbox, server))
}

/// Issue 16, REST API: `sort` and `order` order every matching session (not a page), ties by
/// id; pages of two walk the whole order once; cost and tokens are the `cost --by session`
/// sums; the filters `project`, `status`, `q`, `since`, `until`, `tool` keep what the rows say.
#[test]
fn sessions_sort_and_filter_like_the_rows() {
    let Some((sandbox, server)) = corpus_service() else {
        return;
    };
    let store = sandbox.store();
    let rows = sandbox.json_lines_in(&store, &["sessions", "--json"]);
    assert!(rows.len() >= 5, "corpus sessions: {}", rows.len());
    let costs = sandbox.json_in(&store, &["cost", "--by", "session", "--json"]);
    let mut usd: HashMap<String, (f64, u64)> = HashMap::new();
    for row in costs.as_array().unwrap() {
        let entry = usd
            .entry(row["session"].as_str().unwrap().to_owned())
            .or_default();
        entry.0 += row["cost_usd"].as_f64().unwrap_or(0.0);
        entry.1 += row["total_tokens"].as_u64().unwrap();
    }
    let cost = |r: &Value| {
        usd.get(r["session"].as_str().unwrap())
            .copied()
            .unwrap_or_default()
    };

    type Key = fn(&Value, (f64, u64)) -> f64;
    let orders: [(&str, Key); 6] = [
        ("first", |r, _| r["first_ns"].as_f64().unwrap()),
        ("duration", |r, _| r["duration_ns"].as_f64().unwrap()),
        ("tool_calls", |r, _| r["tool_calls"].as_f64().unwrap()),
        ("tool_errors", |r, _| r["tool_errors"].as_f64().unwrap()),
        ("cost", |_, c| c.0),
        ("tokens", |_, c| c.1 as f64),
    ];
    for (sort, key) in orders {
        for order in ["desc", "asc"] {
            let mut expected: Vec<&Value> = rows.iter().collect();
            expected.sort_by(|a, b| {
                let by = key(a, cost(a)).total_cmp(&key(b, cost(b)));
                let by = if order == "asc" { by } else { by.reverse() };
                by.then_with(|| a["session"].as_str().cmp(&b["session"].as_str()))
            });
            let got = every_page(
                &server,
                &format!("/api/sessions?sort={sort}&order={order}&limit=2"),
            );
            assert_eq!(
                ids(&got),
                expected
                    .iter()
                    .map(|r| r["session"].as_str().unwrap())
                    .collect::<Vec<_>>(),
                "sort={sort}&order={order}"
            );
        }
    }
    // The default order (most recent first) pages by keyset and equals the command's rows.
    assert_eq!(every_page(&server, "/api/sessions?limit=3"), rows);
    // A keyset cursor is not a cursor of another order, and the reverse.
    for bad in [
        "/api/sessions?sort=cost&cursor=123:abc",
        "/api/sessions?cursor=@2",
        "/api/sessions?sort=price",
        "/api/sessions?order=up",
    ] {
        let response = server.get(bad);
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
        assert!(!response.error().is_empty());
    }

    // Filters.
    let project = rows
        .iter()
        .find_map(|r| r["project"].as_str())
        .unwrap()
        .to_owned();
    let check = |query: &str, keep: &dyn Fn(&Value) -> bool| {
        let want: Vec<&Value> = rows.iter().filter(|r| keep(r)).collect();
        let got = every_page(&server, &format!("/api/sessions?{query}&limit=4"));
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{query}");
        want.len()
    };
    let encoded: String = project
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    assert!(
        check(&format!("project={encoded}"), &|r| r["project"]
            == project.as_str())
            >= 1
    );
    assert!(check("status=ended", &|r| r["status"] == "ended") >= 1);
    let fragment = &rows[0]["session"].as_str().unwrap()[..6];
    assert!(
        check(&format!("q={fragment}"), &|r| {
            r["session"].as_str().unwrap().contains(fragment)
                || r["project"].as_str().is_some_and(|p| p.contains(fragment))
        }) >= 1
    );
    // A range that cuts the sessions in two: sessions overlapping it.
    let mut starts: Vec<u64> = rows
        .iter()
        .map(|r| r["first_ns"].as_u64().unwrap())
        .collect();
    starts.sort_unstable();
    let middle = starts[starts.len() / 2];
    let overlapping_after = check(&format!("since={middle}"), &|r| {
        r["last_ns"].as_u64().unwrap() >= middle
    });
    let overlapping_before = check(&format!("until={middle}"), &|r| {
        r["first_ns"].as_u64().unwrap() <= middle
    });
    assert!(overlapping_after < rows.len() || overlapping_before < rows.len());
    let tool = "Bash";
    check(&format!("tool={tool}"), &|r| {
        r["tools"].as_object().unwrap().contains_key(tool)
    });
}

/// Issue 16, REST API: `/api/cost?by=` equals `ctrace cost --by … --json` for every grouping,
/// with and without `breakdown` and a range; `/api/stats` counts what `ctrace stats --json`
/// does; `/api/health` tells the store's next offset.
#[test]
fn cost_groupings_stats_and_health_equal_the_cli() {
    let Some((sandbox, server)) = corpus_service() else {
        return;
    };
    let store = sandbox.store();
    for by in [
        "session", "day", "week", "month", "model", "project", "agent", "tool", "task", "block",
    ] {
        assert_eq!(
            server.json(&format!("/api/cost?by={by}")),
            sandbox.json_in(&store, &["cost", "--by", by, "--json"]),
            "cost by {by}"
        );
        assert_eq!(
            server.json(&format!("/api/cost?by={by}&breakdown=true")),
            sandbox.json_in(&store, &["cost", "--by", by, "--breakdown", "--json"]),
            "cost by {by} with the breakdown"
        );
    }
    let days = sandbox.json_in(&store, &["cost", "--by", "day", "--json"]);
    let day = days.as_array().unwrap()[0]["day"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server.json(&format!(
            "/api/cost?by=model&since={day}&until={day}T23:59:59Z"
        )),
        sandbox.json_in(
            &store,
            &[
                "cost",
                "--by",
                "model",
                "--since",
                &day,
                "--until",
                &format!("{day}T23:59:59Z"),
                "--json"
            ]
        ),
        "cost of {day}"
    );

    let stats = server.json("/api/stats");
    let cli_stats = sandbox.json_in(&store, &["stats", "--json"]);
    for key in ["records", "next_offset", "segments"] {
        assert_eq!(
            stats[key], cli_stats[key],
            "stats {key}: {stats} vs {cli_stats}"
        );
    }
    assert_eq!(
        stats["sessions"].as_u64().unwrap() as usize,
        sandbox.json_lines_in(&store, &["sessions", "--json"]).len()
    );
    let health = server.json("/api/health");
    assert_eq!(health["next_offset"], cli_stats["next_offset"], "{health}");
}
