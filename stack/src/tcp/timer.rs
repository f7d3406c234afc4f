//! TODO(tcp): timer
