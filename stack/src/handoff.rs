//! Reassembled datagrams handed from the core that reassembled them to the
//! core that owns their flow.
//!
//! RSS steers a flow's packets by its 4-tuple, but a fragment after the
//! first carries no ports, so NICs (and our software re-steering) steer
//! every fragment by the address pair alone. A datagram sent in fragments
//! is therefore reassembled on the pair's core, which need not be the core
//! holding the flow's socket: with two cores, a UDP socket on an ephemeral
//! port (picked so that its replies hash back to its core) would see its
//! fragmented replies reach the other core and be answered there with
//! port unreachable. So the reassembling core looks the owner up
//! ([`Interface::set_flow_owner`](crate::iface::Interface::set_flow_owner))
//! and, when it is another core, copies the datagram into a [`Handoff`]
//! that the runtime carries to the owner (`Stack::take_handoffs` there,
//! `Stack::input_handoff` here), as Seastar forwards reassembled packets.
//!
//! This is the one copy and allocation on the receive path, and only for
//! datagrams that were fragmented *and* landed on the wrong core. At most
//! [`HANDOFF_MAX`] wait per core between ticks; more are dropped and
//! counted (`drop.reassembly_full`).

use crate::wire::ethernet::EthernetAddress;
use crate::wire::ipv4::Ipv4Repr;

/// The most handoffs a core keeps between two ticks.
pub const HANDOFF_MAX: usize = 64;

/// A whole datagram for another core's flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub(crate) queue: usize,
    pub(crate) src_mac: EthernetAddress,
    pub(crate) ip: Ipv4Repr,
    pub(crate) bytes: Vec<u8>,
}

impl Handoff {
    /// The queue (core) that owns the flow.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// The IPv4 header of the datagram.
    pub fn ip(&self) -> &Ipv4Repr {
        &self.ip
    }

    /// The IP payload (a TCP segment or a UDP datagram).
    pub fn payload(&self) -> &[u8] {
        &self.bytes
    }
}
