# Sourced by .ci/run. The dashboard's end-to-end test (tests/serve_dashboard.rs runs
# tests/e2e/dashboard.mjs) drives Debian's Chromium with playwright-core: Chromium from apt,
# playwright-core from npm into a cache directory (never into the repository).
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get install -y -qq chromium >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; }
  else
    echo "warning: chromium not found and cannot be installed (the dashboard e2e test will fail under CI=true)" >&2
  fi
fi
if [ -z "${CTRACE_PLAYWRIGHT:-}" ]; then
  playwright_dir="${TMPDIR:-/tmp}/ctrace-ci-playwright"
  if [ ! -f "$playwright_dir/node_modules/playwright-core/package.json" ]; then
    if command -v npm >/dev/null 2>&1; then
      mkdir -p "$playwright_dir"
      npm install --silent --prefix "$playwright_dir" playwright-core@1.49.1 >/dev/null
    else
      echo "warning: npm not found; cannot install playwright-core (the dashboard e2e test will fail under CI=true)" >&2
    fi
  fi
  if [ -f "$playwright_dir/node_modules/playwright-core/package.json" ]; then
    export CTRACE_PLAYWRIGHT="$playwright_dir/node_modules"
  fi
fi
