//! What decoding and splitting an OTLP request will allocate, estimated before anything is
//! allocated ([`super`]'s memory budget).
//!
//! [`protobuf_estimate`] walks the protobuf wire format (`prost::encoding::decode_key` and
//! `decode_varint`) with the schema of the OTLP messages ([`Message::field`]) and adds up what
//! prost allocates: every element of a repeated field (a `Vec` holds up to twice its length,
//! and its first allocation holds 4), every string and bytes field, every repeated number.
//! Singular messages live inside their parent and cost nothing of their own. Fields the schema
//! does not have are skipped, as prost skips them. [`json_estimate`] does the same from the
//! tokens of OTLP/JSON: the element type of an array is named by its key (`logRecords`,
//! `attributes`, ...), and serde's `Content` buffer (used for `AnyValue`, metrics and data
//! points, which have flattened fields) is counted per object and member. [`split_estimate`]
//! adds what the records take once decoded.
//!
//! Invariants: the walks allocate nothing (the JSON one a stack of open arrays); they never
//! panic; the protobuf walk refuses nothing prost decodes (it fails only on bytes prost fails
//! on too, and at the same nesting depth); the estimates are at least what decoding allocates
//! (checked for the hostile shapes, an empty item or attribute per 2 bytes, in the tests here
//! and in `tests/otlp_receive.rs`).

use std::mem::size_of;

use opentelemetry_proto::tonic as otel;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use crate::otlp::{Request, Signal, receive};

/// What the allocator adds to one allocation at most, bytes (glibc: an 8-byte header, 16-byte
/// alignment, 32-byte smallest chunk).
const ALLOCATION_OVERHEAD: u64 = 32;

/// Nesting deeper than this is refused, as prost refuses it.
const MAX_DEPTH: u32 = 100;

/// Bytes allocated for the elements of a repeated field: a `Vec` holds up to twice its length,
/// and its first allocation holds 4 elements.
fn elements(size: u64, count: u64, first: bool) -> u64 {
    let growth = 2 * size * count;
    if first {
        growth + 2 * size + ALLOCATION_OVERHEAD
    } else {
        growth
    }
}

/// Bytes allocated for a string or bytes field of `len` bytes.
fn string(len: u64) -> u64 {
    if len == 0 {
        0
    } else {
        len + ALLOCATION_OVERHEAD
    }
}

/// Why the protobuf walk stopped: the body is not a well-formed message.
#[derive(Debug, thiserror::Error)]
pub(super) enum WireError {
    /// A key or varint does not decode.
    #[error(transparent)]
    Decode(#[from] prost::DecodeError),
    /// A length-delimited field is longer than what is left of its message.
    #[error("a field of {len} bytes runs past the end of its message ({left} bytes left)")]
    Truncated {
        /// The field's length, bytes.
        len: u64,
        /// What is left, bytes.
        left: usize,
    },
    /// Messages are nested deeper than prost decodes.
    #[error("messages nested more than {limit} deep")]
    TooDeep {
        /// The limit, [`MAX_DEPTH`].
        limit: u32,
    },
}

/// The OTLP messages whose fields allocate when decoded (`opentelemetry-proto`'s
/// `collector`, `resource`, `common`, `logs`, `metrics` and `trace` packages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    LogsRequest,
    MetricsRequest,
    TracesRequest,
    ResourceLogs,
    ResourceMetrics,
    ResourceSpans,
    ScopeLogs,
    ScopeMetrics,
    ScopeSpans,
    LogRecord,
    Metric,
    Span,
    /// `Gauge` and `Sum`: their data points are `NumberDataPoint`s.
    NumberPoints,
    Histogram,
    ExponentialHistogram,
    Summary,
    NumberPoint,
    HistogramPoint,
    ExponentialHistogramPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    SpanEvent,
    SpanLink,
    Status,
    Resource,
    Scope,
    EntityRef,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// What decoding one field allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// A repeated message: each occurrence is one more element.
    Each(Message),
    /// A singular message (optional, or a oneof variant), held inside its parent; occurrences
    /// merge.
    One(Message),
    /// A string or bytes: its length.
    Bytes,
    /// A repeated string: each occurrence is one more `String`.
    EachString,
    /// A repeated number (`u64` or `f64`), packed or not; `fixed` when 8 bytes on the wire.
    Numbers { fixed: bool },
    /// A number, or a field the schema does not have (skipped by prost too).
    Nothing,
}

impl Message {
    /// Its size in memory (as an element of a `Vec`), bytes.
    fn size(self) -> u64 {
        use otel::{common::v1 as common, logs::v1 as logs, metrics::v1 as metrics};
        use otel::{resource::v1 as resource, trace::v1 as trace};
        let bytes = match self {
            Self::LogsRequest | Self::MetricsRequest | Self::TracesRequest => {
                size_of::<otel::collector::logs::v1::ExportLogsServiceRequest>()
            }
            Self::ResourceLogs => size_of::<logs::ResourceLogs>(),
            Self::ResourceMetrics => size_of::<metrics::ResourceMetrics>(),
            Self::ResourceSpans => size_of::<trace::ResourceSpans>(),
            Self::ScopeLogs => size_of::<logs::ScopeLogs>(),
            Self::ScopeMetrics => size_of::<metrics::ScopeMetrics>(),
            Self::ScopeSpans => size_of::<trace::ScopeSpans>(),
            Self::LogRecord => size_of::<logs::LogRecord>(),
            Self::Metric => size_of::<metrics::Metric>(),
            Self::Span => size_of::<trace::Span>(),
            Self::NumberPoints => size_of::<metrics::Sum>(),
            Self::Histogram => size_of::<metrics::Histogram>(),
            Self::ExponentialHistogram => size_of::<metrics::ExponentialHistogram>(),
            Self::Summary => size_of::<metrics::Summary>(),
            Self::NumberPoint => size_of::<metrics::NumberDataPoint>(),
            Self::HistogramPoint => size_of::<metrics::HistogramDataPoint>(),
            Self::ExponentialHistogramPoint => size_of::<metrics::ExponentialHistogramDataPoint>(),
            Self::Buckets => size_of::<metrics::exponential_histogram_data_point::Buckets>(),
            Self::SummaryPoint => size_of::<metrics::SummaryDataPoint>(),
            Self::Quantile => size_of::<metrics::summary_data_point::ValueAtQuantile>(),
            Self::Exemplar => size_of::<metrics::Exemplar>(),
            Self::SpanEvent => size_of::<trace::span::Event>(),
            Self::SpanLink => size_of::<trace::span::Link>(),
            Self::Status => size_of::<trace::Status>(),
            Self::Resource => size_of::<resource::Resource>(),
            Self::Scope => size_of::<common::InstrumentationScope>(),
            Self::EntityRef => size_of::<common::EntityRef>(),
            Self::KeyValue => size_of::<common::KeyValue>(),
            Self::AnyValue => size_of::<common::AnyValue>(),
            Self::ArrayValue => size_of::<common::ArrayValue>(),
            Self::KeyValueList => size_of::<common::KeyValueList>(),
        };
        bytes as u64
    }

    /// The field `tag` of this message (the `.proto` files' numbers).
    fn field(self, tag: u32) -> Field {
        use Field::{Bytes, Each, EachString, Nothing, Numbers, One};
        use Message as M;
        match (self, tag) {
            (M::LogsRequest, 1) => Each(M::ResourceLogs),
            (M::MetricsRequest, 1) => Each(M::ResourceMetrics),
            (M::TracesRequest, 1) => Each(M::ResourceSpans),
            (M::ResourceLogs | M::ResourceMetrics | M::ResourceSpans, 1) => One(M::Resource),
            (M::ResourceLogs, 2) => Each(M::ScopeLogs),
            (M::ResourceMetrics, 2) => Each(M::ScopeMetrics),
            (M::ResourceSpans, 2) => Each(M::ScopeSpans),
            (M::ScopeLogs | M::ScopeMetrics | M::ScopeSpans, 1) => One(M::Scope),
            (M::ScopeLogs, 2) => Each(M::LogRecord),
            (M::ScopeMetrics, 2) => Each(M::Metric),
            (M::ScopeSpans, 2) => Each(M::Span),
            (
                M::ResourceLogs
                | M::ResourceMetrics
                | M::ResourceSpans
                | M::ScopeLogs
                | M::ScopeMetrics
                | M::ScopeSpans,
                3,
            ) => Bytes,
            (M::Resource, 1) | (M::Scope, 3) => Each(M::KeyValue),
            (M::Resource, 3) => Each(M::EntityRef),
            (M::Scope | M::EntityRef, 1 | 2) => Bytes,
            (M::EntityRef, 3 | 4) => EachString,
            (M::KeyValue, 1) | (M::AnyValue, 1 | 7) => Bytes,
            (M::KeyValue, 2) => One(M::AnyValue),
            (M::AnyValue, 5) => One(M::ArrayValue),
            (M::AnyValue, 6) => One(M::KeyValueList),
            (M::ArrayValue, 1) => Each(M::AnyValue),
            (M::KeyValueList, 1) => Each(M::KeyValue),
            (M::LogRecord, 3 | 9 | 10 | 12) => Bytes,
            (M::LogRecord, 5) => One(M::AnyValue),
            (M::LogRecord, 6) => Each(M::KeyValue),
            (M::Metric, 1..=3) => Bytes,
            (M::Metric, 12) => Each(M::KeyValue),
            (M::Metric, 5 | 7) => One(M::NumberPoints),
            (M::Metric, 9) => One(M::Histogram),
            (M::Metric, 10) => One(M::ExponentialHistogram),
            (M::Metric, 11) => One(M::Summary),
            (M::NumberPoints, 1) => Each(M::NumberPoint),
            (M::Histogram, 1) => Each(M::HistogramPoint),
            (M::ExponentialHistogram, 1) => Each(M::ExponentialHistogramPoint),
            (M::Summary, 1) => Each(M::SummaryPoint),
            (M::NumberPoint | M::SummaryPoint, 7)
            | (M::HistogramPoint, 9)
            | (M::ExponentialHistogramPoint, 1)
            | (M::Exemplar, 7) => Each(M::KeyValue),
            (M::NumberPoint, 5) | (M::HistogramPoint, 8) | (M::ExponentialHistogramPoint, 11) => {
                Each(M::Exemplar)
            }
            (M::HistogramPoint, 6 | 7) => Numbers { fixed: true },
            (M::ExponentialHistogramPoint, 8 | 9) => One(M::Buckets),
            (M::Buckets, 2) => Numbers { fixed: false },
            (M::SummaryPoint, 6) => Each(M::Quantile),
            (M::Exemplar, 4 | 5) => Bytes,
            (M::Span, 1..=5) => Bytes,
            (M::Span, 9) | (M::SpanEvent, 3) | (M::SpanLink, 4) => Each(M::KeyValue),
            (M::Span, 11) => Each(M::SpanEvent),
            (M::Span, 13) => Each(M::SpanLink),
            (M::Span, 15) => One(M::Status),
            (M::SpanEvent, 2) | (M::SpanLink, 1..=3) | (M::Status, 2) => Bytes,
            _ => Nothing,
        }
    }
}

/// What decoding a protobuf request allocates, about ([`protobuf_estimate`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Estimate {
    /// The whole request, bytes.
    pub(super) bytes: u64,
    /// The largest item with its resource and scope, bytes: the split copies one item at a
    /// time with them (a metric is copied whole for each of its data points).
    pub(super) largest_item_bytes: u64,
}

/// About how many bytes prost allocates to decode `body` as an `Export*ServiceRequest` of
/// `signal`, from a walk of its wire format that allocates nothing. The walk stops early once
/// the estimate passes `budget` (the answer is then above it).
///
/// # Errors
/// [`WireError`] for bytes prost would refuse as well: a bad key or varint, a field longer
/// than its message, nesting deeper than prost's limit.
pub(super) fn protobuf_estimate(
    signal: Signal,
    body: &[u8],
    budget: u64,
) -> Result<Estimate, WireError> {
    let top = match signal {
        Signal::Logs => Message::LogsRequest,
        Signal::Metrics => Message::MetricsRequest,
        Signal::Traces => Message::TracesRequest,
    };
    let mut bytes = 0;
    let largest_item_bytes = walk(top, body, 0, budget, &mut bytes)?;
    Ok(Estimate {
        bytes,
        largest_item_bytes,
    })
}

impl Message {
    /// Whether the split copies this message whole into each record made from it.
    fn is_item(self) -> bool {
        matches!(self, Self::LogRecord | Self::Metric | Self::Span)
    }

    /// Whether the split copies this message into every record of the items below it.
    fn is_shared(self) -> bool {
        matches!(self, Self::Resource | Self::Scope)
    }
}

/// Adds to `bytes` what decoding `buf` as `message` allocates; returns the largest item below
/// it with the resource and scope it is copied with (0 below an item).
fn walk(
    message: Message,
    mut buf: &[u8],
    depth: u32,
    budget: u64,
    bytes: &mut u64,
) -> Result<u64, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep { limit: MAX_DEPTH });
    }
    // The repeated fields (by tag; every tag of the schema is below 32) that have their first
    // element in this message.
    let mut started = 0u32;
    let (mut shared, mut largest) = (0, 0);
    while !buf.is_empty() && *bytes <= budget {
        let (tag, wire_type) = decode_key(&mut buf)?;
        let field = message.field(tag);
        let first = matches!(
            field,
            Field::Each(_) | Field::EachString | Field::Numbers { .. }
        ) && tag < 32
            && started & (1 << tag) == 0;
        if first {
            started |= 1 << tag;
        }
        if wire_type != WireType::LengthDelimited {
            // An unpacked number is one element; anything else of this wire type allocates
            // nothing (a known field with another wire type is an error prost reports).
            if let Field::Numbers { .. } = field
                && matches!(wire_type, WireType::Varint | WireType::SixtyFourBit)
            {
                *bytes += elements(8, 1, first);
            }
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
            continue;
        }
        let len = decode_varint(&mut buf)?;
        let value =
            usize::try_from(len)
                .ok()
                .and_then(|n| buf.get(..n))
                .ok_or(WireError::Truncated {
                    len,
                    left: buf.len(),
                })?;
        buf = &buf[value.len()..];
        let before = *bytes;
        let inner = match field {
            Field::Each(inner) => {
                *bytes += elements(inner.size(), 1, first);
                inner
            }
            Field::One(inner) => inner,
            Field::Bytes => {
                *bytes += string(len);
                continue;
            }
            Field::EachString => {
                *bytes += elements(size_of::<String>() as u64, 1, first) + string(len);
                continue;
            }
            Field::Numbers { fixed } => {
                let count = if fixed {
                    len / 8
                } else {
                    value.iter().filter(|b| **b < 0x80).count() as u64
                };
                *bytes += elements(8, count, first);
                continue;
            }
            Field::Nothing => continue,
        };
        let below = walk(inner, value, depth + 1, budget, bytes)?;
        let added = *bytes - before;
        if inner.is_shared() {
            shared += added;
        } else if inner.is_item() {
            largest = largest.max(added);
        } else {
            largest = largest.max(below);
        }
    }
    Ok(if largest == 0 { 0 } else { shared + largest })
}

/// Open arrays and objects the JSON walk follows; serde_json refuses nesting past 128, before
/// the walk stops counting.
const MAX_JSON_DEPTH: usize = 256;

/// The size in memory of the largest OTLP message an element of a JSON array can be, bytes.
const LARGEST_MESSAGE_BYTES: u64 = size_of::<otel::trace::v1::Span>() as u64;

/// What serde buffers per JSON value inside a struct with a flattened field (`AnyValue`,
/// `Metric`, data points, exemplars are decoded through serde's `Content`), bytes.
const CONTENT_BYTES: u64 = 32;

/// The size in memory of an element of the OTLP/JSON array under `key`, bytes (the largest
/// message's for keys the schema does not have).
fn json_element_bytes(key: &[u8]) -> u64 {
    use Message as M;
    let message = match key {
        b"resourceLogs" => M::ResourceLogs,
        b"resourceMetrics" => M::ResourceMetrics,
        b"resourceSpans" => M::ResourceSpans,
        b"scopeLogs" => M::ScopeLogs,
        b"scopeMetrics" => M::ScopeMetrics,
        b"scopeSpans" => M::ScopeSpans,
        b"logRecords" => M::LogRecord,
        b"metrics" => M::Metric,
        b"spans" => M::Span,
        b"dataPoints" => M::ExponentialHistogramPoint,
        b"attributes" | b"filteredAttributes" | b"metadata" | b"values" => M::KeyValue,
        b"exemplars" => M::Exemplar,
        b"quantileValues" => M::Quantile,
        b"events" => M::SpanEvent,
        b"links" => M::SpanLink,
        b"entityRefs" => M::EntityRef,
        b"bucketCounts" | b"explicitBounds" => return 8,
        b"idKeys" | b"descriptionKeys" => return size_of::<String>() as u64,
        _ => return LARGEST_MESSAGE_BYTES,
    };
    message.size()
}

/// About how many bytes serde allocates to decode `body` as an OTLP/JSON request, from one
/// pass over its bytes that allocates nothing but a stack of the open arrays' element sizes
/// (at most [`MAX_JSON_DEPTH`]; past it serde has refused the body already, and what it
/// allocated until then is counted):
/// each array element costs its message's size twice (a `Vec` holds up to twice its length),
/// each string value its length (keys are not kept), each object and member what serde's
/// `Content` buffer takes. Stops early once the estimate passes `budget`. Bytes that are not
/// JSON are estimated all the same; serde refuses them afterwards.
pub(super) fn json_estimate(body: &[u8], budget: u64) -> u64 {
    // Element sizes of the open arrays; 0 for an open object.
    let mut open: Vec<u64> = Vec::new();
    let mut bytes = 0u64;
    let mut i = 0;
    // The last string, and what it was counted as (a key once `:` follows: not kept).
    let mut last_string: &[u8] = b"";
    let mut last_cost = 0;
    while i < body.len() && bytes <= budget {
        match body[i] {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(body.len());
                last_string = &body[start..end];
                last_cost = string((end - start) as u64);
                bytes += last_cost;
                i += 1;
                continue;
            }
            b'{' | b'[' if open.len() >= MAX_JSON_DEPTH => return bytes,
            b'{' => {
                bytes += 2 * CONTENT_BYTES;
                open.push(0);
            }
            b'[' => {
                let element = json_element_bytes(last_string);
                bytes += elements(element + CONTENT_BYTES, 1, true);
                open.push(element);
            }
            b'}' | b']' => {
                open.pop();
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b':' => bytes = bytes.saturating_sub(last_cost) + 2 * CONTENT_BYTES,
            b',' => {
                if let Some(element) = open.last().filter(|e| **e > 0) {
                    bytes += elements(element + CONTENT_BYTES, 1, false);
                }
            }
            _ => {}
        }
        last_cost = 0;
        i += 1;
    }
    bytes
}

/// About how many bytes splitting `request` into records takes, bytes: per item a
/// [`crate::model::Record`] and its encoding, and three copies of the item with its resource
/// and scope (the record's `raw`, its encoding, and the inbox frames).
pub(super) fn split_estimate(request: &Request) -> u64 {
    let per_record = 2 * size_of::<crate::model::Record>() as u64
        + 2 * size_of::<Vec<u8>>() as u64
        + 4 * ALLOCATION_OVERHEAD;
    (receive::item_count(request) as u64)
        .saturating_mul(per_record)
        .saturating_add(receive::split_bytes(request).saturating_mul(3))
}

#[cfg(test)]
mod tests;
