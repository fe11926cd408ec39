//! I/O fault injection points (the `fail` crate) at every write, sync, rename and commit of the
//! store's write paths: inbox append, sealing, the MANIFEST commit, retention, recompression,
//! and the views and index commits (`tests/fault_injection.rs` loops over all of them).
//!
//! The points exist only when the `fail` crate is built with its `failpoints` feature: test
//! builds turn it on (a dev-dependency; ctrace's own `failpoints` feature does the same for
//! other builds), `cargo build --release` does not, and then every function here is the plain
//! call it wraps and [`fail::fail_point!`] expands to nothing, so release binaries carry no
//! fail points and pay nothing for them.
//!
//! A point is configured with the `FAILPOINTS` environment variable, read by the `ctrace`
//! binary at start-up ([`setup`]), e.g. `FAILPOINTS="manifest-sync=return(eio)"`, or in-process
//! with `fail::cfg(name, "return(eio)")`. The argument of `return` is the fault:
//!
//! - `eio`: the call fails with `EIO` without doing anything (a failed write, fsync or rename);
//! - `enospc`: the call fails with `ENOSPC` without doing anything (a full disk);
//! - `short`: for a write, the first half of the buffer is written, then it fails with `ENOSPC`
//!   (a disk that filled mid-write); for other calls, as `eio`;
//! - `crash`: the process aborts at the point, as `kill -9` between two steps would.
//!
//! Any other `fail` action (`panic`, `sleep(ms)`, `N*` counts, `p%` probabilities) works too.
//! Injected errors are `std::io::Error`s with the real `errno`, converted to whatever the wrapped
//! call returns (`rusqlite::Error` for the views, `TantivyError` for the index), so the code
//! under test takes its ordinary error path.

use std::io::{self, Write};

/// Configures the points named in `FAILPOINTS` when fail points are compiled in; does nothing
/// (not even read the environment) otherwise.
///
/// # Panics
/// When `FAILPOINTS` is set but malformed, in builds with fail points (test builds) only.
pub fn setup() {
    if fail::has_failpoints() {
        // The scenario's guard keeps the points configured for the life of the process.
        std::mem::forget(fail::FailScenario::setup());
    }
}

/// The error an injected fault `kind` (the `return` argument) stands for: `ENOSPC` for
/// `enospc`, `EIO` otherwise; `crash` aborts the process instead.
pub fn injected(kind: Option<&str>) -> io::Error {
    match kind {
        Some("enospc") => io::Error::from_raw_os_error(libc::ENOSPC),
        Some("crash") => std::process::abort(),
        _ => io::Error::from_raw_os_error(libc::EIO),
    }
}

/// A fault point before a sync, rename, unlink or commit: `Ok(())` unless the point `name` is
/// configured.
///
/// # Errors
/// The injected `EIO` or `ENOSPC`.
#[inline]
pub fn point(name: &str) -> io::Result<()> {
    let _ = name;
    fail::fail_point!(name, |kind: Option<String>| Err(injected(kind.as_deref())));
    Ok(())
}

/// `writer.write_all(buf)` with the fault point `name` in front of it: `short` writes the
/// first half of `buf` and then fails, as a disk that filled mid-write does.
///
/// # Errors
/// The write's error, or the injected one.
#[inline]
pub fn write_all<W: Write + ?Sized>(name: &str, writer: &mut W, buf: &[u8]) -> io::Result<()> {
    let _ = name;
    fail::fail_point!(name, |kind: Option<String>| {
        if kind.as_deref() == Some("short") {
            writer.write_all(&buf[..buf.len() / 2])?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Err(injected(kind.as_deref()))
    });
    writer.write_all(buf)
}

/// A point between two steps where only `crash` (or `panic`) makes sense: the process aborts
/// there when the point `name` is configured with `return` (any argument).
#[inline]
pub fn crash(name: &str) {
    let _ = name;
    fail::fail_point!(name, |_| std::process::abort());
}

/// [`point`] for a SQLite call: the injected error as SQLite reports it (`SQLITE_FULL` for
/// `enospc`, `SQLITE_IOERR` otherwise).
///
/// # Errors
/// The injected error.
#[inline]
pub fn sqlite(name: &str) -> rusqlite::Result<()> {
    point(name).map_err(|error| {
        let code = if error.raw_os_error() == Some(libc::ENOSPC) {
            rusqlite::ffi::SQLITE_FULL
        } else {
            rusqlite::ffi::SQLITE_IOERR
        };
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(error.to_string()))
    })
}
