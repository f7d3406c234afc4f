//! TODO(wire): checksum
