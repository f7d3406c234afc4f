#!/usr/bin/env bash
# The multi-core scaling benchmark: mtcp and tokio side by side, 1..N cores
# per side (server cores 0..N-1, client cores N..2N-1), echo and connect.
#
# Usage: scripts/scaling.sh [COMPARE_BIN] [OUT_FILE]
#   COMPARE_BIN defaults to target/release/compare (build it with
#   `cargo build --release -p benches --bin compare`); OUT_FILE (JSON lines,
#   one per system and run) defaults to scaling.jsonl.
# Environment: CORES (default "1 2 4 8", capped by the CPUs: 2 per side),
#   SECONDS_PER_RUN (default 3), ECHO_CONNS (default 400), CONNECT_LOOPS (64).
set -euo pipefail

BIN=${1:-target/release/compare}
OUT=${2:-scaling.jsonl}
CPUS=$(nproc)
SECS=${SECONDS_PER_RUN:-3}
: > "$OUT"
echo "scaling.sh: $CPUS CPUs; $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >&2
for c in ${CORES:-1 2 4 8}; do
  if [ $((2 * c)) -gt "$CPUS" ]; then
    echo "scaling.sh: skipping $c cores per side: needs $((2 * c)) CPUs" >&2
    continue
  fi
  "$BIN" echo --cores "$c" --conns "${ECHO_CONNS:-400}" --seconds "$SECS" --json | tee -a "$OUT"
  "$BIN" connect --cores "$c" --conns "${CONNECT_LOOPS:-64}" --seconds "$SECS" --json | tee -a "$OUT"
done
