//! TODO(tcp): buffer
