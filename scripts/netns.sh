#!/usr/bin/env bash
# The test topology of DESIGN.md for real kernel peers.
#
#   netns mtcp-stk                         netns mtcp-peer
#   +--------------------------+          +---------------------------+
#   | mtcp-s0 (no kernel IP)   |<-------->| mtcp-p0  10.99.0.1/24     |
#   | the stack: 10.99.0.2/24  |   veth   | Linux TCP: the peer       |
#   +--------------------------+          +---------------------------+
#
# The stack's end has no kernel address, so the kernel neither answers ARP nor
# sends RSTs for the stack's flows. TX checksum offload on the peer end is off
# (set PEER_TX_OFFLOAD=on to leave it on and exercise partial checksums).
#
# Usage: scripts/netns.sh up|down|status
# Environment: MTCP_NS_PREFIX (default mtcp), PEER_TX_OFFLOAD (off|on).
set -euo pipefail

P=${MTCP_NS_PREFIX:-mtcp}
STK_NS="$P-stk"
PEER_NS="$P-peer"
STK_IF="$P-s0"
PEER_IF="$P-p0"
PEER_ADDR=10.99.0.1/24
STACK_ADDR=10.99.0.2/24

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "netns.sh: '$1' is missing (apt-get install -y $2)" >&2; exit 1; }
}

up() {
  need ip iproute2
  need ethtool ethtool
  ip netns list | grep -qw "$STK_NS" || ip netns add "$STK_NS"
  ip netns list | grep -qw "$PEER_NS" || ip netns add "$PEER_NS"
  if ! ip -n "$STK_NS" link show "$STK_IF" >/dev/null 2>&1; then
    # Create in the root namespace, then move each end.
    ip link del "$STK_IF" 2>/dev/null || true
    ip link add "$STK_IF" type veth peer name "$PEER_IF"
    ip link set "$STK_IF" netns "$STK_NS"
    ip link set "$PEER_IF" netns "$PEER_NS"
  fi
  ip -n "$STK_NS" link set lo up
  ip -n "$PEER_NS" link set lo up
  ip -n "$STK_NS" addr flush dev "$STK_IF"
  ip -n "$STK_NS" link set "$STK_IF" up
  # No IPv6 on the stack's end: keeps router solicitations off the wire.
  ip netns exec "$STK_NS" sysctl -qw "net.ipv6.conf.$STK_IF.disable_ipv6=1" || true
  ip netns exec "$PEER_NS" sysctl -qw "net.ipv6.conf.$PEER_IF.disable_ipv6=1" || true
  ip -n "$PEER_NS" addr replace "$PEER_ADDR" dev "$PEER_IF"
  ip -n "$PEER_NS" link set "$PEER_IF" up
  ip -n "$PEER_NS" neigh flush dev "$PEER_IF" || true
  ip netns exec "$PEER_NS" ethtool -K "$PEER_IF" tx "${PEER_TX_OFFLOAD:-off}" >/dev/null 2>&1 || true
  ip netns exec "$STK_NS" ethtool -K "$STK_IF" tx off >/dev/null 2>&1 || true
  echo "netns.sh: up: $STK_NS/$STK_IF (stack ${STACK_ADDR}) <-> $PEER_NS/$PEER_IF (peer ${PEER_ADDR})"
}

down() {
  ip netns del "$STK_NS" 2>/dev/null || true
  ip netns del "$PEER_NS" 2>/dev/null || true
  ip link del "$STK_IF" 2>/dev/null || true
  echo "netns.sh: down"
}

status() {
  for ns in "$STK_NS" "$PEER_NS"; do
    echo "== $ns"
    ip -n "$ns" -br addr 2>/dev/null || echo "(absent)"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
