//! A session's span tree ([`crate::views::tree::Node`]) as one OTLP/JSON
//! `ExportTraceServiceRequest`: the trace is the session, the spans are the session itself, its
//! turns, tool calls and subagents, with parent links, timing, status and token usage.
//!
//! Encoding (OTLP/JSON, `opentelemetry-proto` `docs/specification.md`): field names in
//! lowerCamelCase; `traceId` / `spanId` / `parentSpanId` as lowercase hex (16 and 8 bytes, not
//! base64 as protobuf's own JSON mapping would have it); 64-bit integers (`startTimeUnixNano`,
//! `intValue`) as decimal strings; enums (`kind`, `status.code`) as integers. One request per
//! line is the layout of the OpenTelemetry Collector's file exporter, which its `otlpjsonfile`
//! receiver reads back.
//!
//! Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.*`), with ctrace's own
//! under `ctrace.*` (`docs/export.md` lists them all).
//!
//! Invariants: ids are deterministic — the trace id is the first 16 bytes of SHA-256 of the
//! session id, a span id the first 8 bytes of SHA-256 of the session id, node kind, node id and
//! (for repeated node ids) an occurrence number — so exporting twice gives the same ids; every
//! span but the root has a `parentSpanId` naming a span of the same request; no span ends before
//! it starts.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::views::tree::{Node, NodeKind, Status, Tokens};

/// `kind` of every span: `SPAN_KIND_INTERNAL` (the agent, its turns and tools run in-process).
pub const SPAN_KIND_INTERNAL: u8 = 1;
/// `status.code` `STATUS_CODE_UNSET`.
pub const STATUS_CODE_UNSET: u8 = 0;
/// `status.code` `STATUS_CODE_OK`.
pub const STATUS_CODE_OK: u8 = 1;
/// `status.code` `STATUS_CODE_ERROR`.
pub const STATUS_CODE_ERROR: u8 = 2;
/// `gen_ai.provider.name` / `gen_ai.system` of Claude Code sessions.
pub const PROVIDER: &str = "anthropic";
/// `service.name` and `gen_ai.agent.name` of the session span.
pub const SERVICE_NAME: &str = "claude-code";

/// The trace id of `session`: the first 16 bytes of SHA-256 of its id.
pub fn trace_id(session: &str) -> [u8; 16] {
    let digest = Sha256::digest(session.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    if id == [0; 16] {
        id[15] = 1;
    }
    id
}

fn span_id(session: &str, kind: NodeKind, node: &str, occurrence: u32) -> [u8; 8] {
    let mut hasher = Sha256::new();
    hasher.update(session.as_bytes());
    hasher.update([0]);
    hasher.update(kind_name(kind).as_bytes());
    hasher.update([0]);
    hasher.update(node.as_bytes());
    hasher.update([0]);
    hasher.update(occurrence.to_le_bytes());
    let digest = hasher.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Session => "session",
        NodeKind::Turn => "turn",
        NodeKind::Tool => "tool",
        NodeKind::Subagent => "subagent",
    }
}

/// Whether a node id was made up by the views rather than taken from the data: `o<offset>`, for
/// tool calls of old hook payloads without `tool_use_id`. Such an id is no `gen_ai.tool.call.id`.
fn is_synthetic_id(id: &str) -> bool {
    id.strip_prefix('o')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Number of spans [`request`] makes of `tree` (one per node).
pub fn span_count(tree: &Node) -> u64 {
    1 + tree.children.iter().map(span_count).sum::<u64>()
}

fn string_attr(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn int_attr(key: &str, value: u64) -> Value {
    json!({ "key": key, "value": { "intValue": value.to_string() } })
}

/// The latest end time in a subtree (`end_ns`, else the start), so an unfinished parent still
/// covers its children.
fn latest_end(node: &Node) -> u64 {
    node.children
        .iter()
        .map(latest_end)
        .fold(node.end_ns.unwrap_or(node.start_ns), u64::max)
        .max(node.start_ns)
}

struct Builder<'a> {
    session: &'a str,
    trace_id: String,
    occurrences: HashMap<(&'static str, &'a str), u32>,
    spans: Vec<Value>,
}

impl<'a> Builder<'a> {
    fn add(&mut self, node: &'a Node, parent: Option<&str>) {
        let occurrence = self
            .occurrences
            .entry((kind_name(node.kind), &node.id))
            .or_insert(0);
        let id = hex::encode(span_id(self.session, node.kind, &node.id, *occurrence));
        *occurrence += 1;
        let mut attributes = vec![
            string_attr("gen_ai.provider.name", PROVIDER),
            string_attr("gen_ai.system", PROVIDER),
            string_attr("gen_ai.conversation.id", self.session),
            string_attr("ctrace.node.kind", kind_name(node.kind)),
            string_attr("ctrace.node.id", &node.id),
        ];
        let name = operation(node, &mut attributes);
        model_attrs(node, &mut attributes);
        token_attrs(&node.own_tokens, &mut attributes);
        if let Some(cost) = node.cost_usd.filter(|c| c.is_finite()) {
            attributes.push(json!({ "key": "ctrace.cost_usd", "value": { "doubleValue": cost } }));
        }
        if let Some(offset) = node.offset {
            attributes.push(int_attr("ctrace.offset", offset));
        }
        let status = status(node, &mut attributes);
        let mut span = json!({
            "traceId": self.trace_id,
            "spanId": id,
            "name": name,
            "kind": SPAN_KIND_INTERNAL,
            "startTimeUnixNano": node.start_ns.to_string(),
            "endTimeUnixNano": latest_end(node).to_string(),
            "attributes": attributes,
            "status": status,
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = Value::String(parent.to_owned());
        }
        self.spans.push(span);
        for child in &node.children {
            self.add(child, Some(&id));
        }
    }
}

/// The span name of `node`, with the `gen_ai.operation.name` attributes that go with it.
fn operation(node: &Node, attributes: &mut Vec<Value>) -> String {
    match node.kind {
        NodeKind::Session => {
            attributes.push(string_attr("gen_ai.operation.name", "invoke_agent"));
            attributes.push(string_attr("gen_ai.agent.name", SERVICE_NAME));
            attributes.push(string_attr("gen_ai.agent.id", &node.id));
            format!("invoke_agent {SERVICE_NAME}")
        }
        NodeKind::Subagent => {
            let agent = if node.name.is_empty() {
                "subagent"
            } else {
                &node.name
            };
            attributes.push(string_attr("gen_ai.operation.name", "invoke_agent"));
            attributes.push(string_attr("gen_ai.agent.name", agent));
            attributes.push(string_attr("gen_ai.agent.id", &node.id));
            format!("invoke_agent {agent}")
        }
        NodeKind::Tool => {
            attributes.push(string_attr("gen_ai.operation.name", "execute_tool"));
            attributes.push(string_attr("gen_ai.tool.name", &node.name));
            if !is_synthetic_id(&node.id) {
                attributes.push(string_attr("gen_ai.tool.call.id", &node.id));
            }
            format!("execute_tool {}", node.name)
        }
        NodeKind::Turn => {
            attributes.push(string_attr("ctrace.turn.prompt", &node.name));
            "turn".to_owned()
        }
    }
}

/// `gen_ai.request.model` / `gen_ai.response.model` (the first model), and `ctrace.models` when
/// the node used several.
fn model_attrs(node: &Node, attributes: &mut Vec<Value>) {
    if let Some(model) = node.models.first() {
        attributes.push(string_attr("gen_ai.request.model", model));
        attributes.push(string_attr("gen_ai.response.model", model));
    }
    if node.models.len() > 1 {
        let values: Vec<Value> = node
            .models
            .iter()
            .map(|m| json!({ "stringValue": m }))
            .collect();
        attributes.push(json!({
            "key": "ctrace.models",
            "value": { "arrayValue": { "values": values } }
        }));
    }
}

/// The token attributes of a span's own responses (none when all are zero). Each span carries
/// its own responses' tokens, so a backend summing spans counts every response once.
fn token_attrs(t: &Tokens, attributes: &mut Vec<Value>) {
    if t.input + t.output + t.cache_creation + t.cache_read == 0 {
        return;
    }
    // GenAI conventions count cached input inside `input_tokens`; Anthropic's
    // `input_tokens` excludes it, and is kept as `ctrace.usage.input_tokens`.
    attributes.push(int_attr(
        "gen_ai.usage.input_tokens",
        t.input + t.cache_creation + t.cache_read,
    ));
    attributes.push(int_attr("gen_ai.usage.output_tokens", t.output));
    attributes.push(int_attr(
        "gen_ai.usage.cache_creation.input_tokens",
        t.cache_creation,
    ));
    attributes.push(int_attr(
        "gen_ai.usage.cache_read.input_tokens",
        t.cache_read,
    ));
    attributes.push(int_attr("ctrace.usage.input_tokens", t.input));
    attributes.push(int_attr(
        "ctrace.usage.cache_creation_input_tokens",
        t.cache_creation,
    ));
    attributes.push(int_attr(
        "ctrace.usage.cache_read_input_tokens",
        t.cache_read,
    ));
}

/// The span `status` of `node`, after pushing its `ctrace.status` attribute.
fn status(node: &Node, attributes: &mut Vec<Value>) -> Value {
    let (code, status_name) = match node.status {
        Status::Ok => (STATUS_CODE_OK, "ok"),
        Status::Error => (STATUS_CODE_ERROR, "error"),
        Status::Unfinished => (STATUS_CODE_UNSET, "unfinished"),
    };
    attributes.push(string_attr("ctrace.status", status_name));
    let mut status = json!({ "code": code });
    if node.status == Status::Error
        && let Some(error) = &node.error
    {
        status["message"] = Value::String(error.clone());
    }
    status
}

/// The OTLP/JSON `ExportTraceServiceRequest` of one session's tree: one resource
/// (`service.name` = `claude-code`), one scope (`ctrace`), one span per node in depth-first
/// order. `session` is the session id (the trace id is derived from it).
pub fn request(tree: &Node, session: &str) -> Value {
    let mut builder = Builder {
        session,
        trace_id: hex::encode(trace_id(session)),
        occurrences: HashMap::new(),
        spans: Vec::new(),
    };
    builder.add(tree, None);
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [
                    string_attr("service.name", SERVICE_NAME),
                    string_attr("gen_ai.conversation.id", session),
                ]
            },
            "scopeSpans": [{
                "scope": { "name": "ctrace", "version": env!("CARGO_PKG_VERSION") },
                "spans": builder.spans,
            }]
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind, id: &str, name: &str, start: u64, end: Option<u64>) -> Node {
        Node {
            kind,
            id: id.into(),
            name: name.into(),
            start_ns: start,
            end_ns: end,
            status: if end.is_some() {
                Status::Ok
            } else {
                Status::Unfinished
            },
            error: None,
            models: Vec::new(),
            tokens: Tokens::default(),
            own_tokens: Tokens::default(),
            cost_usd: None,
            offset: Some(start),
            children: Vec::new(),
        }
    }

    fn sample() -> Node {
        let mut failing = node(NodeKind::Tool, "toolu_2", "Bash", 40, Some(45));
        failing.status = Status::Error;
        failing.error = Some("exit 1".into());
        let mut sub = node(NodeKind::Subagent, "agent-1", "Explore", 20, None);
        sub.children = vec![node(NodeKind::Tool, "toolu_3", "Read", 21, Some(90))];
        sub.own_tokens = Tokens {
            input: 3,
            output: 7,
            cache_creation: 11,
            cache_read: 13,
        };
        sub.models = vec!["claude-haiku-4-5".into()];
        let mut task = node(NodeKind::Tool, "toolu_1", "Task", 15, Some(95));
        task.children = vec![sub];
        let mut turn = node(NodeKind::Turn, "p1", "fix the bug", 10, Some(100));
        turn.models = vec!["claude-opus-4-5".into(), "claude-haiku-4-5".into()];
        turn.own_tokens.input = 5;
        turn.own_tokens.output = 6;
        turn.children = vec![task, failing];
        // A tool call without tool_use_id (old hooks): the views make up `o<offset>`.
        turn.children
            .push(node(NodeKind::Tool, "o77", "Read", 50, Some(51)));
        // The same node id twice (a repeated turn id) still gets distinct span ids.
        let again = node(NodeKind::Turn, "p1", "again", 110, Some(120));
        let mut root = node(NodeKind::Session, "sess-1", "session", 0, Some(130));
        root.cost_usd = Some(0.25);
        root.children = vec![turn, again];
        root
    }

    fn attr<'v>(span: &'v Value, key: &str) -> Option<&'v Value> {
        span["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| &a["value"])
    }

    fn spans(request: &Value) -> &Vec<Value> {
        request["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
    }

    #[test]
    fn spans_links_ids_and_encoding() {
        let tree = sample();
        let request = request(&tree, "sess-1");
        let spans = spans(&request);
        assert_eq!(spans.len() as u64, span_count(&tree));
        assert_eq!(spans.len(), 8);
        let trace = spans[0]["traceId"].as_str().unwrap();
        assert_eq!(trace.len(), 32);
        assert_eq!(trace, hex::encode(trace_id("sess-1")));
        let ids: Vec<&str> = spans
            .iter()
            .map(|s| s["spanId"].as_str().unwrap())
            .collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "span ids are distinct");
        let mut roots = 0;
        for span in spans {
            assert_eq!(span["traceId"], trace);
            let id = span["spanId"].as_str().unwrap();
            assert_eq!(id.len(), 16);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            match span.get("parentSpanId") {
                Some(parent) => assert!(ids.contains(&parent.as_str().unwrap())),
                None => roots += 1,
            }
            assert_eq!(span["kind"], 1);
            let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
            let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
            assert!(end >= start);
            assert_eq!(
                attr(span, "gen_ai.provider.name").unwrap()["stringValue"],
                "anthropic"
            );
        }
        assert_eq!(roots, 1);
    }

    #[test]
    fn span_names_status_and_attributes() {
        let request = request(&sample(), "sess-1");
        let spans = spans(&request);
        // Depth-first: session, turn, Task, subagent, Read, Bash, second turn.
        let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "invoke_agent claude-code",
                "turn",
                "execute_tool Task",
                "invoke_agent Explore",
                "execute_tool Read",
                "execute_tool Bash",
                "execute_tool Read",
                "turn"
            ]
        );
        assert!(attr(&spans[6], "gen_ai.tool.call.id").is_none());
        assert_eq!(
            attr(&spans[6], "ctrace.node.id").unwrap()["stringValue"],
            "o77"
        );
        assert_eq!(spans[3]["parentSpanId"], spans[2]["spanId"]);
        assert_eq!(spans[4]["parentSpanId"], spans[3]["spanId"]);
        // The unfinished subagent ends with its last child.
        assert_eq!(spans[3]["endTimeUnixNano"], "90");
        assert_eq!(spans[3]["status"]["code"], 0);
        assert_eq!(spans[5]["status"], json!({"code": 2, "message": "exit 1"}));
        assert_eq!(spans[0]["status"]["code"], 1);
        assert_eq!(
            attr(&spans[5], "gen_ai.tool.call.id").unwrap()["stringValue"],
            "toolu_2"
        );
        assert_eq!(
            attr(&spans[5], "gen_ai.operation.name").unwrap()["stringValue"],
            "execute_tool"
        );
        assert_eq!(
            attr(&spans[3], "gen_ai.operation.name").unwrap()["stringValue"],
            "invoke_agent"
        );
        // Tokens: GenAI input includes cached input; ctrace keeps Anthropic's split.
        assert_eq!(
            attr(&spans[3], "gen_ai.usage.input_tokens").unwrap()["intValue"],
            "27"
        );
        assert_eq!(
            attr(&spans[3], "gen_ai.usage.output_tokens").unwrap()["intValue"],
            "7"
        );
        assert_eq!(
            attr(&spans[3], "ctrace.usage.cache_read_input_tokens").unwrap()["intValue"],
            "13"
        );
        assert_eq!(
            attr(&spans[3], "gen_ai.response.model").unwrap()["stringValue"],
            "claude-haiku-4-5"
        );
        assert!(attr(&spans[4], "gen_ai.usage.input_tokens").is_none());
        assert_eq!(
            attr(&spans[1], "ctrace.models").unwrap()["arrayValue"]["values"][1]["stringValue"],
            "claude-haiku-4-5"
        );
        assert_eq!(
            attr(&spans[0], "ctrace.cost_usd").unwrap()["doubleValue"],
            0.25
        );
    }

    #[test]
    fn ids_are_stable_and_per_session() {
        let tree = sample();
        assert_eq!(request(&tree, "sess-1"), request(&tree, "sess-1"));
        let other = request(&tree, "sess-2");
        assert_ne!(
            other["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"],
            request(&tree, "sess-1")["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        );
    }

    #[test]
    fn a_single_node_is_one_root_span() {
        let root = node(NodeKind::Session, "s", "s", 5, None);
        let request = request(&root, "s");
        let spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        assert_eq!(spans.len(), 1);
        assert!(spans[0].get("parentSpanId").is_none());
        assert_eq!(spans[0]["endTimeUnixNano"], "5");
    }
}
