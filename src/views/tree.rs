//! A session as a tree: session → turns → tool calls → subagents → their tool calls. Shared by
//! `ctrace tree` and the OTLP/JSON export.

use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::pricing::{PriceTable, TokenCounts};
use super::{SqlContext, ViewsDb, ViewsError};
use crate::log::Store;

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
    /// Model(s) that answered this node's own responses (most tokens first).
    pub models: Vec<String>,
    /// Tokens of this node and its children, rolled up as `cost_usd` is (the session node sums
    /// its turns, a turn its tool calls and subagents).
    pub tokens: Tokens,
    /// Tokens of this node's own API responses only (what a span of it should carry, so that
    /// summing spans counts each response once).
    pub own_tokens: Tokens,
    /// Cost in USD of this node and its children; `None` when some usage is unpriced.
    pub cost_usd: Option<f64>,
    /// The log offset of the record that started the node (for `replay --at`).
    pub offset: Option<u64>,
    /// Child nodes in start order.
    pub children: Vec<Node>,
}

/// Turns whose prompts are equal and start within this long of each other are one turn seen
/// through both the hook and the transcript.
const SAME_TURN_NS: u64 = 30_000_000_000;

/// Builds the tree of one session from the views (bringing them up to date first). `None` when
/// the session is unknown. `session` may be a unique prefix of the id.
///
/// # Errors
/// [`ViewsError`].
pub fn session_tree(store: &Store, session: &str) -> Result<Option<Node>, ViewsError> {
    let (db, _) = super::access::open_current_or_memory(store)?;
    let prices = PriceTable::new(&store.config().pricing);
    build(&db, &prices, session)
}

/// The session id `prefix` names: itself when known, else the only session starting with it.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn resolve_session(db: &ViewsDb, prefix: &str) -> Result<Vec<String>, ViewsError> {
    let path = db.path();
    let exact: Option<String> = db
        .conn()
        .query_row(
            "SELECT session FROM sessions WHERE session = ?1",
            [prefix],
            |row| row.get(0),
        )
        .optional()
        .sql(path, "finding the session")?;
    if let Some(exact) = exact {
        return Ok(vec![exact]);
    }
    let mut stmt = db
        .conn()
        .prepare("SELECT session FROM sessions WHERE substr(session, 1, length(?1)) = ?1 LIMIT 5")
        .sql(path, "finding the session")?;
    let found = stmt
        .query_map([prefix], |row| row.get(0))
        .sql(path, "finding the session")?
        .collect::<Result<Vec<String>, _>>()
        .sql(path, "finding the session")?;
    Ok(found)
}

/// A turn of the session: `turns` rows of one prompt merged across sources.
#[derive(Debug, Clone)]
struct TurnRow {
    turn_id: String,
    /// ns since the Unix epoch.
    start_ns: u64,
    end_ns: Option<u64>,
    prompt: Option<String>,
    /// The log offset of the record that opened the turn.
    offset: u64,
}

/// The `sessions` row's times, ns since the Unix epoch.
#[derive(Debug, Clone, Copy)]
struct SessionTimes {
    first_ns: u64,
    last_ns: u64,
    ended_ns: Option<u64>,
}

/// One deduplicated API response's tokens (`usage` row).
#[derive(Debug)]
struct UsageRow {
    /// The subagent that made the request; `None` for the main agent.
    agent_id: Option<String>,
    ts_ns: u64,
    model: String,
    tokens: TokenCounts,
}

/// Where a span hangs in the tree.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// Under another span (a subagent under its tool call, a call under its subagent).
    Span(usize),
    /// Under a turn, by time.
    Turn(usize),
    /// Directly under the session.
    Root,
}

/// Tokens of usage rows by the node they belong to: turns by index, subagents by span index,
/// the session for the rest.
#[derive(Debug, Default)]
struct UsageByNode {
    turns: Vec<Own>,
    agents: HashMap<usize, Own>,
    session: Own,
}

#[derive(Debug)]
struct SpanRow {
    id: String,
    kind: String,
    name: Option<String>,
    agent_id: Option<String>,
    agent_type: Option<String>,
    parent: Option<String>,
    start: Option<u64>,
    end: Option<u64>,
    error: bool,
    error_text: Option<String>,
    detail: Option<String>,
    prompt_key: Option<String>,
    offset: u64,
}

#[derive(Debug, Default, Clone)]
struct Own {
    tokens: TokenCounts,
    by_model: HashMap<String, (TokenCounts, u64)>,
}

impl Own {
    fn add(&mut self, model: &str, tokens: &TokenCounts) {
        self.tokens.add(tokens);
        let entry = self.by_model.entry(model.to_owned()).or_default();
        entry.0.add(tokens);
        entry.1 += tokens.total();
    }
}

fn u(n: Option<i64>) -> Option<u64> {
    n.map(|v| u64::try_from(v).unwrap_or(0))
}

/// Builds the tree of `session` from an up-to-date database.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn build(db: &ViewsDb, prices: &PriceTable, session: &str) -> Result<Option<Node>, ViewsError> {
    let found = resolve_session(db, session)?;
    let [session] = found.as_slice() else {
        return Ok(None);
    };
    let times = read_session_times(db, session)?;
    let turns = read_turns(db, session)?;
    let spans = read_spans(db, session)?;
    let usage = read_usage(db, session)?;
    let index_of = |kind: &str| -> HashMap<String, usize> {
        spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == kind)
            .map(|(i, s)| (s.id.clone(), i))
            .collect()
    };
    let subagents = index_of("subagent");
    let tools = index_of("tool");
    let turn_of =
        |ts: u64| -> Option<usize> { turns.partition_point(|t| t.start_ns <= ts).checked_sub(1) };
    let owners = attribute_usage(&usage, &subagents, turns.len(), &turn_of);
    let places = place_spans(&spans, &subagents, &tools, &turn_of);
    // Children lists by parent.
    let mut span_children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut turn_children: Vec<Vec<usize>> = vec![Vec::new(); turns.len()];
    let mut root_children: Vec<usize> = Vec::new();
    for (i, place) in places.iter().enumerate() {
        match *place {
            Place::Span(p) if p != i => span_children[p].push(i),
            Place::Span(_) | Place::Root => root_children.push(i),
            Place::Turn(t) => turn_children[t].push(i),
        }
    }
    let mut visiting = vec![false; spans.len()];
    let mut make = |i: usize| {
        span_node(
            i,
            None,
            &spans,
            &span_children,
            &owners.agents,
            prices,
            &mut visiting,
        )
    };
    let mut children: Vec<Node> = Vec::new();
    for (t, turn) in turns.iter().enumerate() {
        let kids: Vec<Node> = turn_children[t].iter().filter_map(|&i| make(i)).collect();
        let last_usage = usage
            .iter()
            .filter(|x| turn_of(x.ts_ns) == Some(t))
            .map(|x| x.ts_ns)
            .max();
        let next_start = turns.get(t + 1).map(|n| n.start_ns);
        children.push(turn_node(
            turn,
            kids,
            last_usage,
            next_start,
            &owners.turns[t],
            prices,
        ));
    }
    children.extend(root_children.iter().filter_map(|&i| make(i)));
    children.sort_by_key(|n| n.start_ns);
    let status =
        if times.ended_ns.is_some() || children.last().is_some_and(|c| c.status == Status::Ok) {
            Status::Ok
        } else {
            Status::Unfinished
        };
    let root = finish(
        Node {
            kind: NodeKind::Session,
            id: session.clone(),
            name: session.clone(),
            start_ns: times.first_ns,
            end_ns: Some(times.ended_ns.unwrap_or(times.last_ns)),
            status,
            error: None,
            models: Vec::new(),
            tokens: Tokens::default(),
            own_tokens: Tokens::default(),
            cost_usd: None,
            offset: None,
            children,
        },
        &owners.session,
        prices,
    );
    Ok(Some(root))
}

fn read_session_times(db: &ViewsDb, session: &str) -> Result<SessionTimes, ViewsError> {
    db.conn()
        .query_row(
            "SELECT first_ns, last_ns, ended_ns FROM sessions WHERE session = ?1",
            [session],
            |row| {
                Ok(SessionTimes {
                    first_ns: u(row.get(0)?).unwrap_or(0),
                    last_ns: u(row.get(1)?).unwrap_or(0),
                    ended_ns: u(row.get(2)?),
                })
            },
        )
        .sql(db.path(), "reading the session")
}

/// The session's turns in start order, rows of the same prompt less than
/// [`SAME_TURN_NS`] apart (one turn seen by hooks and by the transcript) merged.
fn read_turns(db: &ViewsDb, session: &str) -> Result<Vec<TurnRow>, ViewsError> {
    let path = db.path();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT turn_id, start_ns, end_ns, prompt, offset FROM turns
             WHERE session = ?1 ORDER BY start_ns",
        )
        .sql(path, "reading turns")?;
    let rows: Vec<TurnRow> = stmt
        .query_map([session], |row| {
            Ok(TurnRow {
                turn_id: row.get(0)?,
                start_ns: u(row.get(1)?).unwrap_or(0),
                end_ns: u(row.get(2)?),
                prompt: row.get(3)?,
                offset: u(row.get(4)?).unwrap_or(0),
            })
        })
        .sql(path, "reading turns")?
        .collect::<Result<_, _>>()
        .sql(path, "reading turns")?;
    let mut turns: Vec<TurnRow> = Vec::new();
    for t in rows {
        if let Some(last) = turns.last_mut()
            && t.start_ns.saturating_sub(last.start_ns) <= SAME_TURN_NS
            && t.prompt == last.prompt
        {
            last.end_ns = match (last.end_ns, t.end_ns) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            continue;
        }
        turns.push(t);
    }
    Ok(turns)
}

/// The session's spans (tool calls and subagents), by start time (unknown last), then offset.
fn read_spans(db: &ViewsDb, session: &str) -> Result<Vec<SpanRow>, ViewsError> {
    let path = db.path();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT span_id, kind, name, agent_id, agent_type, parent_tool_use_id,
                coalesce(hook_start_ns, tx_start_ns, arrival_start_ns),
                coalesce(hook_end_ns, tx_end_ns, arrival_end_ns), error,
                error_text, detail, offset, prompt_key
             FROM spans WHERE session = ?1",
        )
        .sql(path, "reading spans")?;
    let mut spans: Vec<SpanRow> = stmt
        .query_map([session], |row| {
            Ok(SpanRow {
                id: row.get(0)?,
                kind: row.get(1)?,
                name: row.get(2)?,
                agent_id: row.get(3)?,
                agent_type: row.get(4)?,
                parent: row.get(5)?,
                start: u(row.get(6)?),
                end: u(row.get(7)?),
                error: row.get::<_, i64>(8)? != 0,
                error_text: row.get(9)?,
                detail: row.get(10)?,
                offset: u(row.get(11)?).unwrap_or(0),
                prompt_key: row.get(12)?,
            })
        })
        .sql(path, "reading spans")?
        .collect::<Result<_, _>>()
        .sql(path, "reading spans")?;
    spans.sort_by_key(|s| (s.start.unwrap_or(u64::MAX), s.offset));
    Ok(spans)
}

/// The session's usage rows in time order.
fn read_usage(db: &ViewsDb, session: &str) -> Result<Vec<UsageRow>, ViewsError> {
    let path = db.path();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT agent_id, ts_ns, model, input_tokens, output_tokens, cache_creation_tokens,
                cache_creation_1h_tokens, cache_read_tokens
             FROM usage WHERE session = ?1 ORDER BY ts_ns",
        )
        .sql(path, "reading usage")?;
    stmt.query_map([session], |row| {
        let n = |i: usize| u(row.get(i).ok()).unwrap_or(0);
        Ok(UsageRow {
            agent_id: row.get(0)?,
            ts_ns: u(row.get(1)?).unwrap_or(0),
            model: row.get(2)?,
            tokens: TokenCounts {
                input: n(3),
                output: n(4),
                cache_creation: n(5),
                cache_creation_1h: n(6),
                cache_read: n(7),
            },
        })
    })
    .sql(path, "reading usage")?
    .collect::<Result<_, _>>()
    .sql(path, "reading usage")
}

/// Each usage row's owner: the subagent that made it, else the turn it falls in by time, else
/// the session.
fn attribute_usage(
    usage: &[UsageRow],
    subagents: &HashMap<String, usize>,
    turns: usize,
    turn_of: &impl Fn(u64) -> Option<usize>,
) -> UsageByNode {
    let mut owners = UsageByNode {
        turns: vec![Own::default(); turns],
        ..UsageByNode::default()
    };
    for row in usage {
        match row.agent_id.as_ref().and_then(|a| subagents.get(a)) {
            Some(i) => owners
                .agents
                .entry(*i)
                .or_default()
                .add(&row.model, &row.tokens),
            None => match turn_of(row.ts_ns) {
                Some(t) => owners.turns[t].add(&row.model, &row.tokens),
                None => owners.session.add(&row.model, &row.tokens),
            },
        }
    }
    owners
}

/// Where each span goes: a subagent under the main agent's Task/Agent call that started it
/// (linked by `parent_tool_use_id`, else by prompt, else by the call whose time contains its
/// start); a call made inside a subagent under that subagent; anything else under the turn it
/// starts in, or the session.
fn place_spans(
    spans: &[SpanRow],
    subagents: &HashMap<String, usize>,
    tools: &HashMap<String, usize>,
    turn_of: &impl Fn(u64) -> Option<usize>,
) -> Vec<Place> {
    let main_agent_calls: Vec<usize> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.kind == "tool"
                && s.agent_id.is_none()
                && matches!(s.name.as_deref(), Some("Task" | "Agent"))
        })
        .map(|(i, _)| i)
        .collect();
    let by_time = |start: Option<u64>| match start.and_then(turn_of) {
        Some(t) => Place::Turn(t),
        None => Place::Root,
    };
    spans
        .iter()
        .map(|s| {
            if s.kind != "subagent" {
                return match s.agent_id.as_ref().and_then(|a| subagents.get(a)) {
                    Some(i) => Place::Span(*i),
                    None => by_time(s.start),
                };
            }
            let linked = s.parent.as_ref().and_then(|p| tools.get(p)).copied();
            let by_prompt = || {
                let key = s.prompt_key.as_ref()?;
                main_agent_calls
                    .iter()
                    .copied()
                    .find(|&i| spans[i].prompt_key.as_ref() == Some(key))
            };
            let contained = || {
                let start = s.start?;
                main_agent_calls
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let c = &spans[i];
                        c.start.is_some_and(|cs| cs <= start) && c.end.is_none_or(|ce| start <= ce)
                    })
                    .max_by_key(|&i| spans[i].start)
            };
            match linked.or_else(by_prompt).or_else(contained) {
                Some(i) => Place::Span(i),
                None => by_time(s.start),
            }
        })
        .collect()
}

/// A turn's node: it ends at its own end, else at its last activity (a child's end or a
/// response), else where the next turn starts; without an end or a next turn it is unfinished.
fn turn_node(
    turn: &TurnRow,
    children: Vec<Node>,
    last_usage: Option<u64>,
    next_start: Option<u64>,
    own: &Own,
    prices: &PriceTable,
) -> Node {
    let activity_end = children
        .iter()
        .filter_map(|k| k.end_ns)
        .chain(last_usage)
        .max();
    let status = if turn.end_ns.is_some() || next_start.is_some() {
        Status::Ok
    } else {
        Status::Unfinished
    };
    finish(
        Node {
            kind: NodeKind::Turn,
            id: turn.turn_id.clone(),
            name: turn
                .prompt
                .as_deref()
                .map(crate::claude::summary::prompt_title)
                .unwrap_or_default(),
            start_ns: turn.start_ns,
            end_ns: turn.end_ns.or(activity_end.or(next_start)),
            status,
            error: None,
            models: Vec::new(),
            tokens: Tokens::default(),
            own_tokens: Tokens::default(),
            cost_usd: None,
            offset: Some(turn.offset),
            children,
        },
        own,
        prices,
    )
}

fn span_node(
    i: usize,
    parent: Option<usize>,
    spans: &[SpanRow],
    span_children: &[Vec<usize>],
    agent_usage: &HashMap<usize, Own>,
    prices: &PriceTable,
    visiting: &mut [bool],
) -> Option<Node> {
    if visiting[i] {
        return None;
    }
    visiting[i] = true;
    let s = &spans[i];
    let mut kids: Vec<Node> = span_children[i]
        .iter()
        .filter_map(|&c| {
            span_node(
                c,
                Some(i),
                spans,
                span_children,
                agent_usage,
                prices,
                visiting,
            )
        })
        .collect();
    kids.sort_by_key(|n| n.start_ns);
    let (kind, name) = if s.kind == "subagent" {
        let parent_type = parent
            .map(|p| &spans[p])
            .filter(|p| p.kind == "tool")
            .and_then(|p| p.agent_type.clone());
        let name = s.agent_type.clone().or(parent_type).unwrap_or_else(|| {
            if s.id.starts_with("acompact") {
                "compact".to_owned()
            } else {
                "subagent".to_owned()
            }
        });
        (NodeKind::Subagent, name)
    } else {
        let name = s.name.clone().unwrap_or_else(|| "tool".to_owned());
        let name = match &s.detail {
            Some(d) if !d.is_empty() => format!("{name}: {d}"),
            _ => name,
        };
        (NodeKind::Tool, name)
    };
    let status = if s.error {
        Status::Error
    } else if s.end.is_some() {
        Status::Ok
    } else {
        Status::Unfinished
    };
    let start = s
        .start
        .or_else(|| kids.iter().map(|k| k.start_ns).min())
        .unwrap_or(0);
    let empty = Own::default();
    Some(finish(
        Node {
            kind,
            id: s.id.clone(),
            name,
            start_ns: start,
            end_ns: s.end,
            status,
            error: s.error_text.clone().filter(|_| s.error),
            models: Vec::new(),
            tokens: Tokens::default(),
            own_tokens: Tokens::default(),
            cost_usd: None,
            offset: Some(s.offset),
            children: kids,
        },
        agent_usage.get(&i).unwrap_or(&empty),
        prices,
    ))
}

/// Sets a node's own tokens and models, and its cost with its children's.
fn finish(mut node: Node, own: &Own, prices: &PriceTable) -> Node {
    node.own_tokens = Tokens {
        input: own.tokens.input,
        output: own.tokens.output,
        cache_creation: own.tokens.cache_creation,
        cache_read: own.tokens.cache_read,
    };
    node.tokens = node.own_tokens.clone();
    for child in &node.children {
        node.tokens.input += child.tokens.input;
        node.tokens.output += child.tokens.output;
        node.tokens.cache_creation += child.tokens.cache_creation;
        node.tokens.cache_read += child.tokens.cache_read;
    }
    let mut models: Vec<(&String, &(TokenCounts, u64))> = own.by_model.iter().collect();
    models.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(b.0)));
    node.models = models.iter().map(|(m, _)| (*m).clone()).collect();
    let mut cost = Some(0.0);
    for (model, (tokens, _)) in &own.by_model {
        cost = match (cost, prices.cost(model, tokens)) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    for child in &node.children {
        cost = match (cost, child.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    node.cost_usd = cost;
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn leaf(kind: NodeKind, id: &str, own: &Own, prices: &PriceTable) -> Node {
        finish(
            Node {
                kind,
                id: id.to_owned(),
                name: id.to_owned(),
                start_ns: 0,
                end_ns: Some(1),
                status: Status::Ok,
                error: None,
                models: Vec::new(),
                tokens: Tokens::default(),
                own_tokens: Tokens::default(),
                cost_usd: None,
                offset: None,
                children: Vec::new(),
            },
            own,
            prices,
        )
    }

    /// Issue 15 (fidelity): tokens roll up like cost, so the session node is not all zeros
    /// while its turns carry the tokens; each node keeps its own responses apart.
    #[test]
    fn tokens_roll_up_like_cost() {
        let prices = PriceTable::new(&Config::default().pricing);
        let usage = |model: &str, input: u64, output: u64| {
            let mut own = Own::default();
            own.add(
                model,
                &TokenCounts {
                    input,
                    output,
                    ..TokenCounts::default()
                },
            );
            own
        };
        let sub = leaf(
            NodeKind::Subagent,
            "a",
            &usage("claude-haiku-4-5", 10, 20),
            &prices,
        );
        let mut turn = leaf(
            NodeKind::Turn,
            "t",
            &usage("claude-opus-4-5", 100, 200),
            &prices,
        );
        turn.children = vec![sub];
        let turn = finish(turn, &usage("claude-opus-4-5", 100, 200), &prices);
        let mut session = leaf(NodeKind::Session, "s", &Own::default(), &prices);
        session.children = vec![turn];
        let session = finish(session, &Own::default(), &prices);

        let turn = &session.children[0];
        assert_eq!((turn.own_tokens.input, turn.own_tokens.output), (100, 200));
        assert_eq!((turn.tokens.input, turn.tokens.output), (110, 220));
        assert_eq!(turn.models, ["claude-opus-4-5"]);
        assert_eq!(session.own_tokens, Tokens::default());
        assert_eq!((session.tokens.input, session.tokens.output), (110, 220));
        let (Some(total), Some(part)) = (session.cost_usd, turn.children[0].cost_usd) else {
            panic!("priced models have a cost");
        };
        assert!(total > part && part > 0.0);
    }
}
