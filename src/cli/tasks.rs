//! `ctrace tasks`: to-dos and Beads issues as a tree with status, time in progress and the cost
//! of the API responses that came while each was in progress.

use std::io::Write;

use clap::Args;

use super::UsageError;
use super::time::format_duration;
use crate::log::Store;
use crate::views::pricing::PriceTable;
use crate::views::tasks::TaskNode;

/// Arguments of `ctrace tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Only this session (id or unique prefix)
    #[arg(long, value_name = "S")]
    pub session: Option<String>,
    /// Print the forest as JSON
    #[arg(long, conflicts_with = "mermaid")]
    pub json: bool,
    /// Print a Mermaid flowchart
    #[arg(long)]
    pub mermaid: bool,
}

/// Runs `ctrace tasks`; returns the exit code.
///
/// # Errors
/// [`UsageError`] for an unknown session; when the views cannot be read.
pub fn run(store: &Store, args: &TasksArgs) -> anyhow::Result<i32> {
    super::refresh(store)?;
    let db = super::views_for_reading(store)?;
    let session = match &args.session {
        Some(prefix) => {
            let found = crate::views::tree::resolve_session(&db, prefix)?;
            match found.as_slice() {
                [one] => Some(one.clone()),
                [] => return Err(UsageError(format!("no session matches `{prefix}`")).into()),
                _ => {
                    return Err(UsageError(format!(
                        "`{prefix}` matches several sessions: {}",
                        found.join(", ")
                    ))
                    .into());
                }
            }
        }
        None => None,
    };
    let prices = PriceTable::new(&store.config().pricing);
    let forest = crate::views::tasks::task_forest(&db, &prices, session.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &forest)?;
        writeln!(out)?;
        return Ok(0);
    }
    if args.mermaid {
        writeln!(out, "flowchart TD")?;
        for (class, style) in [
            ("done", "fill:#d4edda,stroke:#28a745,color:#000"),
            ("active", "fill:#cce5ff,stroke:#007bff,color:#000"),
            ("open", "fill:#fff3cd,stroke:#ffc107,color:#000"),
            ("group", "fill:#eeeeee,stroke:#999999,color:#000"),
        ] {
            writeln!(out, "  classDef {class} {style}")?;
        }
        let mut next = 0;
        for root in &forest.roots {
            mermaid(&mut out, root, None, &mut next)?;
        }
    } else {
        if forest.roots.is_empty() {
            writeln!(
                out,
                "no to-dos or Beads issues seen (TodoWrite/TaskCreate/TaskUpdate calls, bd commands, .beads/issues.jsonl)"
            )?;
        }
        for root in &forest.roots {
            text(&mut out, root, "", "")?;
        }
    }
    for problem in &forest.problems {
        eprintln!(
            "warning: {} line {}: {} (skipped)",
            problem.file.display(),
            problem.line,
            problem.reason
        );
    }
    Ok(0)
}

fn cost(node: &TaskNode) -> String {
    node.cost_usd
        .map_or_else(|| "unpriced".to_owned(), |c| format!("${c:.4}"))
}

fn title(node: &TaskNode) -> String {
    let t: String = node.title.chars().take(70).collect();
    if node.kind == "beads" {
        format!("{} {t}", node.id)
    } else {
        t
    }
}

fn text(out: &mut impl Write, node: &TaskNode, prefix: &str, child: &str) -> std::io::Result<()> {
    let mut facts = Vec::new();
    if !node.status.is_empty() {
        facts.push(node.status.clone());
    }
    if node.in_progress_ns > 0 {
        facts.push(format!(
            "{} in progress",
            format_duration(node.in_progress_ns)
        ));
    }
    facts.push(cost(node));
    writeln!(
        out,
        "{prefix}{} {}  [{}]",
        node.kind,
        title(node),
        facts.join("  ")
    )?;
    let n = node.children.len();
    for (i, c) in node.children.iter().enumerate() {
        let (branch, next) = if i + 1 == n {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        text(
            out,
            c,
            &format!("{child}{branch}"),
            &format!("{child}{next}"),
        )?;
    }
    Ok(())
}

fn mermaid(
    out: &mut impl Write,
    node: &TaskNode,
    parent: Option<usize>,
    next: &mut usize,
) -> std::io::Result<()> {
    let id = *next;
    *next += 1;
    let class = match node.status.as_str() {
        "completed" | "closed" | "done" => "done",
        "in_progress" => "active",
        "" => "group",
        _ => "open",
    };
    let label: String = format!("{}: {}", node.kind, title(node))
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;");
    writeln!(
        out,
        "  t{id}[\"{label}<br/>{} {}\"]:::{class}",
        node.status,
        cost(node)
    )?;
    if let Some(p) = parent {
        writeln!(out, "  t{p} --> t{id}")?;
    }
    for c in &node.children {
        mermaid(out, c, Some(id), next)?;
    }
    Ok(())
}
