//! Record building from hook payloads and transcript lines.

use super::*;
use crate::model::{Body, HookBody, Malformed, Origin};

fn hook(raw: &[u8]) -> HookBody {
    match hook_record(raw.to_vec(), 1, None, None).body {
        Body::Hook(body) => body,
        _ => unreachable!(),
    }
}

#[test]
fn extracts_join_keys() {
    let raw = br#"{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","cwd":"/x","agent_id":"a1","prompt_id":"p1"}"#;
    let record = hook_record(raw.to_vec(), 5, None, None);
    assert_eq!(record.session.as_deref(), Some("s1"));
    let Body::Hook(body) = record.body else {
        unreachable!()
    };
    assert_eq!(body.event.as_deref(), Some("PreToolUse"));
    assert_eq!(body.tool_use_id.as_deref(), Some("t1"));
    assert_eq!(body.agent_id.as_deref(), Some("a1"));
    assert_eq!(body.prompt_id.as_deref(), Some("p1"));
    assert_eq!(body.raw, raw.to_vec());
    assert_eq!(body.malformed, None);
}

#[test]
fn malformed_inputs_are_kept_and_flagged() {
    assert_eq!(hook(b"").malformed, Some(Malformed::Empty));
    assert_eq!(hook(b"  \n").malformed, Some(Malformed::Empty));
    assert_eq!(hook(b"{not json").malformed, Some(Malformed::InvalidJson));
    assert_eq!(hook(b"[1,2]").malformed, Some(Malformed::NotObject));
    assert_eq!(hook(b"\"x\"").malformed, Some(Malformed::NotObject));
    assert_eq!(
        hook(b"{\"a\":\"\xff\"}").malformed,
        Some(Malformed::NotUtf8)
    );
    let lone = hook(br#"{"hook_event_name":"Stop","x":"\udc8f and \ud83d"}"#);
    assert_eq!(lone.malformed, Some(Malformed::LoneSurrogate));
    assert_eq!(lone.event.as_deref(), Some("Stop"));
    assert_eq!(hook(b"{not json").raw, b"{not json".to_vec());
}

#[test]
fn surrogate_pairs_are_left_alone() {
    assert_eq!(replace_lone_surrogates(r#""\ud83d\ude00""#), None);
    assert_eq!(replace_lone_surrogates(r#""\\udc8f""#), None);
    assert_eq!(
        replace_lone_surrogates(r#""a\udc8fb""#).as_deref(),
        Some(r#""a\uFFFDb""#)
    );
}

#[test]
fn transcript_fields_and_usage() {
    let raw = br#"{"type":"assistant","uuid":"u2","parentUuid":"u1","requestId":"r1","sessionId":"s","isSidechain":false,"timestamp":"2025-06-26T11:45:51.979Z","message":{"id":"m1","model":"claude-opus-4-6","usage":{"input_tokens":3,"output_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":0}}}}"#;
    let record = transcript_record(raw.to_vec(), Origin::default(), 0, None);
    assert_eq!(record.ts, 1_750_938_351_979_000_000);
    let Body::Transcript(body) = record.body else {
        unreachable!()
    };
    assert_eq!(body.message_id.as_deref(), Some("m1"));
    assert_eq!(body.model.as_deref(), Some("claude-opus-4-6"));
    let usage = body.usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.ephemeral_5m_input_tokens
        ),
        (3, 10, 5)
    );
    assert_eq!(usage.total(), 25);
}
