#!/usr/bin/env python3
"""Send telemetry shaped like Claude Code's own OpenTelemetry output, through the real SDK.

Claude Code (with CLAUDE_CODE_ENABLE_TELEMETRY=1) exports events as OTel log records and usage as
OTel metrics. This script reproduces that shape with the OpenTelemetry Python SDK
(LoggerProvider + BatchLogRecordProcessor, MeterProvider + PeriodicExportingMetricReader) and the
official OTLP/HTTP exporters, so tests of `ctrace serve` receive what a real exporter sends
(batching, gzip, retries on 429/502/503/504 honouring Retry-After, headers):

* resource: service.name=claude-code, service.version, os.type, os.version, host.arch (plus the
  SDK's telemetry.sdk.* and anything in OTEL_RESOURCE_ATTRIBUTES);
* logs from logger `com.anthropic.claude_code.events`: one record per event, body the string
  "claude_code.<event>", attribute event.name "<event>" (no severity, no OTLP eventName field,
  as Claude Code emits them), standard attributes session.id, user.id, organization.id,
  user.account_uuid, terminal.type, prompt.id (when known), event.timestamp (ISO 8601, also the
  record's timeUnixNano), event.sequence (int, counting from 0 across the run);
* metrics from meter `com.anthropic.claude_code`, DELTA temporality (Claude Code's default):
  claude_code.session.count (once per session), claude_code.token.usage (unit "tokens",
  type=input|output|cacheRead|cacheCreation, model) and claude_code.cost.usage (unit "USD",
  model), each also carrying the standard attributes, for every api_request with a model.

CLI:
  claude_telemetry.py --endpoint http://127.0.0.1:PORT [--protocol http/protobuf|http/json]
      [--gzip] [--header K=V]... [--batch K] [--timeout S]
      (--events FILE.jsonl | --synthetic N --session ID [--seed S] [--start ISO])
      [--dump-events FILE]
      [--value-style claude|typed] [--temporality delta|cumulative] [--no-metrics]

--endpoint is a base URL; /v1/logs and /v1/metrics are appended. --events reads JSONL, one event
a line: {"event": "api_request", "session_id": "...", "prompt_id": "..."?, "timestamp":
"2026-01-01T00:00:00.123Z"?, "attributes": {...}}; attributes keep their JSON types
(int/float/bool/str; lists and objects go as OTLP arrays and kvlists) and override the standard
attributes of the same name. --synthetic writes N varied events (user_prompt, tool_decision,
api_request, tool_result, api_error) for one session, the same for the same --seed; with
--value-style claude (default) their per-event values are strings, as Claude Code's event logger
emits them (status_code stays a number, as the current docs say), with --value-style typed
cost_usd is a double and counts are ints.

On exit prints one JSON line: {"logs": records exported successfully, "log_exports": export
calls, "metric_points": data points exported successfully, "metric_exports": export calls,
"failed": log records + metric points in failed exports}; exit status 1 when any export failed.

Tested against tests/otlp/receiver.py (protobuf and JSON, gzip on and off, batching, 503 +
Retry-After, 401): every record and data point arrives, in order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import random
import sys
import threading
import uuid

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

LOGGER_NAME = "com.anthropic.claude_code.events"
METER_NAME = "com.anthropic.claude_code"
DEFAULT_VERSION = "2.1.0"
MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"]
# $ per million tokens: input, output, cache read, cache creation.
PRICES = {
    "claude-sonnet-4-5-20250929": (3.0, 15.0, 0.30, 3.75),
    "claude-opus-4-1-20250805": (15.0, 75.0, 1.50, 18.75),
    "claude-haiku-4-5-20251001": (1.0, 5.0, 0.10, 1.25),
}
TOOLS = ["Bash", "Read", "Edit", "Write", "Grep", "Glob"]


# --------------------------------------------------------------------------- exporters


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs = 0
        self.log_exports = 0
        self.metric_points = 0
        self.metric_exports = 0
        self.failed = 0
        self.failed_exports = 0

    def as_dict(self) -> dict:
        return {
            "logs": self.logs,
            "log_exports": self.log_exports,
            "metric_points": self.metric_points,
            "metric_exports": self.metric_exports,
            "failed": self.failed,
        }


def count_points(metrics_data) -> int:
    points = 0
    for rm in metrics_data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points += len(metric.data.data_points)
    return points


def exporter_classes(protocol: str):
    """The (log exporter, metric exporter, compression enum) of the protocol's official package."""
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPLogExporter, OTLPMetricExporter, Compression.Gzip, Compression.NoCompression
    # opentelemetry-exporter-otlp-json-http: same layout, its log exporter module is private.
    from opentelemetry.exporter.otlp.common.http import Compression
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter

    return OTLPLogExporter, OTLPMetricExporter, Compression.GZIP, Compression.NONE


def make_exporters(args, stats: Stats):
    log_base, metric_base, gzip, none = exporter_classes(args.protocol)

    class CountingLogExporter(log_base):
        def export(self, batch):
            result = super().export(batch)
            with stats.lock:
                stats.log_exports += 1
                if result == LogRecordExportResult.SUCCESS:
                    stats.logs += len(batch)
                else:
                    stats.failed += len(batch)
                    stats.failed_exports += 1
            return result

    class CountingMetricExporter(metric_base):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            points = count_points(metrics_data)
            with stats.lock:
                stats.metric_exports += 1
                if result == MetricExportResult.SUCCESS:
                    stats.metric_points += points
                else:
                    stats.failed += points
                    stats.failed_exports += 1
            return result

    base = args.endpoint.rstrip("/")
    headers = dict(args.header)
    compression = gzip if args.gzip else none
    temporality = (
        AggregationTemporality.DELTA if args.temporality == "delta" else AggregationTemporality.CUMULATIVE
    )
    preferred = {
        Counter: temporality,
        UpDownCounter: AggregationTemporality.CUMULATIVE,
        Histogram: temporality,
        ObservableCounter: temporality,
        ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
        ObservableGauge: AggregationTemporality.CUMULATIVE,
    }
    logs = CountingLogExporter(
        endpoint=f"{base}/v1/logs", headers=headers, timeout=args.timeout, compression=compression
    )
    metrics = CountingMetricExporter(
        endpoint=f"{base}/v1/metrics",
        headers=headers,
        timeout=args.timeout,
        compression=compression,
        preferred_temporality=preferred,
    )
    return logs, metrics


# --------------------------------------------------------------------------- events


def iso_ms(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> dt.datetime:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t


def to_ns(t: dt.datetime) -> int:
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def read_events(path: str) -> list[dict]:
    events = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            event = json.loads(line)
            if not isinstance(event, dict) or not isinstance(event.get("event"), str):
                sys.exit(f'{path}:{number}: not an event object with an "event" name')
            if not isinstance(event.get("session_id"), str):
                sys.exit(f'{path}:{number}: no "session_id"')
            if not isinstance(event.get("attributes", {}), dict):
                sys.exit(f'{path}:{number}: "attributes" is not an object')
            events.append(event)
    return events


def synthetic_events(n: int, session: str, seed: int, style: str, start: dt.datetime) -> list[dict]:
    """N deterministic events of one session: prompts, each followed by a few model turns."""
    rng = random.Random(f"{seed}:{session}")

    def value(v):
        # Claude Code's event logger takes string metadata; `typed` keeps native numbers.
        if style == "claude" and not isinstance(v, str):
            return str(v).lower() if isinstance(v, bool) else str(v)
        return v

    def rid(prefix: str, width: int) -> str:
        return prefix + "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(width))

    events: list[dict] = []
    t = start
    prompt_id = None
    model = rng.choice(MODELS)
    while len(events) < n:
        if prompt_id is None or rng.random() < 0.2:
            prompt_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            model = rng.choice(MODELS)
            text = rng.choice(
                ["fix the failing test", "explain this module", "add a --json flag", "why is CI red?"]
            )
            kind, attrs = "user_prompt", {"prompt_length": value(len(text)), "prompt": text}
        else:
            kind = rng.choices(
                ["api_request", "tool_decision", "tool_result", "api_error"], weights=[4, 2, 3, 1]
            )[0]
            if kind == "api_request":
                tokens = {
                    "input_tokens": rng.randint(1, 4000),
                    "output_tokens": rng.randint(1, 2000),
                    "cache_read_tokens": rng.choice([0, rng.randint(1000, 90000)]),
                    "cache_creation_tokens": rng.choice([0, rng.randint(100, 9000)]),
                }
                p = PRICES[model]
                cost = (
                    tokens["input_tokens"] * p[0]
                    + tokens["output_tokens"] * p[1]
                    + tokens["cache_read_tokens"] * p[2]
                    + tokens["cache_creation_tokens"] * p[3]
                ) / 1e6
                attrs = {
                    "model": model,
                    "cost_usd": value(round(cost, 6)),
                    "duration_ms": value(rng.randint(300, 30000)),
                    **{k: value(v) for k, v in tokens.items()},
                    "request_id": rid("req_011", 21),
                    "speed": "normal",
                    "query_source": rng.choice(
                        ["repl_main_thread", "repl_main_thread", "compact", "Explore"]
                    ),
                }
                if attrs["query_source"] == "Explore":
                    attrs["agent.name"] = "Explore"
            elif kind == "api_error":
                status = rng.choice([429, 500, 529])
                attrs = {
                    "model": model,
                    "error": {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status],
                    "status_code": status,  # a number, as the docs say, in both styles
                    "duration_ms": value(rng.randint(100, 5000)),
                    "attempt": value(rng.randint(1, 4)),
                    "request_id": rid("req_011", 21),
                    "speed": "normal",
                    "query_source": "repl_main_thread",
                }
            else:
                tool = rng.choice(TOOLS)
                tool_use_id = rid("toolu_01", 22)
                if kind == "tool_decision":
                    decision = rng.choices(["accept", "reject"], weights=[9, 1])[0]
                    attrs = {
                        "tool_name": tool,
                        "tool_use_id": tool_use_id,
                        "decision": decision,
                        "source": "config" if decision == "accept" else "user_reject",
                        "tool_source": "builtin",
                    }
                else:
                    success = rng.random() < 0.85
                    attrs = {
                        "tool_name": tool,
                        "tool_use_id": tool_use_id,
                        "success": value(success),
                        "duration_ms": value(rng.randint(1, 20000)),
                        "decision_type": "accept",
                        "decision_source": rng.choice(["config", "user_temporary", "user_permanent"]),
                        "tool_result_size_bytes": value(rng.randint(0, 50000)),
                    }
                    if not success:
                        attrs["error_type"] = "ShellError"
                        attrs["error"] = "Command failed with exit code 1"
                    if tool == "Bash":
                        cmd = rng.choice(["cargo test", "git status", "ls -la"])
                        attrs["tool_parameters"] = json.dumps(
                            {"bash_command": cmd.split()[0], "full_command": cmd, "description": "run " + cmd}
                        )
        t = t + dt.timedelta(milliseconds=rng.randint(5, 20000))
        events.append(
            {
                "event": kind,
                "session_id": session,
                "prompt_id": prompt_id,
                "timestamp": iso_ms(t),
                "attributes": attrs,
            }
        )
    return events


def number(v) -> float | None:
    """A numeric attribute as Claude Code may send it: a number or a decimal string."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v) if any(c in v for c in ".eE") else int(v)
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- main


def parse_header(text: str) -> tuple[str, str]:
    key, sep, val = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"header {text!r} is not K=V")
    return key.strip(), val.strip()


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="base URL; /v1/logs and /v1/metrics are appended")
    parser.add_argument("--protocol", choices=["http/protobuf", "http/json"], default="http/protobuf")
    parser.add_argument("--gzip", action="store_true", help="Content-Encoding: gzip (off by default)")
    parser.add_argument("--header", type=parse_header, action="append", default=[], metavar="K=V")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", metavar="FILE", help="JSONL file of events to send, in order")
    source.add_argument("--synthetic", type=int, metavar="N", help="generate N events for --session")
    parser.add_argument("--session", help="session id for --synthetic")
    parser.add_argument("--seed", type=int, default=0, help="seed for --synthetic (default 0)")
    parser.add_argument("--start", default="2026-01-01T00:00:00.000Z", help="first synthetic timestamp")
    parser.add_argument("--dump-events", metavar="FILE", help="also write the events sent, as --events JSONL")
    parser.add_argument("--value-style", choices=["claude", "typed"], default="claude")
    parser.add_argument("--batch", type=int, default=512, help="max log records per export (default 512)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="per-export timeout, seconds, retries included"
    )
    parser.add_argument("--temporality", choices=["delta", "cumulative"], default="delta")
    parser.add_argument("--no-metrics", action="store_true", help="send logs only")
    parser.add_argument("--service-version", default=DEFAULT_VERSION)
    parser.add_argument(
        "--user-id", default="0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
    )
    parser.add_argument("--organization-id", default="5b0f8a52-3c9e-4f27-9d1a-6c2e8b7a4d10")
    parser.add_argument("--account-uuid", default="8e1d6c4a-0b2f-4a7e-b3c5-9f6d2e1a7c84")
    parser.add_argument("--terminal-type", default="tmux")
    args = parser.parse_args()

    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if args.synthetic is not None:
        if not args.session:
            parser.error("--synthetic needs --session")
        events = synthetic_events(
            args.synthetic, args.session, args.seed, args.value_style, parse_iso(args.start)
        )
    else:
        events = read_events(args.events)
    if args.dump_events:
        with open(args.dump_events, "w", encoding="utf-8") as f:
            for event in events:
                f.write(json.dumps(event) + "\n")

    stats = Stats()
    log_exporter, metric_exporter = make_exporters(args, stats)
    resource = Resource.create(
        {
            "service.name": "claude-code",
            "service.version": args.service_version,
            "os.type": {"Linux": "linux", "Darwin": "darwin", "Windows": "windows"}.get(
                platform.system(), platform.system().lower()
            ),
            "os.version": platform.release(),
            "host.arch": host_arch(),
        }
    )

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(
            log_exporter,
            schedule_delay_millis=200,
            max_export_batch_size=args.batch,
            # Large enough that the queue never drops a record, however many the run sends.
            max_queue_size=max(2048, len(events) + 1, args.batch),
        )
    )
    logger = logger_provider.get_logger(LOGGER_NAME, args.service_version)

    meter_provider = None
    if not args.no_metrics:
        # An infinite interval starts no timer: exactly one export, at force_flush below.
        reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=math.inf)
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = meter_provider.get_meter(METER_NAME, args.service_version)
        session_count = meter.create_counter(
            "claude_code.session.count", description="Count of CLI sessions started"
        )
        token_usage = meter.create_counter(
            "claude_code.token.usage", unit="tokens", description="Number of tokens used"
        )
        cost_usage = meter.create_counter(
            "claude_code.cost.usage", unit="USD", description="Cost of the Claude Code session"
        )

    standard_base = {
        "user.id": args.user_id,
        "organization.id": args.organization_id,
        "user.account_uuid": args.account_uuid,
        "terminal.type": args.terminal_type,
    }
    sessions_seen: set[str] = set()
    for sequence, event in enumerate(events):
        name = event["event"]
        session = event["session_id"]
        when = parse_iso(event["timestamp"]) if event.get("timestamp") else dt.datetime.now(dt.timezone.utc)
        standard = {"session.id": session, **standard_base}
        attributes = {
            **standard,
            "event.name": name,
            "event.timestamp": event.get("timestamp") or iso_ms(when),
            "event.sequence": sequence,
        }
        if event.get("prompt_id"):
            attributes["prompt.id"] = event["prompt_id"]
        attributes.update(event.get("attributes", {}))
        logger.emit(timestamp=to_ns(when), body=f"claude_code.{name}", attributes=attributes)

        if meter_provider is None:
            continue
        if session not in sessions_seen:
            sessions_seen.add(session)
            session_count.add(1, {**standard, "start_type": "fresh"})
        attrs = event.get("attributes", {})
        model = attrs.get("model")
        if name == "api_request" and isinstance(model, str):
            for key, kind in [
                ("input_tokens", "input"),
                ("output_tokens", "output"),
                ("cache_read_tokens", "cacheRead"),
                ("cache_creation_tokens", "cacheCreation"),
            ]:
                n = number(attrs.get(key))
                if n is not None:
                    token_usage.add(int(n), {**standard, "type": kind, "model": model})
            cost = number(attrs.get("cost_usd"))
            if cost is not None:
                cost_usage.add(float(cost), {**standard, "model": model})

    logger_provider.force_flush()
    logger_provider.shutdown()
    if meter_provider is not None:
        meter_provider.force_flush()
        meter_provider.shutdown()

    print(json.dumps(stats.as_dict()), flush=True)
    return 1 if stats.failed or stats.failed_exports else 0


if __name__ == "__main__":
    sys.exit(main())
