//! `ctrace tree`: one session as a tree of turns, tool calls and subagents, with status,
//! duration, tokens and cost per node; `--json` for the tree itself, `--mermaid` for a
//! flowchart.

use std::io::Write;

use clap::Args;

use super::UsageError;
use super::time::format_duration;
use crate::log::Store;
use crate::views::pricing::PriceTable;
use crate::views::tree::{Node, NodeKind, Status};

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

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Error => "error",
        Status::Unfinished => "unfinished",
    }
}

fn kind_word(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Session => "session",
        NodeKind::Turn => "turn",
        NodeKind::Tool => "tool",
        NodeKind::Subagent => "subagent",
    }
}

fn cost_text(cost: Option<f64>) -> String {
    cost.map_or_else(|| "unpriced".to_owned(), |c| format!("${c:.4}"))
}

fn label(node: &Node, max_chars: usize) -> String {
    let name: String = node.name.chars().take(max_chars).collect();
    if node.name.chars().count() > max_chars {
        format!("{name}…")
    } else {
        name
    }
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

/// Text safe inside a Mermaid `"..."` label.
fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' | '\t' => out.push(' '),
            '`' => out.push('\''),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn write_mermaid(out: &mut impl Write, tree: &Node) -> std::io::Result<()> {
    writeln!(out, "flowchart TD")?;
    writeln!(out, "  classDef ok fill:#d4edda,stroke:#28a745,color:#000")?;
    writeln!(
        out,
        "  classDef error fill:#f8d7da,stroke:#dc3545,color:#000"
    )?;
    writeln!(
        out,
        "  classDef unfinished fill:#fff3cd,stroke:#ffc107,color:#000"
    )?;
    let mut next = 0usize;
    mermaid_node(out, tree, None, &mut next)
}

fn mermaid_node(
    out: &mut impl Write,
    node: &Node,
    parent: Option<usize>,
    next: &mut usize,
) -> std::io::Result<()> {
    let id = *next;
    *next += 1;
    let mut text = format!("{}: {}", kind_word(node.kind), label(node, 48));
    if let Some(end) = node.end_ns {
        text.push_str(&format!(
            "<br/>{}",
            format_duration(end.saturating_sub(node.start_ns))
        ));
    }
    text = mermaid_escape(&text).replace("#lt;br/#gt;", "<br/>");
    let cost = mermaid_escape(&cost_text(node.cost_usd));
    writeln!(
        out,
        "  n{id}[\"{text}<br/>{cost}\"]:::{}",
        status_word(node.status)
    )?;
    if let Some(parent) = parent {
        writeln!(out, "  n{parent} --> n{id}")?;
    }
    for child in &node.children {
        mermaid_node(out, child, Some(id), next)?;
    }
    Ok(())
}
