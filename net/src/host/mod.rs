//! [`Net`](unikit_runtime::devices::net::Net) devices for host programs
//! and tests (feature `std`):
//!
//! * [`MemoryLink`]: two devices joined by an in-memory wire that runs on
//!   the runtime's clock, so two stacks talk on simulated time, with
//!   seeded loss, duplication, corruption and latency ([`Faults`]);
//! * [`Tap`]: a Linux TAP interface, so the host's own tools (`ping`,
//!   `nc`, `curl`) talk to a stack running as a host process.

mod memory;
mod tap;

pub use memory::{FaultCounts, Faults, LinkEnd, MemoryLink};
pub use tap::Tap;
