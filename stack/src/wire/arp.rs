//! TODO(wire): arp
