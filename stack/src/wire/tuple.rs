//! The 4-tuple that names a TCP connection (or a connected UDP flow), seen
//! from this host: the one type the NIC layer (RSS), the flow table, the
//! ISN and SYN-cookie hashes share.

use super::ipv4::Ipv4Address;

/// Local address and port, remote address and port.
///
/// For a received packet the local side is its destination
/// ([`of_received`](Self::of_received)); for a sent one its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address.
    pub local_ip: Ipv4Address,
    /// Our port.
    pub local_port: u16,
    /// The peer's address.
    pub remote_ip: Ipv4Address,
    /// The peer's port.
    pub remote_port: u16,
}

impl FourTuple {
    /// A tuple from its four parts.
    pub const fn new(
        local_ip: Ipv4Address,
        local_port: u16,
        remote_ip: Ipv4Address,
        remote_port: u16,
    ) -> FourTuple {
        FourTuple {
            local_ip,
            local_port,
            remote_ip,
            remote_port,
        }
    }

    /// The tuple of a packet received from `src:src_port` for
    /// `dst:dst_port`: the destination is the local side.
    pub const fn of_received(
        src: Ipv4Address,
        src_port: u16,
        dst: Ipv4Address,
        dst_port: u16,
    ) -> FourTuple {
        FourTuple::new(dst, dst_port, src, src_port)
    }

    /// The same flow seen from the peer: local and remote swapped.
    pub const fn reversed(&self) -> FourTuple {
        FourTuple::new(
            self.remote_ip,
            self.remote_port,
            self.local_ip,
            self.local_port,
        )
    }

    /// The tuple as 12 bytes (local address, local port, remote address,
    /// remote port; network byte order), the input to the keyed hashes.
    pub fn to_bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.local_ip.octets());
        b[4..6].copy_from_slice(&self.local_port.to_be_bytes());
        b[6..10].copy_from_slice(&self.remote_ip.octets());
        b[10..12].copy_from_slice(&self.remote_port.to_be_bytes());
        b
    }
}

impl core::fmt::Display for FourTuple {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}:{} <-> {}:{}",
            self.local_ip, self.local_port, self.remote_ip, self.remote_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_reversed_and_bytes() {
        let (a, b) = (Ipv4Address::new(10, 0, 0, 1), Ipv4Address::new(10, 0, 0, 2));
        let t = FourTuple::of_received(b, 80, a, 40000);
        assert_eq!(t, FourTuple::new(a, 40000, b, 80));
        assert_eq!(t.reversed(), FourTuple::new(b, 80, a, 40000));
        assert_eq!(t.reversed().reversed(), t);
        assert_eq!(t.to_bytes(), [10, 0, 0, 1, 0x9c, 0x40, 10, 0, 0, 2, 0, 80]);
        assert_eq!(t.to_string(), "10.0.0.1:40000 <-> 10.0.0.2:80");
    }
}
