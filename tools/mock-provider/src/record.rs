//! Bounded ring buffer of the requests the mock received.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use hyper::{HeaderMap, Method, Uri};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub const CAPACITY: usize = 1000;

/// One received request, kept cheaply (reference-counted buffers, no string
/// conversion); it is turned into JSON only when `/__mock/requests` is read.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Serialize for Recorded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("method", self.method.as_str())?;
        m.serialize_entry("path", self.uri.path())?;
        // Raw query string without `?` (empty when there is none).
        m.serialize_entry("query", self.uri.query().unwrap_or(""))?;
        m.serialize_entry("headers", &Headers(&self.headers))?;
        // Body as text (invalid UTF-8 is replaced with U+FFFD).
        m.serialize_entry("body", &String::from_utf8_lossy(&self.body))?;
        m.end()
    }
}

/// Header names are already lowercase in `HeaderMap`; repeated headers are
/// joined with ", " so the map keeps one entry per name.
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut value = String::new();
            for (i, v) in self.0.get_all(name).iter().enumerate() {
                if i > 0 {
                    value.push_str(", ");
                }
                value.push_str(&String::from_utf8_lossy(v.as_bytes()));
            }
            m.serialize_entry(name.as_str(), &value)?;
        }
        m.end()
    }
}

#[derive(Default)]
pub struct Recorder {
    ring: Mutex<VecDeque<Recorded>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            ring: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        }
    }

    pub fn push(&self, r: Recorded) {
        let mut ring = match self.ring.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back(r);
    }

    pub fn snapshot(&self) -> Vec<Recorded> {
        let ring = match self.ring.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        ring.iter().cloned().collect()
    }

    pub fn clear(&self) {
        let mut ring = match self.ring.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        ring.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: usize) -> Recorded {
        Recorded {
            method: Method::POST,
            uri: format!("/{i}").parse().unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    #[test]
    fn ring_keeps_the_last_capacity_entries() {
        let r = Recorder::new();
        for i in 0..CAPACITY + 5 {
            r.push(rec(i));
        }
        let s = r.snapshot();
        assert_eq!(s.len(), CAPACITY);
        assert_eq!(s[0].uri.path(), "/5");
        assert_eq!(s[CAPACITY - 1].uri.path(), format!("/{}", CAPACITY + 4));
        r.clear();
        assert!(r.snapshot().is_empty());
    }
}
