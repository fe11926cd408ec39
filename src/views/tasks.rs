//! Tasks: to-dos (TodoWrite, TaskCreate/TaskUpdate) and Beads issues (`.beads/issues.jsonl`
//! under a session's working directory, and `bd create/update/close` commands seen in Bash
//! tool calls), with status, time in progress and the cost of the API responses that came
//! while each was in progress.
//!
//! Attribution rule: a response (or span) belongs to the Beads issue in progress in its session
//! at its time (the one that started last); if none, to the to-do in progress; else to no task.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::pricing::{PriceTable, TokenCounts};
use super::tree::Tokens;
use super::{SqlContext, ViewsDb, ViewsError};

/// RFC 3339 UTC to the minute (`2026-02-11T22:00Z`).
pub(crate) fn format_ts_minutes(ns: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{}Z", &text[..text.len().min(16)])
}

/// Periods during which a task was in progress, per session.
#[derive(Debug, Default, Clone)]
pub(crate) struct Intervals {
    by_session: HashMap<String, Vec<Interval>>,
}

#[derive(Debug, Clone)]
struct Interval {
    start: u64,
    end: u64,
    beads: bool,
    label: String,
}

impl Intervals {
    /// The label (`beads:<id>` or `todo:<title>`) of the task in progress in `session` at `ts`.
    pub(crate) fn task_at(&self, session: &str, ts: u64) -> Option<String> {
        let list = self.by_session.get(session)?;
        let pick = |beads: bool| {
            list.iter()
                .filter(|i| i.beads == beads && i.start <= ts && ts < i.end)
                .max_by_key(|i| i.start)
                .map(|i| i.label.clone())
        };
        pick(true).or_else(|| pick(false))
    }
}

pub(crate) fn label(kind: &str, id: &str, title: Option<&str>) -> String {
    match kind {
        "beads" => format!("beads:{id}"),
        "task" => format!("task:{id} {}", title.unwrap_or(""))
            .trim()
            .to_owned(),
        _ => format!("todo:{}", title.unwrap_or(id)),
    }
}

/// In-progress periods from the `task_events` view.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub(crate) fn in_progress_intervals(db: &ViewsDb) -> Result<Intervals, ViewsError> {
    let path = db.path();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT e.session, e.kind, e.task_id, e.ts_ns, e.status, t.title
             FROM task_events e LEFT JOIN tasks t
                ON t.session = e.session AND t.kind = e.kind AND t.task_id = e.task_id
             ORDER BY e.session, e.kind, e.task_id, e.ts_ns",
        )
        .sql(path, "reading task events")?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })
        .sql(path, "reading task events")?;
    let mut out = Intervals::default();
    let mut open: Option<(String, String, String, u64, Option<String>)> = None;
    let close = |out: &mut Intervals, o: (String, String, String, u64, Option<String>), end| {
        let (session, kind, id, start, title) = o;
        out.by_session.entry(session).or_default().push(Interval {
            start,
            end,
            beads: kind == "beads",
            label: label(&kind, &id, title.as_deref()),
        });
    };
    for row in rows {
        let (session, kind, id, ts, status, title) = row.sql(path, "reading task events")?;
        let same = open
            .as_ref()
            .is_some_and(|o| o.0 == session && o.1 == kind && o.2 == id);
        if !same && let Some(o) = open.take() {
            close(&mut out, o, u64::MAX);
        }
        if status == "in_progress" {
            if open.is_none() {
                open = Some((session, kind, id, ts, title));
            }
        } else if let Some(o) = open.take() {
            close(&mut out, o, ts);
        }
    }
    if let Some(o) = open.take() {
        close(&mut out, o, u64::MAX);
    }
    Ok(out)
}

/// One Beads issue read from `.beads/issues.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BeadsIssue {
    /// Issue id (`bd-12`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Status (`open`, `in_progress`, `blocked`, `closed`).
    pub status: String,
    /// Parent issue (a `parent-child` dependency).
    pub parent: Option<String>,
    /// `created_at`, ns since the epoch.
    pub created_ns: Option<u64>,
    /// `updated_at`, ns since the epoch.
    pub updated_ns: Option<u64>,
}

/// A line of an issues file that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeadsProblem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

fn ts_field(value: &Value, key: &str) -> Option<u64> {
    value
        .get(key)
        .and_then(Value::as_str)
        .and_then(crate::claude::parse_timestamp)
}

/// Reads `<dir>/.beads/issues.jsonl`: issues, and the lines that are not issues. A missing file
/// gives nothing; an unreadable one is one problem.
pub(crate) fn read_beads(dir: &Path) -> (Vec<BeadsIssue>, Vec<BeadsProblem>) {
    let file = dir.join(".beads").join("issues.jsonl");
    let Ok(bytes) = std::fs::read(&file) else {
        return (Vec::new(), Vec::new());
    };
    let mut issues = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let problem = |reason| BeadsProblem {
            file: file.clone(),
            line: i + 1,
            reason,
        };
        let value: Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            Err(_) => {
                problems.push(problem("not valid JSON"));
                continue;
            }
        };
        let Some(id) = value.get("id").and_then(Value::as_str) else {
            problems.push(problem("no string `id`"));
            continue;
        };
        let parent = value
            .get("dependencies")
            .and_then(Value::as_array)
            .and_then(|deps| {
                deps.iter().find_map(|d| {
                    (d.get("type").and_then(Value::as_str) == Some("parent-child")
                        && d.get("issue_id")
                            .and_then(Value::as_str)
                            .is_none_or(|s| s == id))
                    .then(|| d.get("depends_on_id").and_then(Value::as_str))
                    .flatten()
                    .map(str::to_owned)
                })
            });
        issues.push(BeadsIssue {
            id: id.to_owned(),
            title: value
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            status: value
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("open")
                .to_owned(),
            parent,
            created_ns: ts_field(&value, "created_at"),
            updated_ns: ts_field(&value, "updated_at"),
        });
    }
    (issues, problems)
}

/// One node of the task tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskNode {
    /// `session`, `project`, `todo`, `task` or `beads`.
    pub kind: String,
    /// Id: session id, project directory, to-do text or id, Beads id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Current status.
    pub status: String,
    /// First seen, ns since the epoch.
    pub created_ns: Option<u64>,
    /// Last status change, ns since the epoch.
    pub updated_ns: Option<u64>,
    /// Time spent in progress, ns (sum over in-progress periods that ended).
    pub in_progress_ns: u64,
    /// Tokens of the responses attributed to this node and its children.
    pub tokens: Tokens,
    /// USD of this node and its children; `None` when some usage is unpriced.
    pub cost_usd: Option<f64>,
    /// Children.
    pub children: Vec<TaskNode>,
}

/// The task forest: per session its to-dos, per project its Beads issues.
#[derive(Debug, Clone, Serialize)]
pub struct TaskForest {
    /// Root nodes (`session` and `project` kinds).
    pub roots: Vec<TaskNode>,
    /// Unreadable lines of `.beads/issues.jsonl` files.
    pub problems: Vec<BeadsProblem>,
}

#[derive(Debug, Default, Clone)]
struct Acc {
    tokens: Tokens,
    cost: f64,
    unpriced: bool,
}

impl Acc {
    fn add(&mut self, other: &Acc) {
        self.tokens.input += other.tokens.input;
        self.tokens.output += other.tokens.output;
        self.tokens.cache_creation += other.tokens.cache_creation;
        self.tokens.cache_read += other.tokens.cache_read;
        self.cost += other.cost;
        self.unpriced |= other.unpriced;
    }
}

/// A `tasks` row.
#[derive(Debug)]
struct TaskRow {
    session: String,
    /// `task` (TaskCreate/TaskUpdate), `todo` (TodoWrite) or `beads`.
    kind: String,
    task_id: String,
    title: Option<String>,
    status: String,
    parent: Option<String>,
    /// ns since the Unix epoch.
    created_ns: u64,
    updated_ns: u64,
}

/// Tokens and cost per (session, task label), with in-progress time per the same key.
type ByTask<T> = HashMap<(String, String), T>;

/// Builds the task forest, optionally for one session.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn task_forest(
    db: &ViewsDb,
    prices: &PriceTable,
    session: Option<&str>,
) -> Result<TaskForest, ViewsError> {
    let intervals = in_progress_intervals(db)?;
    let acc = task_costs(db, prices, session, &intervals)?;
    // In-progress time per (session, label).
    let mut progress: ByTask<u64> = HashMap::new();
    for (s, list) in &intervals.by_session {
        for i in list {
            if i.end != u64::MAX {
                *progress.entry((s.clone(), i.label.clone())).or_default() += i.end - i.start;
            }
        }
    }
    let rows = read_task_rows(db, session)?;
    let (beads_rows, todo_rows): (Vec<&TaskRow>, Vec<&TaskRow>) =
        rows.iter().partition(|row| row.kind == "beads");
    let mut roots = session_roots(&todo_rows, &acc, &progress);
    let mut problems = Vec::new();
    // Beads: per project, issues from the file merged with those seen in commands.
    let projects = read_projects(db, session)?;
    let mut beads_by_session: BTreeMap<String, Vec<&TaskRow>> = BTreeMap::new();
    for row in beads_rows {
        beads_by_session
            .entry(row.session.clone())
            .or_default()
            .push(row);
    }
    let mut beads_projects: BTreeMap<String, Vec<String>> = projects.clone();
    for s in beads_by_session.keys() {
        if !projects.values().any(|v| v.contains(s)) {
            beads_projects
                .entry(format!("(session {s})"))
                .or_default()
                .push(s.clone());
        }
    }
    for (project, sessions) in beads_projects {
        let (root, file_problems) =
            beads_root(&project, &sessions, &beads_by_session, &acc, &progress);
        problems.extend(file_problems);
        roots.extend(root);
    }
    Ok(TaskForest { roots, problems })
}

/// A task node without children, its tokens and cost from `acc` (`cost_usd` is `None` when
/// some of its usage had no price).
fn task_node(kind: &str, id: &str, title: &str, status: &str, acc: Option<&Acc>) -> TaskNode {
    TaskNode {
        kind: kind.to_owned(),
        id: id.to_owned(),
        title: title.to_owned(),
        status: status.to_owned(),
        created_ns: None,
        updated_ns: None,
        in_progress_ns: 0,
        tokens: acc.map(|a| a.tokens.clone()).unwrap_or_default(),
        cost_usd: acc.map_or(Some(0.0), |a| (!a.unpriced).then_some(a.cost)),
        children: Vec::new(),
    }
}

/// Tokens and cost of every usage row made while a task was in progress, per (session, label).
fn task_costs(
    db: &ViewsDb,
    prices: &PriceTable,
    session: Option<&str>,
    intervals: &Intervals,
) -> Result<ByTask<Acc>, ViewsError> {
    let path = db.path();
    let mut acc: ByTask<Acc> = HashMap::new();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT session, model, ts_ns, input_tokens, output_tokens,
                cache_creation_tokens, cache_creation_1h_tokens, cache_read_tokens
             FROM usage WHERE ?1 IS NULL OR session = ?1",
        )
        .sql(path, "reading usage")?;
    let rows = stmt
        .query_map([session], |row| {
            let n = |i: usize| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            Ok((
                row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                row.get::<_, String>(1)?,
                n(2)?,
                TokenCounts {
                    input: n(3)?,
                    output: n(4)?,
                    cache_creation: n(5)?,
                    cache_creation_1h: n(6)?,
                    cache_read: n(7)?,
                },
            ))
        })
        .sql(path, "reading usage")?;
    for row in rows {
        let (s, model, ts, tokens) = row.sql(path, "reading usage")?;
        let Some(label) = intervals.task_at(&s, ts) else {
            continue;
        };
        let cost = prices.cost(&model, &tokens);
        acc.entry((s, label)).or_default().add(&Acc {
            tokens: Tokens {
                input: tokens.input,
                output: tokens.output,
                cache_creation: tokens.cache_creation,
                cache_read: tokens.cache_read,
            },
            cost: cost.unwrap_or(0.0),
            unpriced: cost.is_none(),
        });
    }
    Ok(acc)
}

fn read_task_rows(db: &ViewsDb, session: Option<&str>) -> Result<Vec<TaskRow>, ViewsError> {
    let path = db.path();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT t.session, t.kind, t.task_id, t.title, t.status, t.parent_id, t.created_ns,
                t.updated_ns
             FROM tasks t WHERE ?1 IS NULL OR t.session = ?1
             ORDER BY t.session, t.created_ns",
        )
        .sql(path, "reading tasks")?;
    stmt.query_map([session], |row| {
        Ok(TaskRow {
            session: row.get(0)?,
            kind: row.get(1)?,
            task_id: row.get(2)?,
            title: row.get(3)?,
            status: row.get(4)?,
            parent: row.get(5)?,
            created_ns: u64::try_from(row.get::<_, i64>(6)?).unwrap_or(0),
            updated_ns: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
        })
    })
    .sql(path, "reading tasks")?
    .collect::<Result<_, _>>()
    .sql(path, "reading tasks")
}

/// The sessions of each project (for the projects' Beads files).
fn read_projects(
    db: &ViewsDb,
    session: Option<&str>,
) -> Result<BTreeMap<String, Vec<String>>, ViewsError> {
    let path = db.path();
    let mut projects: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stmt = db
        .conn()
        .prepare("SELECT session, project FROM sessions WHERE ?1 IS NULL OR session = ?1")
        .sql(path, "reading sessions")?;
    let rows = stmt
        .query_map([session], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .sql(path, "reading sessions")?;
    for row in rows {
        let (s, project) = row.sql(path, "reading sessions")?;
        if let Some(project) = project {
            projects.entry(project).or_default().push(s);
        }
    }
    Ok(projects)
}

/// One `session` root per session with to-dos or tasks, its children in creation order.
fn session_roots(rows: &[&TaskRow], acc: &ByTask<Acc>, progress: &ByTask<u64>) -> Vec<TaskNode> {
    let mut by_session: BTreeMap<String, Vec<TaskNode>> = BTreeMap::new();
    for row in rows {
        let key = (
            row.session.clone(),
            label(&row.kind, &row.task_id, row.title.as_deref()),
        );
        let mut n = task_node(
            &row.kind,
            &row.task_id,
            row.title.as_deref().unwrap_or(&row.task_id),
            &row.status,
            acc.get(&key),
        );
        n.created_ns = Some(row.created_ns);
        n.updated_ns = Some(row.updated_ns);
        n.in_progress_ns = progress.get(&key).copied().unwrap_or(0);
        by_session.entry(row.session.clone()).or_default().push(n);
    }
    by_session
        .into_iter()
        .map(|(s, children)| {
            let mut root = task_node("session", &s, &s, "", None);
            root.children = children;
            roll_up(&mut root);
            root
        })
        .collect()
}

/// The `project` root of one project's Beads issues: those of its `.beads/issues.jsonl`
/// merged with those its sessions' commands created or changed (a command's status wins over
/// the file's only for issues the file does not have), with their tokens, cost and
/// in-progress time; `None` when there is no issue.
fn beads_root(
    project: &str,
    sessions: &[String],
    rows: &BTreeMap<String, Vec<&TaskRow>>,
    acc: &ByTask<Acc>,
    progress: &ByTask<u64>,
) -> (Option<TaskNode>, Vec<BeadsProblem>) {
    let (file_issues, problems) = read_beads(Path::new(project));
    let mut issues: BTreeMap<String, TaskNode> = BTreeMap::new();
    let mut parents: HashMap<String, String> = HashMap::new();
    for issue in &file_issues {
        let mut n = task_node("beads", &issue.id, &issue.title, &issue.status, None);
        n.created_ns = issue.created_ns;
        n.updated_ns = issue.updated_ns;
        if let Some(p) = &issue.parent {
            parents.insert(issue.id.clone(), p.clone());
        }
        issues.insert(issue.id.clone(), n);
    }
    for s in sessions {
        for row in rows.get(s).into_iter().flatten() {
            let id = &row.task_id;
            let n = issues.entry(id.clone()).or_insert_with(|| {
                task_node(
                    "beads",
                    id,
                    row.title.as_deref().unwrap_or(id),
                    &row.status,
                    None,
                )
            });
            if file_issues.iter().all(|i| &i.id != id) {
                n.status.clone_from(&row.status);
            }
            n.created_ns = Some(
                n.created_ns
                    .map_or(row.created_ns, |c| c.min(row.created_ns)),
            );
            n.updated_ns = Some(
                n.updated_ns
                    .map_or(row.updated_ns, |u| u.max(row.updated_ns)),
            );
            if let Some(p) = &row.parent {
                parents.entry(id.clone()).or_insert_with(|| p.clone());
            }
        }
        for n in issues.values_mut() {
            let key = (s.clone(), format!("beads:{}", n.id));
            if let Some(a) = acc.get(&key) {
                let mut own = Acc {
                    tokens: n.tokens.clone(),
                    cost: n.cost_usd.unwrap_or(0.0),
                    unpriced: n.cost_usd.is_none(),
                };
                own.add(a);
                n.tokens = own.tokens;
                n.cost_usd = (!own.unpriced).then_some(own.cost);
            }
            n.in_progress_ns += progress.get(&key).copied().unwrap_or(0);
        }
    }
    if issues.is_empty() {
        return (None, problems);
    }
    let mut root = task_node("project", project, project, "", None);
    root.children = nest(issues, &parents);
    roll_up(&mut root);
    (Some(root), problems)
}

fn nest(
    mut issues: BTreeMap<String, TaskNode>,
    parents: &HashMap<String, String>,
) -> Vec<TaskNode> {
    fn take(
        id: &str,
        issues: &mut BTreeMap<String, TaskNode>,
        children_of: &HashMap<String, Vec<String>>,
        depth: usize,
    ) -> Option<TaskNode> {
        let mut n = issues.remove(id)?;
        if depth < 64 {
            for child in children_of.get(id).into_iter().flatten() {
                if let Some(c) = take(child, issues, children_of, depth + 1) {
                    n.children.push(c);
                }
            }
        }
        Some(n)
    }
    let mut children_of: HashMap<String, Vec<String>> = HashMap::new();
    for (child, parent) in parents {
        if issues.contains_key(parent) && issues.contains_key(child) && child != parent {
            children_of
                .entry(parent.clone())
                .or_default()
                .push(child.clone());
        }
    }
    for list in children_of.values_mut() {
        list.sort();
    }
    let tops: Vec<String> = issues
        .keys()
        .filter(|id| {
            parents
                .get(*id)
                .is_none_or(|p| !issues.contains_key(p) || p == *id)
        })
        .cloned()
        .collect();
    let mut out = Vec::new();
    for id in tops {
        if let Some(n) = take(&id, &mut issues, &children_of, 0) {
            out.push(n);
        }
    }
    // Cycles: whatever is left goes to the top.
    let rest: Vec<String> = issues.keys().cloned().collect();
    for id in rest {
        if let Some(n) = take(&id, &mut issues, &children_of, 0) {
            out.push(n);
        }
    }
    out
}

fn roll_up(node: &mut TaskNode) {
    for child in &mut node.children {
        roll_up(child);
        node.tokens.input += child.tokens.input;
        node.tokens.output += child.tokens.output;
        node.tokens.cache_creation += child.tokens.cache_creation;
        node.tokens.cache_read += child.tokens.cache_read;
        node.cost_usd = match (node.cost_usd, child.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beads_file_with_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".beads")).unwrap();
        std::fs::write(
            dir.path().join(".beads/issues.jsonl"),
            "{\"id\":\"bd-1\",\"title\":\"Epic\",\"status\":\"open\"}\n\
             not json\n\
             {\"title\":\"no id\"}\n\
             {\"id\":\"bd-2\",\"title\":\"Child\",\"status\":\"in_progress\",\"dependencies\":[{\"issue_id\":\"bd-2\",\"depends_on_id\":\"bd-1\",\"type\":\"parent-child\"}]}\n",
        )
        .unwrap();
        let (issues, problems) = read_beads(dir.path());
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[1].parent.as_deref(), Some("bd-1"));
        assert_eq!(
            problems.iter().map(|p| p.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let mut map = BTreeMap::new();
        let mut parents = HashMap::new();
        for i in &issues {
            if let Some(p) = &i.parent {
                parents.insert(i.id.clone(), p.clone());
            }
            map.insert(
                i.id.clone(),
                TaskNode {
                    kind: "beads".into(),
                    id: i.id.clone(),
                    title: i.title.clone(),
                    status: i.status.clone(),
                    created_ns: None,
                    updated_ns: None,
                    in_progress_ns: 0,
                    tokens: Tokens::default(),
                    cost_usd: Some(0.0),
                    children: Vec::new(),
                },
            );
        }
        let tops = nest(map, &parents);
        assert_eq!(tops.len(), 1);
        assert_eq!(tops[0].children[0].id, "bd-2");
    }
}
