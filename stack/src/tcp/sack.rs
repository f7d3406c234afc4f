//! TODO(tcp): sack
