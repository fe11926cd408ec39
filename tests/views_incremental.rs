//! Issue 5: the views are incremental by construction and survive kill -9. Folding the corpus
//! in several passes (and after killed passes) gives the same costs and trees as a rebuild, and
//! a killed rebuild leaves no file behind once the views are opened again.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::Sandbox;

fn outputs(sandbox: &Sandbox) -> Vec<String> {
    let mut out = vec![
        sandbox.ok_stdout(&["cost", "--by", "session", "--breakdown", "--json"]),
        sandbox.ok_stdout(&["cost", "--by", "agent", "--json"]),
        sandbox.ok_stdout(&["cost", "--by", "task", "--json"]),
        sandbox.ok_stdout(&["tasks", "--json"]),
    ];
    for session in ["4d5611e5", "fe5e1c67", "8463c716"] {
        out.push(sandbox.ok_stdout(&["tree", session, "--json"]));
    }
    out
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn passes_and_kills_equal_a_rebuild() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let home = corpus.join("claude-home/projects");
    let sandbox = Sandbox::new();
    // Pass 1: one project; pass 2: the other, folded in small batches.
    sandbox.ingest(&[&home.join("claude-code-viewer-sample")]);
    sandbox.ok(&["compact"]);
    sandbox.ingest(&[&home.join("spotter")]);
    let status = sandbox
        .command(&["compact"])
        .env("CTRACE_VIEWS_BATCH_RECORDS", "500")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let incremental = outputs(&sandbox);

    // kill -9 during rebuilds at several points, then let a normal pass finish.
    for delay_ms in [5u64, 40, 120, 250] {
        let mut child = sandbox
            .command(&["compact", "--rebuild"])
            .env("CTRACE_VIEWS_BATCH_RECORDS", "300")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            outputs(&sandbox),
            incremental,
            "after a kill at {delay_ms} ms"
        );
        // The killed rebuild's fresh file is gone once the views were opened again.
        let leftovers: Vec<String> = std::fs::read_dir(sandbox.store().join("views"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".rebuild-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "after a kill at {delay_ms} ms: {leftovers:?}"
        );
    }
    sandbox.ok(&["compact", "--rebuild"]);
    assert_eq!(outputs(&sandbox), incremental, "rebuild");
}
