//! The semantic index: for each cached model, prompt embeddings quantized
//! to int8, each pointing at the stored answer (an entry of `entry`) it
//! was asked for. A lookup compares the request's embedding with every
//! live vector of the same group (target, scope, the request's other
//! parameters and its number of turns) and takes the most similar above the
//! model's threshold.
//!
//! The index of a model is `pages` shared-data keys of at most
//! [`PAGE_VECTORS`] vectors each, created at configure time; a vector goes
//! to the page its answer's digest picks, replacing the expired or oldest
//! one there when the page is full. Reads copy every page of the model: the
//! cost of a lookup grows with `max_vectors` (see BENCHMARKS.md).

use super::key::Digest32;
use crate::host::SharedStore;
use crate::state::{cas_update, kind, Codec, Contention, Reader, Step, Writer, CREATE_CAS};

/// Vectors per page.
pub const PAGE_VECTORS: usize = 32;
/// Largest embedding kept (dimensions).
pub const MAX_DIMS: usize = 4096;
const VERSION: u8 = 1;
const MAX_RETRIES: u32 = 16;

/// One indexed prompt.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    group: u64,
    answer: Digest32,
    stored_at: u64,
    expires: u64,
    /// `|q|` of the quantized vector, as f32 bits.
    norm: f32,
    q: Vec<i8>,
}

#[derive(Debug, Default, PartialEq)]
struct Page(Vec<Record>);

impl Codec for Page {
    fn encode(&self) -> Vec<u8> {
        let size: usize = self.0.iter().map(|r| 62 + r.q.len()).sum();
        let mut w = Writer::new(kind::CACHE_INDEX, VERSION, 4 + size)
            .u16(u16::try_from(self.0.len()).unwrap_or(0));
        for r in &self.0 {
            let q: Vec<u8> = r.q.iter().map(|&v| v as u8).collect();
            w = w
                .u64(r.group)
                .bytes(&r.answer)
                .u64(r.stored_at)
                .u64(r.expires)
                .u32(r.norm.to_bits())
                .u16(u16::try_from(q.len()).unwrap_or(0))
                .bytes(&q);
        }
        w.finish()
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::open(bytes, kind::CACHE_INDEX, VERSION)?;
        let n = r.u16()? as usize;
        let mut out = Vec::with_capacity(n.min(PAGE_VECTORS));
        for _ in 0..n {
            let group = r.u64()?;
            let answer = r.array::<32>()?;
            let stored_at = r.u64()?;
            let expires = r.u64()?;
            let norm = f32::from_bits(r.u32()?);
            let dims = r.u16()? as usize;
            let q = r.slice(dims)?.iter().map(|&b| b as i8).collect();
            out.push(Record {
                group,
                answer,
                stored_at,
                expires,
                norm,
                q,
            });
        }
        r.done().then_some(Page(out))
    }
}

/// `v` as int8 with a per-vector scale (cosine ignores the scale), and the
/// norm of the result; None for an empty, too long or all-zero vector.
pub fn quantize(v: &[f64]) -> Option<(Vec<i8>, f32)> {
    let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if v.is_empty() || v.len() > MAX_DIMS || max <= 0.0 || !max.is_finite() {
        return None;
    }
    let q: Vec<i8> = v
        .iter()
        .map(|x| (x * 127.0 / max).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let norm = (q.iter().map(|&x| i64::from(x) * i64::from(x)).sum::<i64>() as f64).sqrt();
    Some((q, norm as f32))
}

/// Cosine similarity of two quantized vectors of one length (`b` as the
/// page stores it).
fn cosine(a: &[i8], an: f32, b: &[u8], bn: f32) -> f32 {
    if a.len() != b.len() || an <= 0.0 || bn <= 0.0 {
        return -1.0;
    }
    let dot: i32 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y as i8))
        .sum();
    dot as f32 / (an * bn)
}

/// Calls `f(answer, expires, norm, q)` for each record of `group` in a
/// page's bytes, without copying vectors.
fn scan(bytes: &[u8], group: u64, mut f: impl FnMut(&[u8], u64, f32, &[u8])) -> Option<()> {
    let mut r = Reader::open(bytes, kind::CACHE_INDEX, VERSION)?;
    let n = r.u16()?;
    for _ in 0..n {
        let g = r.u64()?;
        let answer = r.slice(32)?;
        let _stored_at = r.u64()?;
        let expires = r.u64()?;
        let norm = f32::from_bits(r.u32()?);
        let dims = r.u16()? as usize;
        let q = r.slice(dims)?;
        if g == group {
            f(answer, expires, norm, q);
        }
    }
    Some(())
}

/// A model's index: its page keys.
pub struct Index {
    pub prefix: String,
    pub pages: u32,
}

impl Index {
    fn page_key(&self, n: u32) -> String {
        format!("{}#{n}", self.prefix)
    }

    /// Every page key (pre-creation and the registry).
    pub fn keys(&self) -> Vec<String> {
        (0..self.pages).map(|n| self.page_key(n)).collect()
    }

    pub fn precreate(&self, store: &dyn SharedStore) -> Result<usize, Contention> {
        for key in self.keys() {
            if store.get(&key).is_none() {
                let _ = store.set(&key, &Page::default().encode(), CREATE_CAS);
            }
        }
        Ok(self.pages as usize)
    }

    /// The stored answer most similar to `q` in `group`, with its
    /// similarity, if one reaches `threshold`.
    pub fn nearest(
        &self,
        store: &dyn SharedStore,
        group: u64,
        q: &(Vec<i8>, f32),
        threshold: f32,
        now_s: u64,
    ) -> Option<(Digest32, f32)> {
        let mut best: Option<(Digest32, f32)> = None;
        for n in 0..self.pages {
            let Some((bytes, _)) = store.get(&self.page_key(n)) else {
                continue;
            };
            scan(&bytes, group, |answer, expires, norm, v| {
                let sim = cosine(&q.0, q.1, v, norm);
                if now_s < expires && sim >= threshold && best.is_none_or(|(_, s)| sim > s) {
                    if let Ok(d) = <Digest32>::try_from(answer) {
                        best = Some((d, sim));
                    }
                }
            });
        }
        best
    }

    /// Indexes `q` for the answer stored under `answer`.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &self,
        store: &dyn SharedStore,
        group: u64,
        answer: &Digest32,
        q: (Vec<i8>, f32),
        now_s: u64,
        ttl_s: u64,
    ) -> Result<(), Contention> {
        let n =
            u32::from_le_bytes([answer[8], answer[9], answer[10], answer[11]]) % self.pages.max(1);
        let record = Record {
            group,
            answer: *answer,
            stored_at: now_s,
            expires: now_s.saturating_add(ttl_s),
            norm: q.1,
            q: q.0,
        };
        cas_update(
            store,
            &self.page_key(n),
            MAX_RETRIES,
            Page::default,
            |mut page| {
                page.0
                    .retain(|r| now_s < r.expires && !(r.answer == *answer && r.group == group));
                if page.0.len() >= PAGE_VECTORS {
                    if let Some(oldest) = (0..page.0.len()).min_by_key(|&i| page.0[i].stored_at) {
                        page.0.swap_remove(oldest);
                    }
                }
                page.0.push(record.clone());
                Step::Write(page, ())
            },
        )
    }
}
