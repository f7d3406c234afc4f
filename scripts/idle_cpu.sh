#!/usr/bin/env bash
# Idle CPU of a server on each fd device: runs BIN (default: the echo
# example) with MTCP_DEVICE=af_packet, xdp and tap in the netns.sh topology,
# lets it settle, then prints the CPU it used over SECS seconds with no
# traffic (from /proc/PID/stat utime+stime, 10 ms ticks, and the threads'
# /proc/PID/task/*/schedstat run time, in nanoseconds).
#
# Usage: flock /tmp/mtcp-netns.lock scripts/idle_cpu.sh [BIN] [SECS]
# Root is needed (network namespaces). Environment: MTCP_NS_PREFIX as for
# netns.sh; DEVICES (default "af_packet xdp tap").
set -euo pipefail

BIN=${1:-target/debug/echo}
SECS=${2:-10}
P=${MTCP_NS_PREFIX:-mtcp}
HERE=$(cd "$(dirname "$0")" && pwd)

"$HERE/netns.sh" up >/dev/null
"$HERE/netns.sh" tap >/dev/null

run_time_ns() {
  local pid=$1 sum=0 t
  for t in /proc/"$pid"/task/*/schedstat; do
    sum=$((sum + $(cut -d' ' -f1 "$t" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}

ticks() {
  # Fields 14 and 15 of /proc/PID/stat, after the parenthesised name.
  sed 's/^.*) //' /proc/"$1"/stat | awk '{print $12 + $13}'
}

for dev in ${DEVICES:-af_packet xdp tap}; do
  case $dev in
    tap) ns="$P-tap" peer="$P-tap" spec="tap:$P-t0" addr=10.98.0.2/24 ;;
    *) ns="$P-stk" peer="$P-peer" spec="$dev:$P-s0" addr=10.99.0.2/24 ;;
  esac
  ip netns exec "$ns" env MTCP_DEVICE="$spec" MTCP_ADDR="$addr" "$BIN" 0.0.0.0:7 \
    >/dev/null 2>/tmp/idle_cpu.$dev.log &
  pid=$!
  sleep 2
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$dev: the server exited: $(head -c 300 /tmp/idle_cpu.$dev.log)"
    continue
  fi
  t0=$(ticks "$pid"); n0=$(run_time_ns "$pid")
  sleep "$SECS"
  t1=$(ticks "$pid"); n1=$(run_time_ns "$pid")
  # Still serving after the idle stretch: from the kernel peer, connect,
  # echo 5 bytes and close, 10 times 50 ms apart (the first includes ARP).
  echoed=$(ip netns exec "$peer" python3 -c '
import socket, sys, time
ms = []
for i in range(10):
    time.sleep(0.05)
    t = time.monotonic()
    s = socket.create_connection((sys.argv[1], 7), timeout=5)
    s.sendall(b"idle?")
    assert s.recv(16) == b"idle?"
    ms.append((time.monotonic() - t) * 1e3)
    s.close()
print("connect+echo first %.2f ms, then median %.3f ms, max %.3f ms" % (ms[0], sorted(ms[1:])[4], max(ms[1:])))
' "${addr%/*}" 2>&1 | tail -1 || true)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  hz=$(getconf CLK_TCK)
  awk -v d="$dev" -v t=$((t1 - t0)) -v n=$((n1 - n0)) -v s="$SECS" -v hz="$hz" 'BEGIN {
    printf "%s: %d ticks (%.3f %% of a core), run time %.3f ms (%.4f %% of a core) over %d s; ",
      d, t, 100 * t / hz / s, n / 1e6, 100 * n / 1e9 / s, s }'
  echo "$echoed"
done
