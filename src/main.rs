//! The `ctrace` binary: parses arguments and dispatches to the library (`ctrace::cli`).
//!
//! `ctrace hook` runs once per Claude Code hook event, so process start-up is most of its cost
//! (`docs/benchmarks.md`). The binary therefore defines the C `main` itself (`#![no_main]`)
//! and skips the Rust runtime's start-up, whose main-thread stack-guard probe alone reads and
//! parses `/proc/self/maps` (a quarter of the instructions of a whole hook call). What that
//! start-up does and ctrace relies on is done here: the standard file descriptors are made valid
//! (a closed fd 0, 1 or 2 is opened on `/dev/null`, so no file ctrace opens takes its number),
//! and `SIGPIPE` is ignored (a closed stdout is an `EPIPE` error, which the CLI maps to exit 0).
//! The umask is set to 077 so that every file ctrace creates (including those of SQLite, tantivy
//! and the runtime log, which choose their own modes) is user-only: files 0600, directories 0700.
//! What is given up: the "thread 'main' has overflowed its stack" message (a stack overflow is
//! a plain `SIGSEGV`). Panics, `std::env::args` and everything else work as usual.

// The test harness (`cargo test` builds this file as a test too) brings its own `main`.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
use std::ffi::{c_char, c_int};

/// The process entry point called by the C runtime.
#[cfg(not(test))]
#[expect(unsafe_code, reason = "the C `main` symbol must be unmangled")]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    prepare_process();
    // A panic must not unwind into the C runtime; the CLI handles its own errors, and `ctrace
    // hook` catches panics itself.
    let code = std::panic::catch_unwind(|| {
        ctrace::fault::setup();
        ctrace::cli::main()
    })
    .unwrap_or(101);
    // `exit` flushes Rust's buffered stdout, as returning from a Rust `main` would.
    std::process::exit(code)
}

/// What Rust's runtime start-up would have done that ctrace relies on.
#[cfg(not(test))]
#[expect(
    unsafe_code,
    reason = "fcntl, open and signal on the process's own state"
)]
fn prepare_process() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor table.
        let closed = unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF);
        if closed {
            // SAFETY: the path is a NUL-terminated literal; the lowest free descriptor is `fd`,
            // since every lower one is open by now. If open fails the descriptor stays closed,
            // as the Rust runtime would then abort; ctrace carries on instead.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
    // SAFETY: setting SIGPIPE's disposition to ignore, before any thread is started.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe { libc::umask(0o077) };
}
