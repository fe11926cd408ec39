# Sourced by .ci/run: the official OpenTelemetry Python packages, in a virtualenv, as peers for the
# OTLP tests:
# - opentelemetry-proto: the reference parser that tests/otlp_*.rs check `ctrace export --format
#   otlp-json` with, and that tests/otlp/receiver.py decodes OTLP/HTTP requests with;
# - the SDK and its OTLP/HTTP exporters (protobuf, and the 0.x beta JSON one), which
#   tests/otlp/claude_telemetry.py sends Claude Code-shaped telemetry to `ctrace serve` with.
# The set is pinned: the JSON exporter's newest release (0.66b1) requires the 0.66b1 HTTP
# transport, which opentelemetry-exporter-otlp-proto-http 1.45.1 also uses (1.45.2 wants 0.66b2),
# and both accept opentelemetry-sdk 1.45.2. The JSON exporter needs Python >= 3.10.
# Exports CTRACE_OTLP_PYTHON (unless already set).
if [ -z "${CTRACE_OTLP_PYTHON:-}" ]; then
  ctrace_otlp_venv="${TMPDIR:-/tmp}/ctrace-ci-otlp"
  ctrace_otlp_pins="opentelemetry-proto==1.45.1 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.1 opentelemetry-exporter-otlp-json-http==0.66b1"
  # Every module the tests and tests/otlp/*.py import: a venv from before the SDK was added
  # fails this and is brought up to the pinned set.
  ctrace_otlp_check='
import opentelemetry.proto.collector.trace.v1.trace_service_pb2
import opentelemetry.proto.collector.logs.v1.logs_service_pb2
import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2
import google.protobuf.json_format
import opentelemetry.sdk._logs.export
import opentelemetry.sdk.metrics.export
import opentelemetry.sdk.resources
import opentelemetry.exporter.otlp.proto.http._log_exporter
import opentelemetry.exporter.otlp.proto.http.metric_exporter
import opentelemetry.exporter.otlp.proto.http.trace_exporter
import opentelemetry.exporter.otlp.json.http._log_exporter
import opentelemetry.exporter.otlp.json.http.metric_exporter
import opentelemetry.exporter.otlp.json.http.trace_exporter
import opentelemetry.exporter.otlp.common.http
'
  if [ ! -x "$ctrace_otlp_venv/bin/python" ] \
    || [ "$(cat "$ctrace_otlp_venv/.ctrace-pins" 2>/dev/null)" != "$ctrace_otlp_pins" ] \
    || ! "$ctrace_otlp_venv/bin/python" -c "$ctrace_otlp_check" 2>/dev/null; then
    python3 -m venv "$ctrace_otlp_venv"
    # shellcheck disable=SC2086 # the pins are separate words
    "$ctrace_otlp_venv/bin/pip" install -q --disable-pip-version-check $ctrace_otlp_pins
    "$ctrace_otlp_venv/bin/python" -c "$ctrace_otlp_check"
    printf '%s\n' "$ctrace_otlp_pins" >"$ctrace_otlp_venv/.ctrace-pins"
  fi
  export CTRACE_OTLP_PYTHON="$ctrace_otlp_venv/bin/python"
  unset ctrace_otlp_venv ctrace_otlp_pins ctrace_otlp_check
fi
