//! One-line summaries of Claude Code payloads for people (`cat`, `replay`, `show`): what a hook
//! event or a transcript line was about, read from the members Claude Code puts it in
//! (`tool_input`, `agent_id`/`agent_type`, `prompt`, `message`, `reason`, `source`, `trigger`,
//! `last_assistant_message`; a line's `summary`, `message.content` blocks or `content`).

use serde_json::Value;

/// First line of `text`, cut to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max || text.trim().lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// What a hook payload was about: `<tool> <input>` for tool events, `agent <id> <type>` for
/// subagent events, else the first line of its prompt, message, reason, source, trigger or last
/// assistant message; empty when none (or not a JSON object).
pub fn hook_summary(raw: &[u8], tool: Option<&str>) -> String {
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

/// What a tool call was about, on one line of at most 100 characters
/// ([`super::tool::input_description`]).
pub fn tool_input_summary(tool: &str, input: Option<&serde_json::Map<String, Value>>) -> String {
    input
        .and_then(|input| {
            super::tool::describing_keys(tool)
                .iter()
                .find_map(|key| match input.get(*key) {
                    Some(Value::String(s)) => Some(one_line(s, 100)),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                })
        })
        .unwrap_or_default()
}

/// What a transcript line was about: its summary, first text, tool call (`<tool> <input>`),
/// `tool result` (`(error)`) or `(thinking)`; empty when none (or not a JSON object).
pub fn transcript_summary(raw: &[u8]) -> String {
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
