//! Everything about proxy-wasm shared data, the only state Envoy's workers
//! share: one Wasm VM runs per worker thread, and they meet in the
//! process-wide key/value store behind [`SharedStore`](crate::host::SharedStore).
//!
//! * [`keys`]: every key the filter uses, and [`slots`], which bounds the
//!   keys of client-controlled values.
//! * [`kind`] and the codec (`Writer`, `Reader`): every value is one
//!   small versioned little-endian record that starts with its kind byte.
//! * `cas_update`: every state (limiters, routing strategies, passive
//!   health) is changed with an optimistic read → compute → compare-and-set
//!   loop, so concurrent workers never lose each other's updates: a write
//!   based on a stale read fails with `CasMismatch` and is recomputed from a
//!   fresh read.
//!
//! Values outlive a build (a rolling upgrade reads what the previous
//! version wrote), so key strings and byte layouts never change by
//! accident; tests pin them.
//!
//! # Key lifecycle
//!
//! Proxy-wasm inserts a missing key whatever CAS token the writer passes, so
//! "create if absent" cannot be made atomic by the token alone. The callers
//! therefore pre-create every key at configure time with `ensure_state`
//! (no traffic flows yet), and request-time updates always CAS an existing
//! key. If a key is nevertheless missing at request time it is first
//! created (with [`CREATE_CAS`], see there for the tiny race this leaves)
//! and then updated by an ordinary CAS as a second step. Values never
//! expire, so every key family is bounded by the configuration.

mod cas;
mod codec;
pub mod keys;
pub mod kind;
pub mod registry;
pub mod slots;

pub(crate) use cas::{cas_update, ensure_state, read_state, Step};
pub use cas::{Contention, CREATE_CAS};
pub(crate) use codec::{Codec, Reader, Writer};
