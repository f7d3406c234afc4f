//! TODO(tcp): syncookie
