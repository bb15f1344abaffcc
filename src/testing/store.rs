//! Proxy-wasm shared data in memory, with contention and failures that a
//! test can inject.

use crate::host::{SharedStore, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};

/// Another worker's write, run just before one of ours.
type Interferer = Box<dyn FnOnce(&MemStore)>;

/// Envoy's shared data in memory: one process-wide CAS counter (from 1,
/// skipping 0 when it wraps) stamped on every write; a stale non-zero CAS
/// on an existing key fails; a missing key is inserted whatever the CAS.
pub struct MemStore {
    values: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
    /// The next N CAS writes to existing keys fail with `CasMismatch`,
    /// changing nothing.
    pub fail_next: Cell<u32>,
    /// Every CAS write to an existing key fails with `CasMismatch`.
    pub always_mismatch: Cell<bool>,
    /// Every write fails with `Failed`.
    pub broken: Cell<bool>,
    interferers: RefCell<VecDeque<Interferer>>,
    interfering: Cell<bool>,
    /// Calls to `set`, successful or not.
    pub set_calls: Cell<u64>,
    written_keys: RefCell<HashSet<String>>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self {
            values: RefCell::default(),
            next_cas: Cell::new(1),
            fail_next: Cell::new(0),
            always_mismatch: Cell::new(false),
            broken: Cell::new(false),
            interferers: RefCell::default(),
            interfering: Cell::new(false),
            set_calls: Cell::new(0),
            written_keys: RefCell::default(),
        }
    }
}

impl MemStore {
    /// Runs `f` just before one of the next writes, as another worker
    /// writing between our read and our write (its own writes go through
    /// without injected faults).
    pub fn interfere(&self, f: impl FnOnce(&MemStore) + 'static) {
        self.interferers.borrow_mut().push_back(Box::new(f));
    }

    /// Writes `bytes` under `key` unconditionally, as another process
    /// would: no CAS check, no injected fault, not counted in `set_calls`.
    pub fn put_raw(&self, key: &str, bytes: &[u8]) {
        self.insert(key, bytes);
    }

    /// The value under `key`.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.values.borrow().get(key).map(|(v, _)| v.clone())
    }

    pub fn len(&self) -> usize {
        self.values.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.borrow().is_empty()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.values.borrow().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Every key a write ever touched.
    pub fn written_keys(&self) -> HashSet<String> {
        self.written_keys.borrow().clone()
    }

    fn stamp(&self) -> u32 {
        let cas = self.next_cas.get();
        let next = cas.wrapping_add(1);
        self.next_cas.set(if next == 0 { 1 } else { next });
        cas
    }

    fn insert(&self, key: &str, value: &[u8]) {
        let stamp = self.stamp();
        self.values
            .borrow_mut()
            .insert(key.to_string(), (value.to_vec(), stamp));
        self.written_keys.borrow_mut().insert(key.to_string());
    }

    /// An injected `CasMismatch` for a CAS write to an existing key.
    fn injected_mismatch(&self) -> bool {
        if self.always_mismatch.get() {
            return true;
        }
        let pending = self.fail_next.get();
        if pending > 0 {
            self.fail_next.set(pending - 1);
        }
        pending > 0
    }
}

impl SharedStore for MemStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.values.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.set_calls.set(self.set_calls.get() + 1);
        if !self.interfering.get() {
            let next = self.interferers.borrow_mut().pop_front();
            if let Some(f) = next {
                self.interfering.set(true);
                f(self);
                self.interfering.set(false);
            }
        }
        if self.broken.get() {
            return Err(StoreError::Failed);
        }
        let current = self.values.borrow().get(key).map(|(_, c)| *c);
        if let Some(current) = current {
            if cas != 0 && !self.interfering.get() && self.injected_mismatch() {
                return Err(StoreError::CasMismatch);
            }
            if cas != 0 && cas != current {
                return Err(StoreError::CasMismatch);
            }
        }
        self.insert(key, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CREATE_CAS;

    #[test]
    fn has_proxy_wasm_cas_semantics() {
        let store = MemStore::default();
        // Missing key: inserted whatever the CAS.
        store.set("k", b"a", 12345).unwrap();
        let (_, c1) = store.get("k").unwrap();
        assert_ne!(c1, 0);
        assert_eq!(store.set("k", b"b", c1 + 1), Err(StoreError::CasMismatch));
        store.set("k", b"b", c1).unwrap();
        let (v, c2) = store.get("k").unwrap();
        assert_eq!(v, b"b");
        assert_ne!(c1, c2);
        // Stale token now fails; 0 is unconditional.
        assert_eq!(store.set("k", b"c", c1), Err(StoreError::CasMismatch));
        store.set("k", b"d", 0).unwrap();
        assert_eq!(store.raw("k").unwrap(), b"d");
    }

    #[test]
    fn create_cas_does_not_overwrite_a_key_created_meanwhile() {
        let store = MemStore::default();
        store.put_raw("k", b"theirs");
        assert_eq!(
            store.set("k", b"mine", CREATE_CAS),
            Err(StoreError::CasMismatch)
        );
        assert_eq!(store.raw("k").unwrap(), b"theirs");
    }
}
