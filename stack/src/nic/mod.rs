//! The NIC layer: device trait, frame pool, backends.
