//! A session as a tree: session → turns → tool calls → subagents → their tool calls. Shared by
//! `ctrace tree` and the OTLP/JSON export.

use crate::log::Store;

use super::ViewsError;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The whole session (the root).
    Session,
    /// One turn: a user prompt up to the Stop that ends it.
    Turn,
    /// One tool call (Pre/Post/PostToolUseFailure paired by `tool_use_id`).
    Tool,
    /// A subagent started by a Task/Agent tool call.
    Subagent,
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Finished without error.
    Ok,
    /// Failed (tool error, PostToolUseFailure, interrupted).
    Error,
    /// No end seen (still running, or the session was cut off).
    Unfinished,
}

/// Token counts, summed over the deduplicated API responses under a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tokens {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache-write tokens (5-minute and 1-hour together).
    pub cache_creation: u64,
    /// Cache-read tokens.
    pub cache_read: u64,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Stable id: session id, prompt id / first uuid of the turn, `tool_use_id`, `agent_id`.
    pub id: String,
    /// Display name: the prompt's first line, the tool name, the subagent type.
    pub name: String,
    /// Start, ns since the Unix epoch.
    pub start_ns: u64,
    /// End, ns since the Unix epoch; `None` when unfinished.
    pub end_ns: Option<u64>,
    /// Outcome.
    pub status: Status,
    /// Error text, when failed.
    pub error: Option<String>,
    /// Model(s) that answered under this node (most tokens first).
    pub models: Vec<String>,
    /// Tokens of this node's own API responses (not its children's).
    pub tokens: Tokens,
    /// Cost in USD of this node and its children; `None` when some usage is unpriced.
    pub cost_usd: Option<f64>,
    /// The log offset of the record that started the node (for `replay --at`).
    pub offset: Option<u64>,
    /// Child nodes in start order.
    pub children: Vec<Node>,
}

/// Builds the tree of one session from the views (bringing them up to date first). `None` when
/// the session is unknown.
///
/// # Errors
/// [`ViewsError`].
pub fn session_tree(store: &Store, session: &str) -> Result<Option<Node>, ViewsError> {
    let _ = (store, session);
    Err(ViewsError::NotBuilt)
}
