#!/usr/bin/env bash
# Run every benchmark, one command each. Each writes its markdown to benchmarks/results/<name>.md
# (raw output of the last run, small text; docs/benchmarks.md is written from it by hand).
# Usage: bash benchmarks/run_all.sh [name ...]   (names: machine validation drift bootstrap serving pr_check)
# Slow: about an hour on 2 cores, most of it the 1M-row PR check. Benchmarks run one after another,
# never in parallel, so they do not steal each other's cores; still, a busy machine skews them: the
# load average is recorded in machine.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results
mkdir -p "$OUT"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
status=0

run() {  # run NAME CMD...: stdout -> results/NAME.md, headed by the command and the date
  local name=$1; shift
  echo "== $name: $*" >&2
  local start=$SECONDS
  { echo "<!-- $(date -u +%Y-%m-%dT%H:%M:%SZ) \$ $* -->"; "$@"; } > "$OUT/$name.md.tmp"
  local rc=$?
  mv "$OUT/$name.md.tmp" "$OUT/$name.md"
  echo "   rc=$rc in $((SECONDS - start)) s -> $OUT/$name.md" >&2
  [ "$rc" -eq 0 ] || status=1
}

machine() {
  echo "| fact | value |"
  echo "|---|---|"
  echo "| date (UTC) | $(date -u +%Y-%m-%d) |"
  echo "| CPU | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') |"
  echo "| cores (nproc) | $(nproc) |"
  echo "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
  echo "| load average before | $(cut -d' ' -f1-3 /proc/loadavg) |"
  echo "| kernel | $(uname -r) |"
  "$PY" - <<'EOF'
from gitops_ml.runinfo import library_versions
from importlib import metadata
v = library_versions()
for extra in ("pandera", "datacontract-cli", "duckdb", "dask", "fastapi", "uvicorn"):
    try:
        v[extra] = metadata.version(extra)
    except metadata.PackageNotFoundError:
        v[extra] = "not installed"
print("| versions | " + ", ".join(f"{k} {x}" for k, x in v.items()) + " |")
EOF
}

SELECTED=("$@")
sel() {  # sel NAME: true when no names were given or NAME is one of them
  [ ${#SELECTED[@]} -eq 0 ] && return 0
  local w; for w in "${SELECTED[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

sel machine    && run machine    machine
sel validation && run validation "$PY" benchmarks/validation_bench.py --rows 1000000 --repeat 3
sel drift      && run drift      "$PY" benchmarks/drift_bench.py --rows 1000000 --repeats 3 --deepchecks
sel bootstrap  && run bootstrap  "$PY" benchmarks/bootstrap_bench.py --rows 5000 --resamples 1000
sel comment    && run comment    "$PY" benchmarks/comment_bench.py --mib 2 --repeats 3
if sel serving; then
  if [ -f benchmarks/serving_bench.py ]; then
    run serving "$PY" benchmarks/serving_bench.py
  else
    echo "!! benchmarks/serving_bench.py missing: serving not run" >&2
    status=1
  fi
fi
sel pr_check   && run pr_check   "$PY" benchmarks/pr_check_bench.py --data bundled,100k,1m --mode ephemeral,server
exit $status
