//! Issue 5 (acceptance 3, `cost --by day`): `usage_days`, the per-day sums that
//! `ctrace cost --by day|week|month|model` read, stays equal to `usage` grouped by day and model
//! after a first fold, after incremental passes in tiny batches (a response's better line
//! replacing an earlier one in a later batch), after `forget` and after a rebuild; and the
//! unfiltered cost tables equal the same query over every usage row (`--since` forces that path).
//! `session_tools`, the tool calls and failures per session and tool that the session list
//! reads, is checked the same way against `spans`.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::Sandbox;
use rusqlite::types::Value;

const SUMS: &str = "SELECT day, model, input_tokens, output_tokens, cache_creation_tokens,
    cache_creation_1h_tokens, cache_read_tokens, responses, first_ns, last_ns
    FROM usage_days ORDER BY day, model";
const GROUPED: &str = "SELECT day, model, sum(input_tokens), sum(output_tokens),
    sum(cache_creation_tokens), sum(cache_creation_1h_tokens), sum(cache_read_tokens), count(*),
    min(ts_ns), max(ts_ns) FROM usage GROUP BY day, model ORDER BY day, model";
const TOOLS: &str = "SELECT session, tool, calls, errors FROM session_tools
    ORDER BY session, tool";
const TOOLS_COUNTED: &str = "SELECT session, coalesce(name, ''), count(*), sum(error != 0)
    FROM spans WHERE kind = 'tool' GROUP BY session, coalesce(name, '')
    ORDER BY session, coalesce(name, '')";

fn rows(db: &Path, sql: &str) -> Vec<Vec<Value>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        (0..columns).map(|i| row.get::<_, Value>(i)).collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn assert_sums_match(sandbox: &Sandbox, when: &str) {
    let db = sandbox.store().join("views/views.sqlite");
    let sums = rows(&db, SUMS);
    assert!(!sums.is_empty(), "{when}: no usage");
    assert_eq!(sums, rows(&db, GROUPED), "{when}");
    let tools = rows(&db, TOOLS);
    assert!(!tools.is_empty(), "{when}: no tool calls");
    assert_eq!(tools, rows(&db, TOOLS_COUNTED), "{when}: session_tools");
}

fn cost_tables(sandbox: &Sandbox) -> Vec<String> {
    ["day", "week", "month", "model"]
        .iter()
        .map(|by| {
            let fast = sandbox.ok_stdout(&["cost", "--by", by, "--breakdown", "--json"]);
            let scan = sandbox.ok_stdout(&[
                "cost",
                "--by",
                by,
                "--breakdown",
                "--json",
                "--since",
                "2000-01-01",
            ]);
            assert_eq!(fast, scan, "cost --by {by}");
            fast
        })
        .collect()
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn per_day_sums_follow_usage() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let home = corpus.join("claude-home/projects");
    let sandbox = Sandbox::new();
    sandbox.ingest(&[&home.join("claude-code-viewer-sample")]);
    sandbox.ok(&["compact"]);
    assert_sums_match(&sandbox, "first fold");

    sandbox.ingest(&[&home.join("spotter")]);
    let status = sandbox
        .command(&["compact"])
        .env("CTRACE_VIEWS_BATCH_RECORDS", "3")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_sums_match(&sandbox, "incremental passes");
    let before = cost_tables(&sandbox);

    sandbox.ok(&["compact", "--rebuild"]);
    assert_sums_match(&sandbox, "rebuild");
    assert_eq!(cost_tables(&sandbox), before, "rebuild");

    sandbox.ok(&["forget", "4d5611e5-241a-462a-8d15-5122611a9569"]);
    sandbox.ok(&["compact"]);
    assert_sums_match(&sandbox, "forget");
    let after = cost_tables(&sandbox);
    assert_ne!(after, before, "forget removed usage");
}
