//! One task of the task forest ([`super::tasks`]) with what happened while it was in progress:
//! the rows of `/api/tasks/{id}` and `/api/tasks/{id}/tree`.
//!
//! A tool call belongs to the task in progress in its session when it started (the same rule
//! as tokens and cost: a Beads issue in progress wins over a to-do), or to one of its
//! descendants; the task's counts include its descendants'.

use std::collections::BTreeMap;

use serde::Serialize;

use super::pricing::PriceTable;
use super::tasks::{Intervals, TaskNode, in_progress_intervals, label, task_forest};
use super::{SqlContext, ViewsDb, ViewsError};

/// A task with the root it hangs under.
#[derive(Debug, Clone, Serialize)]
pub struct TaskPlace {
    /// The root's kind: `session` (to-dos and tasks) or `project` (Beads issues).
    pub root_kind: String,
    /// The root's id: the session id or the project directory.
    pub root_id: String,
    /// The task, with its children.
    pub task: TaskNode,
}

/// A task's direct children, counted by status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChildrenSummary {
    /// Direct children.
    pub total: u64,
    /// Direct children per status (`pending`, `in_progress`, `completed`, `open`, ...).
    pub by_status: BTreeMap<String, u64>,
    /// All descendants.
    pub descendants: u64,
}

/// The answer of `/api/tasks/{id}`: the task (without its children), its rolled-up tokens and
/// cost, the tools called while it (or a descendant) was in progress, and its children.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDetail {
    /// `session` or `project`.
    pub root_kind: String,
    /// The session id or project directory the task hangs under.
    pub root_id: String,
    /// The task; `children` is empty from [`task_detail`] (see `children_summary`); the
    /// service's `/api/tasks/{id}/tree` puts the descendants back.
    pub task: TaskNode,
    /// Tool calls started while the task was in progress, per tool name.
    pub tool_usage: BTreeMap<String, u64>,
    /// Tool calls in all.
    pub tool_calls: u64,
    /// Tool calls that failed.
    pub errors: u64,
    /// The task's children.
    pub children_summary: ChildrenSummary,
}

/// Every task (not session or project roots) whose id is `id`, optionally only under the
/// session `session`.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn find_tasks(
    db: &ViewsDb,
    prices: &PriceTable,
    id: &str,
    session: Option<&str>,
) -> Result<Vec<TaskPlace>, ViewsError> {
    let forest = task_forest(db, prices, session)?;
    let mut found = Vec::new();
    for root in forest.roots {
        let mut stack: Vec<&TaskNode> = root.children.iter().collect();
        while let Some(node) = stack.pop() {
            if node.id == id {
                found.push(TaskPlace {
                    root_kind: root.kind.clone(),
                    root_id: root.id.clone(),
                    task: node.clone(),
                });
            }
            stack.extend(node.children.iter());
        }
    }
    Ok(found)
}

/// The detail of the task at `place`: tool usage and errors while it or a descendant was in
/// progress, and its children by status.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn task_detail(db: &ViewsDb, place: TaskPlace) -> Result<TaskDetail, ViewsError> {
    let mut labels = Vec::new();
    let mut descendants = 0u64;
    let mut stack = vec![(&place.task, true)];
    while let Some((node, is_self)) = stack.pop() {
        descendants += u64::from(!is_self);
        labels.push(label(&node.kind, &node.id, Some(&node.title)));
        labels.push(label(&node.kind, &node.id, None));
        stack.extend(node.children.iter().map(|c| (c, false)));
    }
    let only = (place.root_kind == "session").then_some(place.root_id.as_str());
    let intervals = in_progress_intervals(db)?;
    let (tool_usage, errors) = tools_in(db, &intervals, only, &labels)?;
    let mut summary = ChildrenSummary {
        total: place.task.children.len() as u64,
        descendants,
        ..ChildrenSummary::default()
    };
    for child in &place.task.children {
        *summary.by_status.entry(child.status.clone()).or_default() += 1;
    }
    let mut task = place.task;
    task.children = Vec::new();
    Ok(TaskDetail {
        root_kind: place.root_kind,
        root_id: place.root_id,
        tool_calls: tool_usage.values().sum(),
        tool_usage,
        errors,
        task,
        children_summary: summary,
    })
}

/// Tool calls (per name) and failed ones whose start falls while a task labelled one of
/// `labels` was in progress, in `session` or in every session.
fn tools_in(
    db: &ViewsDb,
    intervals: &Intervals,
    session: Option<&str>,
    labels: &[String],
) -> Result<(BTreeMap<String, u64>, u64), ViewsError> {
    let path = db.path();
    let what = "reading tool spans";
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT session, name, coalesce(hook_start_ns, tx_start_ns), error FROM spans
             WHERE kind = 'tool' AND (?1 IS NULL OR session = ?1)",
        )
        .sql(path, what)?;
    let rows = stmt
        .query_map([session], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .sql(path, what)?;
    let mut usage: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = 0;
    for row in rows {
        let (s, name, start, error) = row.sql(path, what)?;
        let Some(start) = start.and_then(|t| u64::try_from(t).ok()) else {
            continue;
        };
        let Some(task) = intervals.task_at(&s, start) else {
            continue;
        };
        if labels.contains(&task) {
            *usage.entry(name.unwrap_or_else(|| "?".into())).or_default() += 1;
            errors += u64::from(error != 0);
        }
    }
    Ok((usage, errors))
}
