//! `ctrace tree`: one session as a tree of turns, tool calls and subagents, with status,
//! duration, tokens and cost per node; `--json` for the tree itself, `--mermaid` for a
//! flowchart.

use std::io::Write;

use clap::Args;

use super::UsageError;
use super::time::format_duration;
use crate::log::Store;
use crate::views::pricing::PriceTable;
use crate::views::tree::{Node, NodeKind};
use crate::views::tree_mermaid::{cost_text, kind_word, label, status_word, write_mermaid};

/// Arguments of `ctrace tree`.
#[derive(Debug, Args)]
pub struct TreeArgs {
    /// Session id (or a unique prefix)
    pub session: String,
    /// Print the tree as JSON
    #[arg(long, conflicts_with = "mermaid")]
    pub json: bool,
    /// Print a Mermaid flowchart (render with the Mermaid CLI: `mmdc -i tree.mmd -o tree.svg`)
    #[arg(long)]
    pub mermaid: bool,
}

/// Runs `ctrace tree`; returns the exit code.
///
/// # Errors
/// [`UsageError`] for an unknown or ambiguous session; when the views cannot be read.
pub fn run(store: &Store, args: &TreeArgs) -> anyhow::Result<i32> {
    super::refresh(store)?;
    let db = super::views_for_reading(store)?;
    let found = crate::views::tree::resolve_session(&db, &args.session)?;
    if found.len() > 1 {
        return Err(UsageError(format!(
            "`{}` matches several sessions: {}",
            args.session,
            found.join(", ")
        ))
        .into());
    }
    let prices = PriceTable::new(&store.config().pricing);
    let Some(tree) = crate::views::tree::build(&db, &prices, &args.session)? else {
        return Err(UsageError(format!(
            "no session matches `{}` (see `ctrace sessions`)",
            args.session
        ))
        .into());
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &tree)?;
        writeln!(out)?;
    } else if args.mermaid {
        write_mermaid(&mut out, &tree)?;
    } else {
        write_text(&mut out, &tree, "", "", true)?;
        writeln!(out, "prices: {}", prices.version())?;
    }
    Ok(0)
}

fn facts(node: &Node) -> String {
    let mut parts = vec![status_word(node.status).to_owned()];
    if let Some(end) = node.end_ns {
        parts.push(format_duration(end.saturating_sub(node.start_ns)));
    }
    let t = &node.tokens;
    let total = t.input + t.output + t.cache_creation + t.cache_read;
    if total > 0 {
        parts.push(format!("{total} tok"));
    }
    if node.kind != NodeKind::Tool || node.cost_usd != Some(0.0) {
        parts.push(cost_text(node.cost_usd));
    }
    if let Some(error) = &node.error {
        parts.push(format!("error: {}", label_text(error, 80)));
    }
    parts.join("  ")
}

fn label_text(text: &str, max: usize) -> String {
    let t: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        format!("{t}…")
    } else {
        t
    }
}

fn write_text(
    out: &mut impl Write,
    node: &Node,
    prefix: &str,
    child_prefix: &str,
    root: bool,
) -> std::io::Result<()> {
    let head = if root {
        format!("session {}", node.id)
    } else {
        format!("{} {}", kind_word(node.kind), label(node, 70))
    };
    writeln!(out, "{prefix}{head}  [{}]", facts(node))?;
    let count = node.children.len();
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == count;
        let (branch, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        write_text(
            out,
            child,
            &format!("{child_prefix}{branch}"),
            &format!("{child_prefix}{next}"),
            false,
        )?;
    }
    Ok(())
}
