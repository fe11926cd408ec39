//! A record as one JSON object: what `ctrace cat --json`, `export --format jsonl`, the
//! service's `/api/sessions/{id}/records` and its `/api/stream` events show. The payload is
//! embedded losslessly ([`Payload`]).

use std::io::Write;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::{Body, StoredRecord};

/// Raw payload bytes embedded in JSON losslessly; exactly one field is set:
/// - `payload`: the JSON itself, byte for byte, when it is valid single-line JSON;
/// - `payload_text`: a JSON string holding the bytes, when they are UTF-8 but not single-line
///   valid JSON (pretty-printed payloads, broken JSON, lone surrogate escapes);
/// - `payload_base64`: standard base64, when they are not UTF-8.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// Verbatim JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a RawValue>,
    /// The bytes as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_text: Option<&'a str>,
    /// The bytes in base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

impl<'a> Payload<'a> {
    /// Chooses the representation for `raw`.
    pub fn new(raw: &'a [u8]) -> Self {
        let mut out = Self {
            payload: None,
            payload_text: None,
            payload_base64: None,
        };
        match std::str::from_utf8(raw) {
            Ok(text) => {
                let single_line = !raw.contains(&b'\n') && !raw.contains(&b'\r');
                match serde_json::from_str::<&RawValue>(text) {
                    Ok(value)
                        if single_line
                            && value.get().len() == text.len()
                            && crate::claude::replace_lone_surrogates(text).is_none() =>
                    {
                        out.payload = Some(value);
                    }
                    _ => out.payload_text = Some(text),
                }
            }
            Err(_) => {
                out.payload_base64 = Some(base64::engine::general_purpose::STANDARD.encode(raw));
            }
        }
        out
    }
}

#[derive(Serialize)]
struct BodyOut<'a> {
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
    #[serde(flatten)]
    payload: Payload<'a>,
}

#[derive(Serialize)]
struct RecordOut<'a> {
    offset: Option<u64>,
    ts: u64,
    time: String,
    source: &'static str,
    session: Option<&'a str>,
    body: BodyOut<'a>,
}

/// Writes the record as one JSON line: `offset` (null while unsealed), `ts` (ns), `time`
/// (RFC 3339), `source`, `session`, `body` (the extracted fields, and the payload
/// embedded losslessly as in [`Payload`]).
///
/// # Errors
/// I/O errors (a closed pipe included).
pub fn write_record_json(out: &mut impl Write, stored: &StoredRecord) -> std::io::Result<()> {
    let record = &stored.record;
    // The payload bytes are taken out of (a copy of) the body before its fields become JSON:
    // serde_json would make each byte a number value (about 70 bytes of memory per payload
    // byte) only for the field to be dropped.
    let mut body = record.body.clone();
    let raw: Vec<u8> = match &mut body {
        Body::Hook(b) => std::mem::take(&mut b.raw),
        Body::Transcript(b) => std::mem::take(&mut b.raw),
        Body::Pty(b) => std::mem::take(&mut b.data),
        Body::Internal(b) => std::mem::take(&mut b.data),
        Body::Otlp(b) => std::mem::take(&mut b.raw),
    };
    // The body's variant is the record's `source`; its fields follow directly.
    let fields = match &body {
        Body::Hook(b) => serde_json::to_value(b),
        Body::Transcript(b) => serde_json::to_value(b),
        Body::Pty(b) => serde_json::to_value(b),
        Body::Internal(b) => serde_json::to_value(b),
        Body::Otlp(b) => serde_json::to_value(b),
    };
    let mut fields = match fields {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    fields.remove("raw");
    fields.remove("data");
    // The OTLP item, decoded, beside its protobuf bytes (the payload).
    if let Body::Otlp(otlp) = &body
        && let Ok(request) = crate::otlp::Request::from_raw(otlp.signal, &raw)
        && let Ok(json) = request.to_json()
    {
        fields.insert("otlp".into(), json);
    }
    let value = RecordOut {
        offset: stored.offset.map(|o| o.0),
        ts: record.ts,
        time: crate::model::format_ts(record.ts),
        source: record.source.as_str(),
        session: record.session.as_deref(),
        body: BodyOut {
            fields,
            payload: Payload::new(&raw),
        },
    };
    serde_json::to_writer(&mut *out, &value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// The record as one JSON object (no newline), as [`write_record_json`] writes it.
///
/// # Errors
/// When serialization fails (it does not for records read from a store).
pub fn record_json(stored: &StoredRecord) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    write_record_json(&mut out, stored).map_err(serde_json::Error::io)?;
    out.pop();
    String::from_utf8(out).map_err(|e| serde_json::Error::io(std::io::Error::other(e)))
}
