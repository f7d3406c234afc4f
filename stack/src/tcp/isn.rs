//! TODO(tcp): isn
