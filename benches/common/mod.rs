//! What the benches share: setup errors end the bench with a message, and the models of the
//! generated usage.
#![allow(dead_code, reason = "each bench uses a different subset")]

/// Exits with a message on error: a bench has nobody to return an error to, and the crate's
/// lints forbid `unwrap`.
pub trait OrExit<T> {
    /// The value, or exit 1 naming `what` failed.
    fn or_exit(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> OrExit<T> for Result<T, E> {
    fn or_exit(self, what: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => {
                eprintln!("bench setup failed: {what}: {error}");
                std::process::exit(1);
            }
        }
    }
}

/// Models of generated API responses (one per price tier).
pub const MODELS: [&str; 3] = [
    "claude-opus-4-6",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
];
