//! TODO(tcp): rtt
