//! IPv4 packets.
//!
//! TODO(wire): checked view `Ipv4Packet<T>`, `Ipv4Repr` parse/emit.

pub use std::net::Ipv4Addr as Ipv4Address;

/// An IPv4 address with a prefix length, e.g. `10.99.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: Ipv4Address,
    /// The prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// The network mask of this prefix.
    pub fn netmask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        }
    }

    /// True when `addr` is on this subnet.
    pub fn contains(&self, addr: Ipv4Address) -> bool {
        let m = self.netmask();
        u32::from(addr) & m == u32::from(self.address) & m
    }

    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Address {
        Ipv4Address::from(u32::from(self.address) | !self.netmask())
    }
}
