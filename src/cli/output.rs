//! Output helpers shared by subcommands: record JSON, payload embedding, one-line summaries.

use std::io::Write;

/// Writes `value` as one JSON line.
///
/// # Errors
/// I/O errors (a closed pipe included).
pub(crate) fn json_line(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

pub use crate::claude::summary::{one_line, tool_input_summary};
pub use crate::export::record_json::{Payload, write_record_json};
pub use crate::views::record_text::summary;
