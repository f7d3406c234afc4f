//! TODO(tcp): reassembly
