//! The runtime log (`<store>/logs/ctrace.log.YYYY-MM-DD`) keeps the last 14 daily files: a
//! service left running for months does not fill the disk with its own log.
mod common;

use common::Sandbox;

#[test]
fn old_daily_log_files_are_pruned() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["stats"]);
    let logs = sandbox.store().join("logs");
    assert!(logs.is_dir(), "no runtime log directory");
    for day in 1..=20 {
        let path = logs.join(format!("ctrace.log.2026-10-{day:02}"));
        std::fs::write(&path, "old\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    sandbox.ok(&["stats"]);
    let files: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ctrace.log"))
        .collect();
    assert_eq!(files.len(), 14, "{files:?}");
}
