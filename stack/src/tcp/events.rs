//! TODO(tcp): events
