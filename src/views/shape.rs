//! A session's tree (`tree.rs`) flattened into the facts `ctrace show` lays over the session's
//! records: each tool call's start, end and status, the tool call each subagent hangs under,
//! the records that start turns, and the subagent each inline sidechain line belongs to. Read
//! from the same tree as `ctrace tree`, so the two commands cannot disagree.

use std::collections::{HashMap, HashSet};

use super::pricing::PriceTable;
use super::tree::{Node, NodeKind, Status};
use super::{SqlContext, ViewsDb, ViewsError};

/// A tool call as the tree has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolFacts {
    /// Start, ns since the Unix epoch.
    pub start_ns: u64,
    /// End, ns since the Unix epoch; `None` when unfinished.
    pub end_ns: Option<u64>,
    /// Outcome.
    pub status: Status,
}

/// What `show` reads of a session's tree.
#[derive(Debug, Clone, Default)]
pub struct SessionShape {
    /// Tool calls by `tool_use_id` (or `o<offset>` of the `PreToolUse` hook without one).
    pub tools: HashMap<String, ToolFacts>,
    /// Subagent id → the `tool_use_id` of the tool call it is nested under.
    pub agent_parent: HashMap<String, String>,
    /// Subagents that are not nested under a tool call.
    pub agents: HashSet<String>,
    /// The session's turns by the log offset of the record that starts each: their start,
    /// end and status.
    pub turns: HashMap<u64, ToolFacts>,
    /// Inline sidechain line uuid → its subagent id (`sidechain:<root uuid>`).
    pub sidechain_agent: HashMap<String, String>,
}

fn walk(node: &Node, parent: Option<&Node>, shape: &mut SessionShape) {
    match node.kind {
        NodeKind::Tool => {
            shape.tools.insert(
                node.id.clone(),
                ToolFacts {
                    start_ns: node.start_ns,
                    end_ns: node.end_ns,
                    status: node.status,
                },
            );
        }
        NodeKind::Subagent => {
            shape.agents.insert(node.id.clone());
            if let Some(p) = parent.filter(|p| p.kind == NodeKind::Tool) {
                shape.agent_parent.insert(node.id.clone(), p.id.clone());
            }
        }
        NodeKind::Turn => {
            if let Some(offset) = node.offset {
                shape.turns.insert(
                    offset,
                    ToolFacts {
                        start_ns: node.start_ns,
                        end_ns: node.end_ns,
                        status: node.status,
                    },
                );
            }
        }
        NodeKind::Session => {}
    }
    for child in &node.children {
        walk(child, Some(node), shape);
    }
}

/// The shape of `session` (an exact id) from an up-to-date database; `None` when the views do
/// not know the session.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn session_shape(
    db: &ViewsDb,
    prices: &PriceTable,
    session: &str,
) -> Result<Option<SessionShape>, ViewsError> {
    let Some(tree) = super::tree::build(db, prices, session)? else {
        return Ok(None);
    };
    let mut shape = SessionShape::default();
    walk(&tree, None, &mut shape);
    let path = db.path();
    let what = "reading sidechain links";
    let mut stmt = db
        .conn()
        .prepare("SELECT uuid, root FROM chains WHERE session = ?1")
        .sql(path, what)?;
    let rows = stmt
        .query_map([session], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .sql(path, what)?;
    for row in rows {
        let (uuid, root) = row.sql(path, what)?;
        shape.sidechain_agent.insert(uuid, root);
    }
    Ok(Some(shape))
}
