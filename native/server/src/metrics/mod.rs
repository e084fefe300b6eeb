//! `--metrics`: Prometheus metrics for the whole server.
//!
//! Every worker counts into its own slot of one shared memory region
//! ([`region`]); the process that owns the region (the supervisor, or the
//! only worker) renders the sum of all slots on `GET /metrics`
//! ([`endpoint`], [`render`]). Counting is a few relaxed atomic adds per
//! request: no lock, no message, no Python.

pub mod endpoint;
pub mod region;
pub mod render;

pub use region::Region;
pub use region::Slot;
