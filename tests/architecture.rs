//! The layering rule of `ARCHITECTURE.md`, checked on the source (issue 15 item 5):
//!
//! ```text
//! cli → (views, index, export, pty, ingest, serve) → compactor → log → (segments, config, model, claude, fs)
//! ```
//!
//! A module may import its own layer's siblings and anything below; nothing imports anything
//! above it. The bottom layer holds what every layer may see: the byte format (`segments`),
//! the configuration (`config`), the record model (`model`), Claude Code's shapes (`claude`) and
//! the file-system helpers (`fs`).
//! `fault` (the fault injection points) and the crate root's helpers (`now_ns`) are visible
//! to every module and import nothing from the crate.
//!
//! The check reads every `crate::<module>` path in `src/` outside comments and `#[cfg(test)]`
//! modules (tests may build fixtures with anything).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layer of a top-level module of `src/`; `None` for the shared ones (visible to all).
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "segments" | "config" | "model" | "fs" | "claude" => 0,
        "log" => 1,
        "compactor" => 2,
        "views" | "index" | "export" | "pty" | "ingest" | "serve" | "otlp" => 3,
        "cli" | "main" | "lib" => 4,
        "fault" | "now_ns" => return None,
        other => panic!(
            "module `{other}` has no layer: add it to tests/architecture.rs and ARCHITECTURE.md"
        ),
    })
}

/// The module a path inside `src/` belongs to: `src/x.rs` and `src/x/…` → `x`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::…` targets a source text names outside comments and test modules, as
/// (line number, target module).
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            // A test module runs to the end of the file in this code base (checked: any
            // `#[cfg(test)]` item that is not a trailing `mod` is a test-only helper).
            if lines
                .peek()
                .is_some_and(|(_, next)| next.trim_start().starts_with("mod "))
            {
                break;
            }
            continue;
        }
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let target = name.clone();
            if !name.is_empty() {
                found.push((n + 1, target));
            }
            rest = &after[name.len()..];
        }
    }
    found
}

/// Every edge of the source that the rule forbids, as `file:line: from → to`.
fn forbidden_edges(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let from = module_of(src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, to) in imports(&text) {
            if to == from {
                continue;
            }
            let allowed = match (layer(&from), layer(&to)) {
                // The shared helpers import nothing from the crate.
                (None, _) => false,
                (Some(_), None) => true,
                (Some(a), Some(b)) => b <= a,
            };
            if !allowed {
                bad.push(format!(
                    "{}:{line}: {from} → {to}",
                    file.strip_prefix(src.parent().unwrap()).unwrap().display()
                ));
            }
        }
    }
    bad
}

#[test]
fn layers_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = forbidden_edges(&src);
    assert!(
        bad.is_empty(),
        "imports that point up the layers of ARCHITECTURE.md:\n  {}",
        bad.join("\n  ")
    );
}

/// The checker itself: an upward import is found, a downward one, a comment and a test
/// module are not.
#[test]
fn the_checker_finds_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("log")).unwrap();
    std::fs::create_dir_all(src.join("views")).unwrap();
    std::fs::write(
        src.join("log/mod.rs"),
        "use crate::segments::Offset;\n// crate::cli in a comment\nuse crate::model::Record;\n\
         fn f() { crate::views::catch_up(); }\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("views/mod.rs"), "use crate::log::Store;\n").unwrap();
    std::fs::write(
        src.join("config.rs"),
        "use crate::segments::frame::LIMIT;\nuse crate::model::Source;\nuse crate::log::Store;\n",
    )
    .unwrap();
    std::fs::write(src.join("fault.rs"), "use crate::config::Config;\n").unwrap();
    let bad = forbidden_edges(&src);
    assert_eq!(
        bad.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "src/config.rs:3: config → log".to_owned(),
            "src/fault.rs:1: fault → config".to_owned(),
            "src/log/mod.rs:4: log → views".to_owned(),
        ])
    );
}
