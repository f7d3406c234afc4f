//! TODO(tcp): tx_list
