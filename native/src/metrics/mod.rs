//! `--metrics`: Prometheus metrics for the whole server.
//!
//! Every worker counts into its own slot of one shared memory region
//! ([`region`]); the process that owns the region (the supervisor, or the
//! only worker) renders the sum of all slots on `GET /metrics`
//! ([`endpoint`], [`render`]). Counting is a few relaxed atomic adds per
//! request: no lock, no message, no Python.

#[cfg(feature = "python")]
pub(crate) mod endpoint;
pub(crate) mod region;
#[cfg(feature = "python")]
pub(crate) mod render;

#[cfg(feature = "python")]
pub(crate) use region::Region;
pub(crate) use region::Slot;
