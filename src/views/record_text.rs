//! One-line human text for records: the event and a summary of what it was about (`ctrace
//! cat`, the timeline items of `show` and the service).

use serde_json::Value;

use crate::model::{Body, Record};

/// A one-line human summary of a record: event or line type, tool, and what it was about.
pub fn summary(record: &Record) -> (String, String) {
    match &record.body {
        Body::Hook(hook) => {
            let event = hook.event.clone().unwrap_or_else(|| match hook.malformed {
                Some(m) => format!("<{}>", m.as_str()),
                None => "<no event>".into(),
            });
            let detail = hook_detail(&hook.raw, hook.tool_name.as_deref());
            (event, detail)
        }
        Body::Transcript(line) => {
            let kind = match (&line.line_type, &line.subtype) {
                (Some(t), Some(s)) => format!("{t}/{s}"),
                (Some(t), None) => t.clone(),
                (None, _) => match line.malformed {
                    Some(m) => format!("<{}>", m.as_str()),
                    None => "<no type>".into(),
                },
            };
            (kind, transcript_detail(&line.raw))
        }
        Body::Pty(pty) => (format!("pty/{:?}", pty.kind).to_lowercase(), String::new()),
        Body::Internal(internal) => (internal.event.clone(), internal.detail.clone()),
    }
}

/// First line of `text`, cut to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.trim().lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

fn hook_detail(raw: &[u8], tool: Option<&str>) -> String {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(raw) else {
        return String::new();
    };
    let input = map.get("tool_input").and_then(Value::as_object);
    if let Some(tool) = tool {
        return format!("{tool} {}", tool_input_summary(tool, input));
    }
    if let Some(agent) = map.get("agent_id").and_then(Value::as_str) {
        let kind = map.get("agent_type").and_then(Value::as_str).unwrap_or("");
        return format!("agent {agent} {kind}").trim_end().to_owned();
    }
    for key in [
        "prompt",
        "message",
        "reason",
        "source",
        "trigger",
        "last_assistant_message",
    ] {
        if let Some(text) = map.get(key).and_then(Value::as_str) {
            return one_line(text, 100);
        }
    }
    String::new()
}

/// What a tool call was about: the command, file path, pattern or description.
pub fn tool_input_summary(tool: &str, input: Option<&serde_json::Map<String, Value>>) -> String {
    let Some(input) = input else {
        return String::new();
    };
    let keys: &[&str] = match tool {
        "Bash" => &["command"],
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => &["file_path", "notebook_path"],
        "Grep" | "Glob" => &["pattern"],
        "WebFetch" => &["url"],
        "WebSearch" => &["query"],
        "Task" | "Agent" => &["description", "subagent_type"],
        _ => &[
            "description",
            "command",
            "file_path",
            "pattern",
            "url",
            "query",
            "prompt",
        ],
    };
    keys.iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
        .map(|s| one_line(s, 100))
        .unwrap_or_default()
}

fn transcript_detail(raw: &[u8]) -> String {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(raw) else {
        return String::new();
    };
    if let Some(summary) = map.get("summary").and_then(Value::as_str) {
        return one_line(summary, 100);
    }
    let Some(content) = map.get("message").and_then(|m| m.get("content")) else {
        return map
            .get("content")
            .and_then(Value::as_str)
            .map(|s| one_line(s, 100))
            .unwrap_or_default();
    };
    if let Some(text) = content.as_str() {
        return one_line(text, 100);
    }
    let Some(blocks) = content.as_array() else {
        return String::new();
    };
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    return one_line(text, 100);
                }
            }
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("?");
                let input = block.get("input").and_then(Value::as_object);
                return format!("{name} {}", tool_input_summary(name, input));
            }
            Some("tool_result") => {
                let error = block.get("is_error").and_then(Value::as_bool) == Some(true);
                return if error {
                    "tool result (error)"
                } else {
                    "tool result"
                }
                .into();
            }
            Some("thinking") => return "(thinking)".into(),
            _ => {}
        }
    }
    String::new()
}
