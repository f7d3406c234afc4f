//! TODO(tcp): scenario
