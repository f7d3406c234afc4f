//! TODO(tcp): tcb
