//! Build script: links the `ctrace` binary as a non-PIE executable on Linux/glibc.
//!
//! `ctrace hook` runs once per Claude Code hook event, so process start-up is most of its cost.
//! A position-independent executable of this size spends a large share of its start-up applying
//! tens of thousands of relative relocations (each touching a page of `.data.rel.ro`); a non-PIE
//! executable has none. The measured effect is in `docs/benchmarks.md`. Only the package's
//! binaries are affected (`rustc-link-arg-bins`), never build scripts, proc-macros, the library,
//! tests or fuzz targets. Set `CTRACE_PIE=1` at build time to keep the default PIE link.

fn main() {
    println!("cargo::rerun-if-env-changed=CTRACE_PIE");
    println!("cargo::rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let pie_requested = std::env::var_os("CTRACE_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if linux_gnu && !pie_requested {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
