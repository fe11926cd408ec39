# Sourced by .ci/run. The real asciinema player (tests/asciicast_player.rs compares
# `asciinema cat` with `ctrace replay --no-timing`), from PyPI into a virtualenv.
if [ -z "${CTRACE_ASCIINEMA:-}" ]; then
  venv="${TMPDIR:-/tmp}/ctrace-ci-asciinema"
  if [ ! -x "$venv/bin/asciinema" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q asciinema==2.4.0
  fi
  export CTRACE_ASCIINEMA="$venv/bin/asciinema"
fi
