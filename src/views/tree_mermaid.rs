//! A session tree ([`super::tree::Node`]) as a Mermaid flowchart, and the words its text
//! renderings share.

use std::io::Write;

use super::tree::{Node, NodeKind, Status};

/// The word for a node status (`ok`, `error`, `unfinished`).
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Error => "error",
        Status::Unfinished => "unfinished",
    }
}

/// The word for a node kind (`session`, `turn`, `tool`, `subagent`).
pub fn kind_word(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Session => "session",
        NodeKind::Turn => "turn",
        NodeKind::Tool => "tool",
        NodeKind::Subagent => "subagent",
    }
}

/// A cost as `$0.1234`, or `unpriced`.
pub fn cost_text(cost: Option<f64>) -> String {
    cost.map_or_else(|| "unpriced".to_owned(), |c| format!("${c:.4}"))
}

/// The node's name cut to `max_chars` characters (with `…`).
pub fn label(node: &Node, max_chars: usize) -> String {
    let name: String = node.name.chars().take(max_chars).collect();
    if node.name.chars().count() > max_chars {
        format!("{name}…")
    } else {
        name
    }
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

/// Writes `tree` as a Mermaid flowchart (`ctrace tree --mermaid`, the service's
/// `/api/sessions/{id}/tree?format=mermaid`): one node per tree node, coloured by status.
///
/// # Errors
/// I/O errors of `out`.
pub fn write_mermaid(out: &mut impl Write, tree: &Node) -> std::io::Result<()> {
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
            crate::model::format_duration(end.saturating_sub(node.start_ns))
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
