//! `compact` and `reindex` wait for another process's index writer (issue 14 item 16) instead
//! of failing with "being updated by another process", as the seal waits for `ctrace.lock`.

mod common;

use std::process::Stdio;
use std::time::Duration;

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
        let child = sandbox
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        drop(writer);
        let output = child.wait_with_output().unwrap();
        assert_success(args, &output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("waiting for another process"),
            "{args:?}: {stderr}"
        );
    }
    let found = sandbox.ok_stdout(&["search", "Stop", "--json"]);
    assert!(found.lines().count() >= 3, "{found}");
}
