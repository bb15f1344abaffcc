//! What the native benches share.

use std::time::Instant;

/// Median nanoseconds per call of `f` over `batches` batches of `iters`
/// (after a warm-up of a tenth of a batch).
pub fn time<F: FnMut()>(iters: u32, batches: usize, mut f: F) -> f64 {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let mut samples: Vec<f64> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}
