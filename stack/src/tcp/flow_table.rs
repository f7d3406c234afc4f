//! TODO(tcp): flow_table
