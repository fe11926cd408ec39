# Sourced by .ci/run. ccusage, the reference for `ctrace cost` (tests/views_ccusage_parity.rs
# compares `ctrace cost --by session --breakdown --json` with `ccusage session --offline --json`
# on the corpus), from npm into a cache directory.
if [ -z "${CTRACE_CCUSAGE:-}" ]; then
  ccusage_dir="${TMPDIR:-/tmp}/ctrace-ci-ccusage"
  if [ ! -x "$ccusage_dir/node_modules/.bin/ccusage" ]; then
    if command -v npm >/dev/null 2>&1; then
      mkdir -p "$ccusage_dir"
      npm install --silent --prefix "$ccusage_dir" ccusage@20.0.24 >/dev/null
    else
      echo "warning: npm not found; cannot install ccusage (the parity test will fail under CI=true)" >&2
    fi
  fi
  if [ -x "$ccusage_dir/node_modules/.bin/ccusage" ]; then
    export CTRACE_CCUSAGE="$ccusage_dir/node_modules/.bin/ccusage"
  fi
fi
