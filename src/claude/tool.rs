//! Tool calls as Claude Code records them: a tool's `name` and its `input` object (in a
//! transcript's `tool_use` block and a hook's `tool_input`). Which input keys describe a call of
//! each built-in tool (Claude Code's tools reference: `Bash.command`, `Read.file_path`,
//! `Grep.pattern`, `Task.description`, …) is decided here once, for the views, `show`, `cat`
//! and `replay`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Tools whose whole input the views keep (their to-do lists and task fields), not just
/// [`InputKeys`].
pub(crate) const WHOLE_INPUT_TOOLS: &[&str] = &["TodoWrite", "TaskUpdate", "TaskCreate"];

/// The input keys the views read; other keys are skipped without building values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InputKeys {
    /// The `command` member.
    pub command: Option<Value>,
    /// The `file_path` member.
    pub file_path: Option<Value>,
    /// The `notebook_path` member.
    pub notebook_path: Option<Value>,
    /// The `pattern` member.
    pub pattern: Option<Value>,
    /// The `description` member.
    pub description: Option<Value>,
    /// The `prompt` member.
    pub prompt: Option<Value>,
    /// The `url` member.
    pub url: Option<Value>,
    /// The `query` member.
    pub query: Option<Value>,
    /// The `path` member.
    pub path: Option<Value>,
    /// The `subagent_type` member.
    pub subagent_type: Option<Value>,
}

/// A tool call's input as a JSON object with only the keys the views read (the whole input
/// for the to-do tools, whose lists they need).
pub fn input_value(name: &str, raw: Option<&RawValue>) -> Value {
    let Some(raw) = raw else {
        return Value::Null;
    };
    if WHOLE_INPUT_TOOLS.contains(&name) {
        return serde_json::from_str(raw.get()).unwrap_or(Value::Null);
    }
    let Ok(keys) = serde_json::from_str::<InputKeys>(raw.get()) else {
        return Value::Null;
    };
    let mut map = serde_json::Map::new();
    for (key, value) in [
        ("command", keys.command),
        ("file_path", keys.file_path),
        ("notebook_path", keys.notebook_path),
        ("pattern", keys.pattern),
        ("description", keys.description),
        ("prompt", keys.prompt),
        ("url", keys.url),
        ("query", keys.query),
        ("path", keys.path),
        ("subagent_type", keys.subagent_type),
    ] {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    }
    Value::Object(map)
}

/// The input keys that describe a call of `tool`, most telling first.
pub fn describing_keys(tool: &str) -> &'static [&'static str] {
    match tool {
        "Bash" => &["command"],
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => &["file_path", "notebook_path"],
        "Grep" | "Glob" => &["pattern"],
        "Task" | "Agent" => &["description", "prompt", "subagent_type"],
        "WebFetch" => &["url"],
        "WebSearch" => &["query"],
        "TaskCreate" => &["subject", "description"],
        "TaskUpdate" => &["taskId"],
        _ => &[
            "description",
            "command",
            "file_path",
            "path",
            "pattern",
            "url",
            "query",
            "prompt",
        ],
    }
}

/// What a call of `tool` with `input` was about: the value of its first
/// [`describing_keys`] key that is a string (or a number, such as `TaskUpdate.taskId`), whole;
/// callers cut it to their width.
pub fn input_description<'a>(tool: &str, input: &'a Value) -> Option<Cow<'a, str>> {
    describing_keys(tool)
        .iter()
        .find_map(|key| match input.get(*key) {
            Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            Some(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key that describes a call is one [`input_value`] keeps, so the views can describe
    /// what they stored (a key added to one table and not the other fails here).
    #[test]
    fn input_value_keeps_every_describing_key() {
        for tool in [
            "Bash",
            "Read",
            "Grep",
            "Task",
            "WebFetch",
            "WebSearch",
            "mcp__x__y",
        ] {
            for key in describing_keys(tool) {
                let input = serde_json::json!({ *key: "v" }).to_string();
                let raw = RawValue::from_string(input).unwrap();
                let kept = input_value(tool, Some(&raw));
                assert_eq!(
                    input_description(tool, &kept).as_deref(),
                    Some("v"),
                    "{tool}.{key}"
                );
            }
        }
    }

    #[test]
    fn numbers_describe_and_other_values_do_not() {
        let input = serde_json::json!({"taskId": 7, "subject": ["x"]});
        assert_eq!(
            input_description("TaskUpdate", &input).as_deref(),
            Some("7")
        );
        assert_eq!(input_description("TaskCreate", &input), None);
        assert_eq!(input_description("Bash", &Value::Null), None);
    }
}
