//! One-line human text for records: the event and a summary of what it was about (`ctrace
//! cat`, the timeline items of `show` and the service). What a payload was about is read by
//! `crate::claude::summary`.

use crate::claude::summary::{hook_summary, transcript_summary};
use crate::model::{Body, Record};

/// A one-line human summary of a record: event or line type, tool, and what it was about.
pub fn summary(record: &Record) -> (String, String) {
    match &record.body {
        Body::Hook(hook) => {
            let event = hook.event.clone().unwrap_or_else(|| match hook.malformed {
                Some(m) => format!("<{}>", m.as_str()),
                None => "<no event>".into(),
            });
            let detail = hook_summary(&hook.raw, hook.tool_name.as_deref());
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
            (kind, transcript_summary(&line.raw))
        }
        Body::Pty(pty) => (format!("pty/{:?}", pty.kind).to_lowercase(), String::new()),
        Body::Internal(internal) => (internal.event.clone(), internal.detail.clone()),
        Body::Otlp(otlp) => (
            match &otlp.name {
                Some(name) => format!("{}/{name}", otlp.signal.as_str()),
                None => otlp.signal.as_str().to_owned(),
            },
            crate::otlp::summary(otlp.signal, &otlp.raw),
        ),
    }
}
