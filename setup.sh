#!/usr/bin/env bash
# Set up imagejourney on a fresh machine: a virtual environment (.venv) with every Python
# package, and a Chromium for Playwright. Safe to run again; fast when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup.sh: imagejourney needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 and run again" >&2
  exit 2
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# PyTorch from PyPI brings its CUDA libraries: .venv comes to 6.4 GB in all. Say so before pip
# runs out of space halfway.
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  free_gb=$(df -Pk .venv | awk 'NR == 2 {printf "%.1f", $4 / 1048576}')
  if awk -v free="$free_gb" 'BEGIN {exit !(free < 6.5)}'; then
    echo "setup.sh: only $free_gb GB is free where .venv is; the packages (PyTorch with its CUDA libraries among them) need about 6.5 GB there, so free some space and run again" >&2
    exit 2
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,docs,lint]" --constraint constraints.txt 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c 'import imagejourney, gradio, diffusers, playwright' || {
  echo "setup.sh: the Python packages did not install; see the pip output above" >&2
  exit 2
}

# Chromium: Playwright's own when installed, else the system's (Debian/Ubuntu package
# `chromium`), else try Playwright's download.
managed=$(.venv/bin/python - <<'PY'
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    print(p.chromium.executable_path)
PY
)
if [ -x "$managed" ]; then
  echo "setup.sh: using Playwright's Chromium ($managed)"
elif command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
  echo "setup.sh: using the system Chromium ($(command -v chromium || command -v chromium-browser))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup.sh: installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  .venv/bin/python -m playwright install chromium || {
    echo "setup.sh: no Chromium could be installed; install the 'chromium' package and run again" >&2
    exit 2
  }
fi

# Xvfb: `imagejourney bench fidelity` reads its ground truth off a virtual screen.
if ! command -v Xvfb >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing Debian's xvfb (the screen bench fidelity reads its ground truth from)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null
  else
    echo "setup.sh: Xvfb is missing; \`imagejourney bench fidelity\` needs it (apt-get install -y xvfb)"
  fi
fi
# PostgreSQL: the history store's tests start their own cluster (initdb/pg_ctl) in a temporary directory.
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing Debian's postgresql (the history store's tests run against a real server)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "setup.sh: PostgreSQL is missing; the history store's PostgreSQL tests need it (apt-get install -y postgresql)"
  fi
fi
echo "setup.sh: ready"
