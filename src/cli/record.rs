//! `ctrace record [--name NAME] [--input] -- CMD [ARGS...]`: runs a command under a PTY and
//! records its terminal stream (`crate::pty`).
//!
//! Exit status: the child's (its exit code, or 128 + signal number); 127 when the command is
//! not found and 126 when it cannot be run, like a shell; 1 when the store cannot be written
//! before the child starts.

use std::ffi::OsString;

use clap::Args;

use crate::log::Store;
use crate::pty::{RecordOptions, record};

/// Arguments of `record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A name for the recording (kept as the title of its asciicast header)
    #[arg(long)]
    pub name: Option<String>,
    /// Also record keystrokes (off by default: they can hold passwords)
    #[arg(long)]
    pub input: bool,
    /// Print nothing on stderr (no session id at the end)
    #[arg(long, short)]
    pub quiet: bool,
    /// The command and its arguments, after `--` [default: $SHELL]
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// Runs `record`; returns the child's exit status.
///
/// # Errors
/// Never: failures are reported on stderr and become the exit status.
pub fn run(store: &Store, args: &RecordArgs) -> anyhow::Result<i32> {
    let options = RecordOptions {
        command: args.command.clone(),
        name: args.name.clone(),
        input: args.input,
    };
    match record(store, &options) {
        Ok(mut recording) => {
            if let Some(error) = recording.store_error.take() {
                eprintln!(
                    "ctrace: recording of session {} stopped early: {:#}",
                    recording.session,
                    anyhow::Error::from(error)
                );
            } else if !args.quiet {
                eprintln!(
                    "ctrace: recorded session {} ({} records, exit status {})",
                    recording.session, recording.records, recording.status
                );
            }
            Ok(recording.status)
        }
        Err(error) => {
            let code = error.exit_code();
            eprintln!("ctrace: {:#}", anyhow::Error::from(error));
            Ok(code)
        }
    }
}
