#!/usr/bin/env bash
# The real InvokeAI, for tests/test_invokeai.py and the built-in UI profile `invokeai`.
#
#   scripts/invokeai.sh install       .invokeai/venv: InvokeAI 6.14.2 and PyPI's torch 2.13.0 / torchvision 0.28.0
#   scripts/invokeai.sh start [PORT]  InvokeAI on http://127.0.0.1:PORT (default 9090) with a random-weight
#                                     SD1.5-architecture model; prints the URL, PID in .invokeai/server.pid
#   scripts/invokeai.sh stop          stops the server .invokeai/server.pid names
#
# Then: pytest e2e/ --base-url URL --ui-profile invokeai --journey invokeai
# Environment: INVOKEAI_NICE (start: nice level, default 0), INVOKEAI_START_TIMEOUT_S (default 240),
# PYTHON (install: a Python 3.11 or 3.12, default python3), PIP_NO_CACHE_DIR, PIP_CERT.
#
# Pins: InvokeAI's `[cpu]` extra pins torch 2.7.1+cpu, which PyPI does not serve, and PyPI's
# torchvision is a CUDA build that needs PyPI's (CUDA) torch: a local +cpu torch makes
# invokeai-web die at import ("operator torchvision::nms does not exist"). PyPI's CUDA torch
# runs on the CPU when there is no GPU. pip is pointed at PyPI alone (no local find-links or
# extra indexes from pip's configuration); PIP_NO_CACHE_DIR and PIP_CERT are honoured.
# Everything lives under .invokeai/ (ignored by git): venv/, root/ (InvokeAI's root: config,
# database, outputs), models/random-sd15/, server.log, server.pid. Nothing is downloaded
# at start: the model is built here from random weights.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
HOME_DIR=$REPO/.invokeai
VENV=$HOME_DIR/venv
ROOT_DIR=$HOME_DIR/root
MODEL_DIR=$HOME_DIR/models/random-sd15
PID_FILE=$HOME_DIR/server.pid
LOG=$HOME_DIR/server.log

INVOKEAI_VERSION=6.14.2
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
NEED_GB=10  # the venv is 6.5 GB (torch's CUDA libraries); pip also unpacks 2.7 GB of wheels on the way
START_TIMEOUT_S=${INVOKEAI_START_TIMEOUT_S:-240}

say() { echo "invokeai.sh: $*"; }
die() { echo "invokeai.sh: $*" >&2; exit 2; }

python_for_install() {
  local py=${PYTHON:-python3}
  "$py" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' 2>/dev/null ||
    die "InvokeAI $INVOKEAI_VERSION needs Python 3.11 or 3.12; set PYTHON=/path/to/python3.11 and run again"
  echo "$py"
}

# True when the venv holds exactly the pinned versions (a local +cpu torch does not count).
installed() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$INVOKEAI_VERSION" "$TORCH_VERSION" "$TORCHVISION_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
want = dict(zip(("invokeai", "torch", "torchvision"), sys.argv[1:]))
sys.exit(any(version(name) != v for name, v in want.items()))
PY
}

install() {
  if installed; then
    say "InvokeAI $INVOKEAI_VERSION is installed in .invokeai/venv (torch $TORCH_VERSION, torchvision $TORCHVISION_VERSION)"
    return 0
  fi
  mkdir -p "$HOME_DIR"
  local free_gb
  free_gb=$(df -Pk "$HOME_DIR" | awk 'NR == 2 {printf "%.1f", $4 / 1048576}')
  if awk -v free="$free_gb" -v need="$NEED_GB" 'BEGIN {exit !(free < need)}'; then
    die "only $free_gb GB is free where .invokeai is; InvokeAI with PyTorch and its CUDA libraries needs about $NEED_GB GB there while it installs (6.5 GB once installed), so free some space and run again"
  fi
  local py started
  py=$(python_for_install)
  started=$(date +%s)
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  say "installing InvokeAI $INVOKEAI_VERSION with torch $TORCH_VERSION from PyPI into .invokeai/venv (about 4 GB to fetch)"
  # PyPI only: no pip configuration file (its find-links hold a +cpu torch), no local indexes.
  # `===` is exact: torch 2.13.0+cpu does not satisfy it.
  [ -n "${PIP_CERT:-}" ] || [ ! -f /etc/ssl/certs/ca-certificates.crt ] || export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT -u PIP_REQUIRE_VIRTUALENV \
    PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VENV/bin/python" -m pip install --quiet --index-url https://pypi.org/simple \
      --constraint scripts/invokeai-constraints.txt \
      "invokeai==$INVOKEAI_VERSION" "torch===$TORCH_VERSION" "torchvision===$TORCHVISION_VERSION" ||
    die "pip could not install InvokeAI $INVOKEAI_VERSION (see its output above)"
  installed || die "pip finished but .invokeai/venv does not hold invokeai $INVOKEAI_VERSION, torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION"
  "$VENV/bin/python" -c 'import torchvision.ops; import invokeai.app.api_app' >/dev/null 2>&1 ||
    die "InvokeAI $INVOKEAI_VERSION installed but does not import; run: .invokeai/venv/bin/python -c 'import invokeai.app.api_app'"
  say "installed in $(( $(date +%s) - started )) s; .invokeai/venv is $(du -sh "$VENV" | cut -f1)"
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

api() {  # api METHOD PATH [curl args]: the answer's body, or fails
  local method=$1 path=$2
  shift 2
  curl -sS --fail --max-time 10 -X "$method" "http://127.0.0.1:$PORT$path" "$@"
}

write_config() {
  mkdir -p "$ROOT_DIR"
  # InvokeAI rewrites this file when it migrates its schema and drops settings equal to the
  # defaults, so it is written afresh before every start.
  cat > "$ROOT_DIR/invokeai.yaml" <<EOF
# Internal metadata - do not edit:
schema_version: 4.0.3

# Written by scripts/invokeai.sh before each start.
host: 127.0.0.1
port: $PORT
# With compression on, socket.io's polling answered HTTP 500 here.
http_compression_level: 0
device: cpu
precision: float32
# No invocation cache: an identical request would be served from it, with no progress images.
node_cache_size: 0
EOF
}

build_model() {
  [ -f "$MODEL_DIR/model_index.json" ] && return 0
  say "building the random-weight SD1.5-architecture model in .invokeai/models/random-sd15"
  rm -rf "$MODEL_DIR"
  HF_HUB_OFFLINE=1 "$VENV/bin/python" scripts/invokeai_random_model.py "$MODEL_DIR" >"$HOME_DIR/model.log" 2>&1 || {
    tail -n 20 "$HOME_DIR/model.log" >&2
    die "could not build the random model (scripts/invokeai_random_model.py; its output is above)"
  }
}

install_model() {
  local models job id status
  models=$(api GET /api/v2/models/) || die "InvokeAI did not list its models (GET /api/v2/models/)"
  # Paths compared as real paths: the checkout may be reached through a link.
  if "$VENV/bin/python" -c 'import json, os, sys; real = os.path.realpath; sys.exit(not any(real(m.get("path") or "") == real(sys.argv[1]) for m in json.loads(sys.argv[2])["models"]))' \
       "$MODEL_DIR" "$models"; then
    return 0
  fi
  job=$(api POST "/api/v2/models/install?source=$MODEL_DIR&inplace=true" -H 'Content-Type: application/json' -d '{}') ||
    die "InvokeAI refused to install $MODEL_DIR (POST /api/v2/models/install)"
  id=$("$VENV/bin/python" -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$job")
  for _ in $(seq 1 120); do
    status=$(api GET "/api/v2/models/install/$id" | "$VENV/bin/python" -c 'import json, sys; j = json.load(sys.stdin); print(j["status"], j.get("error") or "")')
    case $status in
      completed*) say "installed the model random-sd15 through InvokeAI's model manager"; return 0 ;;
      error*|cancelled*) die "InvokeAI could not install the model: $status" ;;
    esac
    sleep 0.5
  done
  die "InvokeAI's model install job $id did not finish within 60 s"
}

start() {
  PORT=${1:-9090}
  [[ $PORT =~ ^[0-9]+$ ]] || die "the port must be a number, not '$PORT'"
  installed || die "InvokeAI is not installed; run scripts/invokeai.sh install first"
  local pid
  if pid=$(running_pid); then
    die "InvokeAI is already running (PID $pid, .invokeai/server.pid); scripts/invokeai.sh stop first"
  fi
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
    die "something already answers on 127.0.0.1:$PORT; pick another port: scripts/invokeai.sh start PORT"
  fi
  build_model
  write_config
  # Its own session: the server outlives this script and whoever ran it stops it by PID.
  # INVOKEAI_NICE (default 0) nices it. On 2 shared cores neither nice 10 nor one torch thread
  # brought the page's progress frames closer to a socket.io client's than nice 0 did.
  HF_HUB_OFFLINE=1 setsid nice -n "${INVOKEAI_NICE:-0}" "$VENV/bin/invokeai-web" --root "$ROOT_DIR" </dev/null >"$LOG" 2>&1 &
  pid=$!
  echo "$pid" > "$PID_FILE"
  local deadline=$(( $(date +%s) + START_TIMEOUT_S ))
  until api GET /api/v1/app/version >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 20 "$LOG" >&2
      die "InvokeAI exited while starting (the last lines of .invokeai/server.log are above)"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "InvokeAI did not answer on port $PORT within $START_TIMEOUT_S s; see .invokeai/server.log"
    fi
    sleep 0.5
  done
  # A model that cannot be installed leaves no server behind.
  ( install_model ) || { kill "$pid" 2>/dev/null || true; rm -f "$PID_FILE"; exit 2; }
  say "InvokeAI $(api GET /api/v1/app/version | sed 's/.*"version":"\([^"]*\)".*/\1/') is running (PID $pid, log .invokeai/server.log)"
  echo "http://127.0.0.1:$PORT"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PID_FILE"
    say "InvokeAI is not running"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; say "stopped InvokeAI (PID $pid)"; return 0; }
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  say "InvokeAI (PID $pid) did not stop within 30 s and was killed"
}

case ${1:-} in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: scripts/invokeai.sh install | start [PORT] | stop" >&2; exit 2 ;;
esac
