//! Build script: keeps `ctrace hook`'s process start-up short on Linux/glibc.
//!
//! `ctrace hook` runs once per Claude Code hook event, so process start-up is most of its cost.
//! Two link settings cut it; the measured effect of each is in `docs/benchmarks.md`.
//!
//! 1. Non-PIE: a position-independent executable of this size spends a large share of its
//!    start-up applying tens of thousands of relative relocations (each touching a page of
//!    `.data.rel.ro`); a non-PIE executable has none. Only the package's binaries are affected
//!    (`rustc-link-arg-bins`), never build scripts, proc-macros, the library, tests or fuzz
//!    targets. Set `CTRACE_PIE=1` at build time to keep the default PIE link.
//! 2. The unwinder linked statically, as `gcc -static-libgcc` does: Rust's standard library
//!    asks for `-lgcc_s`, and loading `libgcc_s.so.1` runs its constructor
//!    `__cpu_indicator_init`, a dozen `cpuid` instructions, each a trap to the hypervisor on a
//!    virtual machine. A linker script named `libgcc_s.so` in a directory searched before the
//!    compiler's own points `-lgcc_s` at GCC's static unwinder (`libgcc_eh.a`), which has no
//!    constructor; the C library stays shared. Applies when the C compiler knows `libgcc_eh.a`
//!    (GCC); set `CTRACE_SHARED_LIBGCC=1` at build time to link `libgcc_s.so.1` as usual.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    corpus_cfg();
    println!("cargo::rerun-if-env-changed=CTRACE_PIE");
    println!("cargo::rerun-if-env-changed=CTRACE_SHARED_LIBGCC");
    println!("cargo::rerun-if-env-changed=CC");
    println!("cargo::rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if !linux_gnu {
        return;
    }
    if !env_flag("CTRACE_PIE") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
    if !env_flag("CTRACE_SHARED_LIBGCC")
        && std::env::var("CARGO_CFG_TARGET_FEATURE").map_or(true, |features| {
            !features.split(',').any(|f| f == "crt-static")
        })
        && let Some(unwinder) = static_unwinder()
        && let Some(out) = std::env::var_os("OUT_DIR")
    {
        let dir = PathBuf::from(out).join("static-libgcc");
        let script = format!(
            "/* -lgcc_s -> GCC's static unwinder (see build.rs) */\nINPUT({})\n",
            unwinder.display()
        );
        if std::fs::create_dir_all(&dir).is_ok()
            && std::fs::write(dir.join("libgcc_s.so"), script).is_ok()
        {
            println!("cargo::rustc-link-search=native={}", dir.display());
        }
    }
}

/// Whether the environment variable is set to something other than empty or `0`.
/// Sets `cfg(corpus_missing)` when the real-data corpus the tests read is absent, so that its
/// tests are reported as `ignored` with the reason, counted in `cargo test`'s summary line,
/// rather than passing silently. Never under `CI=true`: there a missing corpus fails the tests
/// (`tests/common/mod.rs`).
fn corpus_cfg() {
    println!("cargo::rustc-check-cfg=cfg(corpus_missing)");
    println!("cargo::rerun-if-env-changed=CTRACE_CORPUS");
    println!("cargo::rerun-if-env-changed=CI");
    let corpus = match std::env::var_os("CTRACE_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("../shared/corpus"),
    };
    println!("cargo::rerun-if-changed={}", corpus.join("hooks").display());
    println!(
        "cargo::rerun-if-changed={}",
        corpus.join("transcripts").display()
    );
    let present = corpus.join("hooks").is_dir() && corpus.join("transcripts").is_dir();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !present && !ci {
        println!("cargo::rustc-cfg=corpus_missing");
        println!(
            "cargo::warning=corpus not found at {}: its tests are ignored (set CTRACE_CORPUS)",
            corpus.display()
        );
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The path of GCC's `libgcc_eh.a` as the C compiler reports it, when it exists.
fn static_unwinder() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let output = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (path.is_absolute() && path.is_file()).then_some(path)
}
