//! The browser tests' tools: node, playwright-core (`.ci/setup-playwright.sh`) and Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::Sandbox;
use super::http::Server;

/// What the browser test needs: node, playwright-core's directory, Chromium. `None` (after a
/// visible SKIP line) when one is missing, except under `CI=true`, where that fails.
pub fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let playwright = std::env::var_os("CTRACE_PLAYWRIGHT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ctrace-ci-playwright/node_modules"));
    let chromium = std::env::var_os("CTRACE_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let missing = if !node_ok {
        Some("node".to_owned())
    } else if !playwright.join("playwright-core/package.json").is_file() {
        Some(format!(
            "playwright-core under {} (set CTRACE_PLAYWRIGHT; .ci/setup-playwright.sh installs it)",
            playwright.display()
        ))
    } else if !chromium.is_file() {
        Some(format!(
            "chromium at {} (set CTRACE_CHROMIUM)",
            chromium.display()
        ))
    } else {
        None
    };
    match missing {
        None => Some((playwright, chromium)),
        Some(what) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{what} not found (CI=true: the dashboard browser test is required)")
        }
        Some(what) => {
            eprintln!("SKIP: {what} not found; the dashboard browser test did not run");
            None
        }
    }
}

/// Runs `tests/e2e/dashboard.mjs` against `server` with `config` (written to a file of the
/// sandbox) and returns its JSON report, asserting the script succeeded.
pub fn run_browser(
    sandbox: &Sandbox,
    server: &Server,
    config: &Value,
    playwright: &Path,
    chromium: &Path,
) -> Value {
    let config_path = sandbox.path("e2e.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/dashboard.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .arg(&config_path)
        .env("NODE_PATH", playwright)
        .env("CTRACE_CHROMIUM", chromium)
        .env("TMPDIR", sandbox.tmp())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the browser script printed no JSON ({e}); stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    eprintln!("browser report: {report:#}");
    assert!(output.status.success(), "browser script failed: {report}");
    report
}
