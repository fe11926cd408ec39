//! `ctrace pin` and `ctrace unpin`: keep a session whatever the retention policy. The pin list
//! is `<store>/PINS`, replaced atomically under the store lock.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use crate::log::Store;
use crate::log::retention::Pins;

/// Arguments of `ctrace pin` / `ctrace unpin`.
#[derive(Debug, Args)]
pub struct PinArgs {
    /// Session id; without one, `pin` lists the pinned sessions
    pub session: Option<String>,
}

/// Runs `ctrace pin` (or `unpin`); returns the exit code: 0, or 2 when `unpin` has no session.
///
/// # Errors
/// When the pin list cannot be read or written.
pub fn run(store: &Store, args: &PinArgs, unpin: bool) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    let Some(session) = args.session.as_deref() else {
        if unpin {
            eprintln!("ctrace unpin: which session? (`ctrace pin` lists the pinned ones)");
            return Ok(2);
        }
        for session in Pins::load(store.paths())?.iter() {
            writeln!(out, "{session}")?;
        }
        return Ok(0);
    };
    let _lock = store.lock().context("taking the store lock")?;
    let mut pins = Pins::load(store.paths())?;
    let changed = if unpin {
        pins.remove(session)
    } else {
        pins.insert(session)
    };
    if changed {
        pins.save(store.paths()).context("writing the pin list")?;
    }
    let state = match (unpin, changed) {
        (false, true) => "pinned",
        (false, false) => "already pinned",
        (true, true) => "unpinned",
        (true, false) => "was not pinned",
    };
    writeln!(out, "{session}: {state}")?;
    Ok(0)
}
