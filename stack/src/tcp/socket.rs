//! TODO(tcp): socket
