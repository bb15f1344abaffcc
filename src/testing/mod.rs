//! Test doubles of the host: one in-memory [`MemStore`] with Envoy's
//! shared-data semantics and one [`RecordingHost`], shared by the crate's
//! tests, the benches and the fuzz crate (separate crates, which cannot see
//! `cfg(test)` items). The filter never uses them; LTO drops them from the
//! `.wasm`.

mod host;
mod store;

pub use host::{Callout, RecordingHost};
pub use store::MemStore;
