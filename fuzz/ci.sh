#!/usr/bin/env bash
# Runs every fuzz target for a bounded time from the committed seeds (see
# docs/fuzzing.md). Used by .ci/run; also handy locally:
#   bash fuzz/ci.sh            # 35 s per target (six: about 3.5 min)
#   FUZZ_SECONDS=600 bash fuzz/ci.sh
# A crash, a leak or a broken invariant fails (exit 1) and leaves the input
# under fuzz/artifacts/<target>/. New inputs go to a scratch corpus, so the
# committed one stays small.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-35}
rss_mb=${FUZZ_RSS_MB:-2048}
targets=(wire_parse iface_receive tcp_listener tcp_established ipv4_reassembly icmp_input)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: the nightly toolchain is missing (cargo-fuzz needs it): rustup toolchain install nightly" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The crate is outside the root workspace: format and lint it here.
cargo +nightly fmt -- --check
cargo +nightly clippy --all-targets -- -D warnings
# The committed seeds are what the generator writes.
cargo +nightly run -q --example seeds -- --check

# -s none: the stack has no unsafe code, so ASan buys little and costs
# half the speed; -a keeps debug assertions and overflow checks on.
cargo +nightly fuzz build -s none -a

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  echo "fuzz: $t for ${seconds}s"
  if cargo +nightly fuzz run -s none -a "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -print_final_stats=1 \
      >"$log" 2>&1; then
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    rate=$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' <<<"$done_line")
    echo "fuzz: $t ok: executions $execs, exec/s $rate, cov $cov, ft $ft"
  else
    echo "fuzz: $t FAILED; the last lines of its log:" >&2
    tail -n 60 "$log" >&2
    ls -l "artifacts/$t" >&2 2>/dev/null || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (reproduce: cargo +nightly fuzz run -s none -a TARGET fuzz/artifacts/TARGET/crash-...)" >&2
  exit 1
fi
