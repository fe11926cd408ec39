//! Task tracking in tool calls: Beads commands in Bash command lines and TodoWrite /
//! TaskCreate / TaskUpdate inputs.

use serde_json::Value;

use super::first_line;
use crate::views::shell::shell_words;

/// One status change of a to-do or Beads issue, found in a tool call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskChange {
    /// `todo`, `task` or `beads`.
    pub kind: &'static str,
    /// Id within the session (the to-do text for TodoWrite items without id).
    pub task_id: String,
    /// Title, when the call names one.
    pub title: Option<String>,
    /// New status, normalized to `pending`, `in_progress`, `completed`, `deleted`, `open`,
    /// `blocked` or `closed`.
    pub status: String,
    /// Parent issue (Beads `--parent`).
    pub parent: Option<String>,
}

/// Whether `word` looks like a Beads issue id (`bd-12`, `spotter-dov.1`): letters, digits,
/// `.`, `_` and `-`, with a `-` after the first character.
fn is_issue_id(word: &str) -> bool {
    word.len() > 2
        && word.starts_with(|c: char| c.is_ascii_alphanumeric())
        && word[1..].contains('-')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Beads commands in a Bash command line: `bd update ID --status S`, `bd close ID...`,
/// `bd reopen ID...`, `bd start ID`. (`bd create` gets its id from the output, see
/// [`beads_created`].)
pub(crate) fn beads_changes(command: &str) -> Vec<TaskChange> {
    let words = shell_words(command);
    let mut changes = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let is_bd = words[i] == "bd" || words[i].ends_with("/bd");
        if !is_bd || i + 1 >= words.len() {
            i += 1;
            continue;
        }
        let verb = words[i + 1].as_str();
        let mut j = i + 2;
        let mut ids = Vec::new();
        let mut status = None;
        let mut title = None;
        let mut parent = None;
        while j < words.len() && ![";", "&", "|"].contains(&words[j].as_str()) {
            let w = &words[j];
            if let Some(v) = w.strip_prefix("--status=") {
                status = Some(v.to_owned());
            } else if w == "--status" || w == "-s" {
                status = words.get(j + 1).cloned();
                j += 1;
            } else if let Some(v) = w.strip_prefix("--title=") {
                title = Some(v.to_owned());
            } else if w == "--title" {
                title = words.get(j + 1).cloned();
                j += 1;
            } else if let Some(v) = w.strip_prefix("--parent=") {
                parent = Some(v.to_owned());
            } else if w == "--parent" {
                parent = words.get(j + 1).cloned();
                j += 1;
            } else if w.starts_with('-') {
                // A flag with a value we do not need: skip the value when it is separate.
                if !w.contains('=')
                    && matches!(
                        w.as_str(),
                        "--reason"
                            | "-r"
                            | "--priority"
                            | "-p"
                            | "--assignee"
                            | "-a"
                            | "--description"
                            | "-d"
                            | "--type"
                            | "-t"
                            | "--notes"
                    )
                {
                    j += 1;
                }
            } else if is_issue_id(w) {
                ids.push(w.clone());
            }
            j += 1;
        }
        let new_status = match verb {
            "close" => Some("closed".to_owned()),
            "reopen" => Some("open".to_owned()),
            "start" => Some("in_progress".to_owned()),
            "update" => status,
            _ => None,
        };
        if let Some(status) = new_status {
            for id in ids {
                changes.push(TaskChange {
                    kind: "beads",
                    task_id: id,
                    title: title.clone(),
                    status: status.clone(),
                    parent: parent.clone(),
                });
            }
        }
        i = j;
    }
    changes
}

/// `bd create "title" ...` in `command` with its output `output` ("Created issue: bd-12"):
/// the new issue.
pub(crate) fn beads_created(command: &str, output: &str) -> Option<TaskChange> {
    let words = shell_words(command);
    let at = words
        .windows(2)
        .position(|w| (w[0] == "bd" || w[0].ends_with("/bd")) && w[1] == "create")?;
    let mut title = None;
    let mut parent = None;
    let mut j = at + 2;
    while j < words.len() && ![";", "&", "|"].contains(&words[j].as_str()) {
        let w = &words[j];
        if let Some(v) = w.strip_prefix("--title=") {
            title = Some(v.to_owned());
        } else if w == "--title" {
            title = words.get(j + 1).cloned();
            j += 1;
        } else if let Some(v) = w.strip_prefix("--parent=") {
            parent = Some(v.to_owned());
        } else if w == "--parent" {
            parent = words.get(j + 1).cloned();
            j += 1;
        } else if w.starts_with('-') {
            if !w.contains('=') {
                j += 1;
            }
        } else if title.is_none() {
            title = Some(w.clone());
        }
        j += 1;
    }
    let marker = "Created issue:";
    let rest = &output[output.find(marker)? + marker.len()..];
    let id = rest
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '.');
    (!id.is_empty()).then(|| TaskChange {
        kind: "beads",
        task_id: id.to_owned(),
        title,
        status: "open".to_owned(),
        parent,
    })
}

/// To-do changes of a TodoWrite / TaskUpdate call's input (TaskCreate needs its result).
pub(crate) fn todo_changes(name: &str, input: &Value) -> Vec<TaskChange> {
    match name {
        "TodoWrite" => input
            .get("todos")
            .and_then(Value::as_array)
            .map(|todos| {
                todos
                    .iter()
                    .filter_map(|todo| {
                        let content = todo.get("content").and_then(Value::as_str)?;
                        let id = todo
                            .get("id")
                            .and_then(|v| {
                                v.as_str()
                                    .map(str::to_owned)
                                    .or_else(|| v.as_u64().map(|n| n.to_string()))
                            })
                            .unwrap_or_else(|| first_line(content));
                        Some(TaskChange {
                            kind: "todo",
                            task_id: id,
                            title: Some(first_line(content)),
                            status: todo
                                .get("status")
                                .and_then(Value::as_str)
                                .unwrap_or("pending")
                                .to_owned(),
                            parent: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "TaskUpdate" => {
            let id = input.get("taskId").and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            });
            let status = input.get("status").and_then(Value::as_str);
            match (id, status) {
                (Some(id), Some(status)) => vec![TaskChange {
                    kind: "task",
                    task_id: id,
                    title: input.get("subject").and_then(Value::as_str).map(first_line),
                    status: status.to_owned(),
                    parent: None,
                }],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The id TaskCreate's result announces: `toolUseResult.task.id`, else `Task #N` in the text.
pub(super) fn task_created_id(result: Option<&Value>, text: &str) -> Option<String> {
    if let Some(id) = result
        .and_then(|r| r.get("task"))
        .and_then(|t| t.get("id"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    {
        return Some(id);
    }
    let rest = &text[text.find("Task #")? + "Task #".len()..];
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beads_commands() {
        let changes = beads_changes(
            "cd x && bd update bd-12 --status in_progress && bd close bd-3 bd-4 --reason done",
        );
        let got: Vec<(String, String)> = changes
            .iter()
            .map(|c| (c.task_id.clone(), c.status.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bd-12".into(), "in_progress".into()),
                ("bd-3".into(), "closed".into()),
                ("bd-4".into(), "closed".into())
            ]
        );
        let created = beads_created(
            "bd create \"Fix the parser\" -p 1 --parent bd-1",
            "✓ Created issue: bd-7\n  Title: Fix the parser",
        )
        .unwrap();
        assert_eq!(created.task_id, "bd-7");
        assert_eq!(created.title.as_deref(), Some("Fix the parser"));
        assert_eq!(created.parent.as_deref(), Some("bd-1"));
        assert!(beads_changes("echo bd is great").is_empty());
        assert_eq!(beads_changes("bd close x-1 2>&1").len(), 1);
        // Issue 15 (shlex): an escaped quote stays in the title, a cut-off command keeps its id.
        let created =
            beads_created(r#"bd create "say \"hi\"" -p 1"#, "Created issue: bd-8").unwrap();
        assert_eq!(created.title.as_deref(), Some(r#"say "hi""#));
        let cut = beads_changes(r#"bd close bd-9 --reason "half a reas"#);
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].task_id, "bd-9");
    }

    #[test]
    fn todo_write_items() {
        let input: Value = serde_json::json!({"todos": [
            {"content": "Write tests", "status": "in_progress", "activeForm": "Writing tests"},
            {"content": "Ship", "status": "pending"}
        ]});
        let changes = todo_changes("TodoWrite", &input);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].status, "in_progress");
        assert_eq!(changes[1].task_id, "Ship");
        assert_eq!(
            task_created_id(None, "Task #4 created successfully: x"),
            Some("4".into())
        );
    }
}
