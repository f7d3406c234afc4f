//! TODO(wire): icmp
