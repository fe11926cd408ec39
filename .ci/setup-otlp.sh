# Sourced by .ci/run: the official OpenTelemetry protobuf bindings for Python, in a virtualenv,
# so tests/otlp_*.rs can check `ctrace export --format otlp-json` with the reference parser.
# Exports CTRACE_OTLP_PYTHON (unless already set).
if [ -z "${CTRACE_OTLP_PYTHON:-}" ]; then
  ctrace_otlp_venv="${TMPDIR:-/tmp}/ctrace-ci-otlp"
  if [ ! -x "$ctrace_otlp_venv/bin/python" ] \
    || ! "$ctrace_otlp_venv/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
    python3 -m venv "$ctrace_otlp_venv"
    "$ctrace_otlp_venv/bin/pip" install -q 'opentelemetry-proto>=1.20'
  fi
  export CTRACE_OTLP_PYTHON="$ctrace_otlp_venv/bin/python"
  unset ctrace_otlp_venv
fi
