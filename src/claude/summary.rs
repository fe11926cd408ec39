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

/// A prompt as a title for people (turn names in `tree`, the dashboard and Mermaid): terminal
/// escape sequences removed (`<local-command-stdout>` holds raw terminal output), and the
/// markup Claude Code wraps slash commands and their output in unwrapped:
/// `<command-name>/compact</command-name><command-args>x</command-args>` → `/compact x`,
/// `<local-command-stdout>text</local-command-stdout>` → `text` (a `<command-message>` next to
/// a command name is dropped: it repeats the name); a tag without its other half is removed.
/// Other text is returned trimmed.
pub fn prompt_title(prompt: &str) -> String {
    use std::sync::LazyLock;
    static TAG: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(?s)<(command-name|command-args|command-message|local-command-stdout|local-command-stderr)>(.*?)</(?:command-name|command-args|command-message|local-command-stdout|local-command-stderr)>")
            .unwrap_or_else(|e| unreachable!("a valid regex: {e}"))
    });
    // A tag whose other half is not in the text (a prompt cut at its first line keeps
    // `<local-command-stdout>` without its closing tag) is dropped.
    static STRAY: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"</?(?:command-name|command-args|command-message|local-command-stdout|local-command-stderr)>")
            .unwrap_or_else(|e| unreachable!("a valid regex: {e}"))
    });
    let text = String::from_utf8_lossy(&strip_ansi_escapes::strip(prompt.as_bytes())).into_owned();
    if !TAG.is_match(&text) {
        return STRAY.replace_all(&text, "").trim().to_owned();
    }
    let has_name = TAG.captures_iter(&text).any(|c| &c[1] == "command-name");
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = String::new();
    let mut at = 0;
    for caps in TAG.captures_iter(&text) {
        let (Some(whole), Some(inner)) = (caps.get(0), caps.get(2)) else {
            continue;
        };
        rest.push_str(&text[at..whole.start()]);
        at = whole.end();
        if &caps[1] == "command-message" && has_name {
            continue;
        }
        let inner = inner.as_str().trim();
        if !inner.is_empty() {
            parts.push(inner);
        }
    }
    rest.push_str(&text[at..]);
    let rest = STRAY.replace_all(&rest, "");
    let rest = rest.trim();
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts.join(" ")
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

#[cfg(test)]
mod tests {
    use super::prompt_title;

    #[test]
    fn prompt_titles_lose_command_markup_and_escapes() {
        assert_eq!(
            prompt_title("<command-name>/compact</command-name>"),
            "/compact"
        );
        assert_eq!(
            prompt_title(
                "<command-message>review</command-message>\n<command-name>/review</command-name>\n<command-args>src/</command-args>"
            ),
            "/review src/"
        );
        assert_eq!(
            prompt_title(
                "<local-command-stdout>\u{1b}[2mCompacted (ctrl+o to see full summary)\u{1b}[22m</local-command-stdout>"
            ),
            "Compacted (ctrl+o to see full summary)"
        );
        // Cut at the first line: the closing tag is gone.
        assert_eq!(
            prompt_title("<local-command-stdout>Compacted (ctrl+o to see full summary)"),
            "Compacted (ctrl+o to see full summary)"
        );
        assert_eq!(
            prompt_title("<command-name>/compact</command-name> then <command-args>x"),
            "/compact then x"
        );
        assert_eq!(prompt_title("  fix the <b>bug</b> "), "fix the <b>bug</b>");
        assert_eq!(prompt_title(""), "");
    }
}
