//! `compact` and `reindex` wait for another process's index writer (issue 14 item 16) instead
//! of failing with "being updated by another process", as the seal waits for `ctrace.lock`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Sandbox, assert_success};

#[test]
fn compact_and_reindex_wait_for_the_index_writer() {
    let sandbox = Sandbox::new();
    assert_success(
        &["hook"],
        &sandbox.hook(br#"{"hook_event_name":"Stop","session_id":"a"}"#),
    );
    assert_success(&["reindex"], &sandbox.run(&["reindex"]));
    for args in [&["compact"][..], &["reindex"]] {
        assert_success(
            &["hook"],
            &sandbox.hook(br#"{"hook_event_name":"Stop","session_id":"b"}"#),
        );
        // Another writer: this test process holds tantivy's writer lock.
        let index = tantivy::Index::open_in_dir(sandbox.store().join("index")).unwrap();
        let writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let mut child = sandbox
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The lock is released only once the child says it waits for it (after a second of
        // retries), however long it takes to get there on a loaded machine.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !seen.contains("waiting for another process") {
            assert!(Instant::now() < deadline, "{args:?} never waited: {seen}");
            let mut line = String::new();
            let read = stderr.read_line(&mut line).unwrap();
            assert!(read > 0, "{args:?} ended without waiting: {seen}");
            seen.push_str(&line);
        }
        drop(writer);
        stderr.read_to_string(&mut seen).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{args:?}: {seen}");
    }
    let found = sandbox.ok_stdout(&["search", "Stop", "--json"]);
    assert!(found.lines().count() >= 3, "{found}");
}
