//! TODO(tcp): state
