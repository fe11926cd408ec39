//! The estimates against what decoding holds, for requests shaped like Claude Code's and
//! for the hostile shapes; the walk against prost on damaged and arbitrary bytes.

use super::*;
use crate::otlp::Encoding;
use prost::Message as _;

fn field(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(tag, WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// `n` empty log records in one scope of one resource: 2 bytes each on the wire.
fn empty_log_records(n: usize) -> Vec<u8> {
    field(1, &field(2, &b"\x12\x00".repeat(n)))
}

/// The estimate is at least what the decoded request holds (its messages and strings),
/// for requests shaped like Claude Code's, and for the hostile shapes.
#[test]
fn estimates_cover_the_decoded_size() {
    use otel::common::v1::any_value::Value;
    let kv = |k: &str, v: Value| crate::otlp::key_value(k, v);
    let record = otel::logs::v1::LogRecord {
        time_unix_nano: 1,
        event_name: "claude_code.api_request".into(),
        attributes: vec![
            kv("session.id", Value::StringValue("s".repeat(36))),
            kv("model", Value::StringValue("claude-sonnet-4-5".into())),
            kv("cost_usd", Value::DoubleValue(0.1)),
            kv("input_tokens", Value::IntValue(10)),
        ],
        ..Default::default()
    };
    let request = otel::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![otel::logs::v1::ResourceLogs {
            scope_logs: vec![otel::logs::v1::ScopeLogs {
                log_records: vec![record; 512],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = request.encode_to_vec();
    let estimate = protobuf_estimate(Signal::Logs, &body, u64::MAX)
        .unwrap()
        .bytes;
    // 512 records of 184 bytes, 4 attributes of 64 bytes each, 8 strings each.
    let held = 512 * (184 + 4 * 64 + 36 + 17 + 10 + 5 + 8 + 12 + 23);
    assert!(estimate >= held, "{estimate} < {held}");
    assert!(
        estimate < 10 * body.len() as u64,
        "{estimate} for {}",
        body.len()
    );
    let json = serde_json::to_vec(&request).unwrap();
    let from_json = json_estimate(&json, u64::MAX);
    assert!(from_json >= held, "{from_json} < {held}");
    assert!(
        from_json < 20 * json.len() as u64,
        "{from_json} for {}",
        json.len()
    );

    let hostile = empty_log_records(1000);
    let estimate = protobuf_estimate(Signal::Logs, &hostile, u64::MAX)
        .unwrap()
        .bytes;
    assert!(estimate >= 1000 * 2 * 184, "{estimate}");
    let json = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
        vec!["{}"; 1000].join(",")
    );
    assert!(json_estimate(json.as_bytes(), u64::MAX) >= 1000 * 2 * 184);
}

/// The walk stops once over the budget, and refuses what prost refuses.
#[test]
fn walks_stop_at_the_budget_and_at_bad_bytes() {
    let hostile = empty_log_records(1_000_000);
    let estimate = protobuf_estimate(Signal::Logs, &hostile, 1 << 20)
        .unwrap()
        .bytes;
    assert!(estimate > 1 << 20 && estimate < 2 << 20, "{estimate}");
    // A field longer than the body.
    let mut short = field(1, &field(2, b"\x12\x00"));
    short.truncate(short.len() - 1);
    assert!(matches!(
        protobuf_estimate(Signal::Logs, &short, u64::MAX),
        Err(WireError::Truncated { .. })
    ));
    assert!(protobuf_estimate(Signal::Logs, b"\xff\xff\xff\xff garbage", u64::MAX).is_err());
    // AnyValue.array_value → ArrayValue.values, 2000 deep.
    let mut inner = Vec::new();
    for _ in 0..2_000 {
        inner = field(5, &field(1, &inner));
    }
    for tag in [5, 2, 2, 1] {
        inner = field(tag, &inner);
    }
    assert!(matches!(
        protobuf_estimate(Signal::Logs, &inner, u64::MAX),
        Err(WireError::TooDeep { .. })
    ));
}

/// A JSON body nested deeper than serde decodes costs the walk a bounded stack.
#[test]
fn the_json_walk_stops_past_serdes_depth() {
    let deep = "[".repeat(1 << 20);
    let estimate = json_estimate(deep.as_bytes(), u64::MAX);
    assert!(estimate < 1 << 20, "{estimate}");
    assert!(Request::decode(Signal::Logs, Encoding::Json, deep.as_bytes()).is_err());
}

/// Around prost's recursion limit the walk accepts every request prost decodes.
#[test]
fn the_depth_limit_is_prosts() {
    for depth in 90..110 {
        let mut inner = Vec::new();
        for _ in 0..depth {
            inner = field(5, &field(1, &inner));
        }
        for tag in [5, 2, 2, 1] {
            inner = field(tag, &inner);
        }
        if Request::decode(Signal::Logs, Encoding::Protobuf, &inner).is_ok() {
            assert!(
                protobuf_estimate(Signal::Logs, &inner, u64::MAX).is_ok(),
                "{depth}"
            );
        }
    }
}

/// The largest item is counted with the resource and scope it is copied with.
#[test]
fn the_largest_item_carries_its_resource_and_scope() {
    let resource = field(1, &b"\x0a\x00".repeat(1000));
    let scope = field(1, &field(1, b"name"));
    let small = field(2, b"");
    let large = field(2, &b"\x32\x00".repeat(100));
    let body = field(
        1,
        &[resource, field(2, &[scope, small, large].concat())].concat(),
    );
    let estimate = protobuf_estimate(Signal::Logs, &body, u64::MAX).unwrap();
    let attribute = 2 * size_of::<otel::common::v1::KeyValue>() as u64;
    assert!(
        estimate.largest_item_bytes > 1100 * attribute
            && estimate.largest_item_bytes < estimate.bytes,
        "{estimate:?}"
    );
    let metric = field(2, &field(5, &b"\x0a\x00".repeat(50)));
    let body = field(1, &field(2, &metric));
    let estimate = protobuf_estimate(Signal::Metrics, &body, u64::MAX).unwrap();
    // A metric is copied whole for each of its points.
    let point = 2 * size_of::<otel::metrics::v1::NumberDataPoint>() as u64;
    assert!(estimate.largest_item_bytes > 50 * point, "{estimate:?}");
}

/// One request of each signal with every kind of field the schema lists.
fn full_requests() -> Vec<(Signal, Vec<u8>)> {
    use otel::common::v1::any_value::Value;
    use otel::metrics::v1 as m;
    let kv = |k: &str, v: Value| crate::otlp::key_value(k, v);
    let attributes = vec![
        kv("s", Value::StringValue("text".into())),
        kv("b", Value::BytesValue(vec![1, 2])),
        kv(
            "a",
            Value::ArrayValue(otel::common::v1::ArrayValue {
                values: vec![otel::common::v1::AnyValue {
                    value: Some(Value::IntValue(3)),
                }],
            }),
        ),
        kv(
            "l",
            Value::KvlistValue(otel::common::v1::KeyValueList {
                values: vec![kv("k", Value::BoolValue(true))],
            }),
        ),
    ];
    let resource = Some(otel::resource::v1::Resource {
        attributes: attributes.clone(),
        entity_refs: vec![otel::common::v1::EntityRef {
            id_keys: vec!["id".into()],
            ..Default::default()
        }],
        ..Default::default()
    });
    let logs = otel::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![otel::logs::v1::ResourceLogs {
            resource: resource.clone(),
            scope_logs: vec![otel::logs::v1::ScopeLogs {
                log_records: vec![otel::logs::v1::LogRecord {
                    attributes: attributes.clone(),
                    trace_id: vec![7; 16],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let exemplar = m::Exemplar {
        filtered_attributes: attributes.clone(),
        span_id: vec![1; 8],
        ..Default::default()
    };
    let metric = |data| m::Metric {
        name: "m".into(),
        metadata: attributes.clone(),
        data: Some(data),
        ..Default::default()
    };
    let metrics = otel::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![m::ResourceMetrics {
            resource: resource.clone(),
            scope_metrics: vec![m::ScopeMetrics {
                metrics: vec![
                    metric(m::metric::Data::Sum(m::Sum {
                        data_points: vec![m::NumberDataPoint {
                            attributes: attributes.clone(),
                            exemplars: vec![exemplar.clone()],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    metric(m::metric::Data::Histogram(m::Histogram {
                        data_points: vec![m::HistogramDataPoint {
                            bucket_counts: vec![1, 2, 3],
                            explicit_bounds: vec![0.5, 1.5],
                            exemplars: vec![exemplar],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    metric(m::metric::Data::ExponentialHistogram(
                        m::ExponentialHistogram {
                            data_points: vec![m::ExponentialHistogramDataPoint {
                                positive: Some(m::exponential_histogram_data_point::Buckets {
                                    offset: 1,
                                    bucket_counts: vec![300, 1],
                                }),
                                ..Default::default()
                            }],
                            ..Default::default()
                        },
                    )),
                    metric(m::metric::Data::Summary(m::Summary {
                        data_points: vec![m::SummaryDataPoint {
                            quantile_values: vec![Default::default(); 2],
                            ..Default::default()
                        }],
                    })),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let traces = otel::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![otel::trace::v1::ResourceSpans {
            resource,
            scope_spans: vec![otel::trace::v1::ScopeSpans {
                spans: vec![otel::trace::v1::Span {
                    name: "s".into(),
                    attributes: attributes.clone(),
                    events: vec![otel::trace::v1::span::Event {
                        attributes: attributes.clone(),
                        ..Default::default()
                    }],
                    links: vec![otel::trace::v1::span::Link {
                        attributes,
                        ..Default::default()
                    }],
                    status: Some(otel::trace::v1::Status {
                        message: "ok".into(),
                        code: 1,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    vec![
        (Signal::Logs, logs.encode_to_vec()),
        (Signal::Metrics, metrics.encode_to_vec()),
        (Signal::Traces, traces.encode_to_vec()),
    ]
}

/// Damaged requests: where prost still decodes one, the walk accepts it.
#[test]
fn the_walk_accepts_damaged_requests_prost_decodes() {
    use proptest::prelude::*;
    let requests = full_requests();
    for (signal, body) in &requests {
        let request = Request::decode(*signal, Encoding::Protobuf, body).unwrap();
        let estimate = protobuf_estimate(*signal, body, u64::MAX).unwrap();
        assert!(estimate.bytes > 0 && estimate.largest_item_bytes > 0);
        assert!(split_estimate(&request) > 0);
    }
    proptest!(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() },
        |(which in 0..3usize, flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4))| {
        let (signal, mut bytes) = requests[which].clone();
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        let walked = protobuf_estimate(signal, &bytes, u64::MAX);
        if Request::decode(signal, Encoding::Protobuf, &bytes).is_ok() {
            prop_assert!(walked.is_ok(), "{walked:?}");
        }
    });
}

/// Whatever the bytes, the walk never panics, and where prost decodes a request the walk
/// accepts it too (the walk refuses nothing prost takes).
#[test]
fn the_walk_accepts_what_prost_decodes() {
    use proptest::prelude::*;
    proptest!(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() },
        |(bytes in prop::collection::vec(any::<u8>(), 0..300))| {
        for signal in [Signal::Logs, Signal::Metrics, Signal::Traces] {
            let walked = protobuf_estimate(signal, &bytes, u64::MAX);
            if Request::decode(signal, Encoding::Protobuf, &bytes).is_ok() {
                prop_assert!(walked.is_ok(), "{signal:?}: {walked:?}");
            }
        }
        let _ = json_estimate(&bytes, u64::MAX);
    });
}
