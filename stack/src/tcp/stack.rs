//! TODO(tcp): stack
