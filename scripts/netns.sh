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
# (set PEER_TX_OFFLOAD=on to leave it on and exercise partial checksums). TSO/GSO
# are left on (PEER_GSO=off turns them off); with PEER_TX_OFFLOAD=on the peer
# then sends GSO super-frames (up to 64 KiB) over the veth, which the AF_PACKET
# and TAP backends split in software (docs/devices.md). XDP needs tx off.
#
# The TAP topology (`tap`): netns mtcp-tap holds a persistent TAP mtcp-t0
# whose kernel side is the peer (10.98.0.1/24); a program run in mtcp-tap with
# MTCP_DEVICE=tap:mtcp-t0 MTCP_ADDR=10.98.0.2/24 attaches to it.
#
# Usage: scripts/netns.sh up|tap|down|status (down removes every "$P-*"
# namespace and link)
# Environment: MTCP_NS_PREFIX (default mtcp), PEER_TX_OFFLOAD (off|on),
#   PEER_GSO (on|off: TSO and GSO of the peer's veth end; on by default, in
#   effect only with PEER_TX_OFFLOAD=on),
#   QUEUES (RX/TX queues of each veth end, default 1; 2 for xdp with
#   MTCP_CORES=2), TAP_QUEUES (1: a plain TAP, >1: a multi-queue TAP for
#   MTCP_CORES>1; the stack's open must match).
set -euo pipefail

P=${MTCP_NS_PREFIX:-mtcp}
STK_NS="$P-stk"
PEER_NS="$P-peer"
STK_IF="$P-s0"
PEER_IF="$P-p0"
PEER_ADDR=10.99.0.1/24
STACK_ADDR=10.99.0.2/24
TAP_NS="$P-tap"
TAP_IF="$P-t0"
TAP_PEER_ADDR=10.98.0.1/24
QUEUES=${QUEUES:-1}
TAP_QUEUES=${TAP_QUEUES:-1}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "netns.sh: '$1' is missing (apt-get install -y $2)" >&2; exit 1; }
}

up() {
  need ip iproute2
  need ethtool ethtool
  ip netns list | grep -qw "$STK_NS" || ip netns add "$STK_NS"
  ip netns list | grep -qw "$PEER_NS" || ip netns add "$PEER_NS"
  # Recreate the veth when it is missing or has another queue count.
  have=$(ip netns exec "$STK_NS" sh -c "ls -d /sys/class/net/$STK_IF/queues/rx-* 2>/dev/null | wc -l" || echo 0)
  if [ "$have" != "$QUEUES" ]; then
    ip -n "$STK_NS" link del "$STK_IF" 2>/dev/null || true
    # Create in the root namespace, then move each end.
    ip link del "$STK_IF" 2>/dev/null || true
    ip link add "$STK_IF" numrxqueues "$QUEUES" numtxqueues "$QUEUES" type veth \
      peer name "$PEER_IF" numrxqueues "$QUEUES" numtxqueues "$QUEUES"
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
  # A veth hands GSO super-frames (up to 64 KiB) to the other end unsegmented;
  # AF_PACKET and TAP split them (PACKET_VNET_HDR / IFF_VNET_HDR), so they stay
  # on unless PEER_GSO=off (see docs/devices.md, AF_PACKET).
  ip netns exec "$PEER_NS" ethtool -K "$PEER_IF" tso "${PEER_GSO:-on}" gso "${PEER_GSO:-on}" >/dev/null 2>&1 || true
  ip netns exec "$STK_NS" ethtool -K "$STK_IF" tx off >/dev/null 2>&1 || true
  echo "netns.sh: up: $STK_NS/$STK_IF (stack ${STACK_ADDR}) <-> $PEER_NS/$PEER_IF (peer ${PEER_ADDR}), $QUEUES queue(s)"
}

tap() {
  need ip iproute2
  ip netns list | grep -qw "$TAP_NS" || ip netns add "$TAP_NS"
  ip -n "$TAP_NS" link set lo up
  # Recreate the TAP when it is missing or its multi-queue flag differs.
  want=""
  [ "$TAP_QUEUES" -gt 1 ] && want=multi_queue
  flags=$(ip -n "$TAP_NS" tuntap show 2>/dev/null | grep "^$TAP_IF:" || true)
  got=""
  case "$flags" in *multi_queue*) got=multi_queue ;; esac
  if [ -z "$flags" ] || [ "$got" != "$want" ]; then
    ip -n "$TAP_NS" link del "$TAP_IF" 2>/dev/null || true
    ip -n "$TAP_NS" tuntap add dev "$TAP_IF" mode tap $want
  fi
  ip netns exec "$TAP_NS" sysctl -qw "net.ipv6.conf.$TAP_IF.disable_ipv6=1" || true
  ip -n "$TAP_NS" addr replace "$TAP_PEER_ADDR" dev "$TAP_IF"
  ip -n "$TAP_NS" link set "$TAP_IF" up
  ip -n "$TAP_NS" neigh flush dev "$TAP_IF" || true
  if command -v ethtool >/dev/null 2>&1; then
    ip netns exec "$TAP_NS" ethtool -K "$TAP_IF" tx "${PEER_TX_OFFLOAD:-off}" >/dev/null 2>&1 || true
  fi
  echo "netns.sh: tap: $TAP_NS/$TAP_IF (peer ${TAP_PEER_ADDR}, stack 10.98.0.2/24) ${want:-single_queue}"
}

# Removes every namespace and root-namespace link named "$P-*": the ones
# above and those the tests make themselves (nic_kernel's "$P-xq-*", the DPDK
# tests' "$P-dpdktap"). The test suites call this when each test ends.
down() {
  command -v ip >/dev/null 2>&1 || { echo "netns.sh: down: no ip"; return 0; }
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case "$ns" in "$P"-*) ip netns del "$ns" 2>/dev/null || true ;; esac
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    case "$link" in "$P"-*) ip link del "$link" 2>/dev/null || true ;; esac
  done
  echo "netns.sh: down"
}

status() {
  for ns in "$STK_NS" "$PEER_NS" "$TAP_NS"; do
    echo "== $ns"
    ip -n "$ns" -br addr 2>/dev/null || echo "(absent)"
  done
}

case "${1:-}" in
  up) up ;;
  tap) tap ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|tap|down|status" >&2; exit 2 ;;
esac
