//! The memory budget of renders in progress (MAX_RENDER_MEMORY): each render reserves what
//! its view will take — estimated from the plan before any tile is decoded — and a render
//! that would take the total over the budget is refused at once with 503 + Retry-After,
//! instead of queueing and swelling the process. One render larger than the whole budget
//! still runs when it is alone, so that no valid request is refused for ever.

use iipsrv_core::info::ImageInfo;
use iipsrv_core::view::View;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes that renders in progress have reserved, against a limit.
pub struct MemoryBudget {
    limit: u64,
    reserved: AtomicU64,
}

impl std::fmt::Debug for MemoryBudget {
    // The limit only: the Debug text of the render settings fingerprints cached answers,
    // which must not change with the load.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryBudget({})", self.limit)
    }
}

/// Bytes held by one render; given back when dropped.
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes (0: no limit).
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            reserved: AtomicU64::new(0),
        })
    }

    /// Reserves `bytes`, or None when renders in progress hold too much for them.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let admit = |held: u64| {
            let fits = self.limit == 0 || held.saturating_add(bytes) <= self.limit || held == 0;
            fits.then_some(held.saturating_add(bytes))
        };
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, admit)
            .ok()?;
        Some(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }
}

/// Bytes per output pixel an AV1 encoder holds (libavif's YUV copy and aom's frame
/// buffers), measured at 4 megapixels with Debian's libavif 0.11 and aom 3.6: about 20 when
/// lossy, 46 when lossless (4:4:4).
pub(crate) const AVIF_ENCODER_BYTES: u64 = 24;
/// [`AVIF_ENCODER_BYTES`] of a lossless encode.
pub(crate) const AVIF_LOSSLESS_ENCODER_BYTES: u64 = 48;

/// The memory a render of `view` takes at its peak, roughly: the decoded box of the chosen
/// level (`source_pixels`) in its stored sample size, its float copies when the view is
/// processed or the image is not 8-bit, the output's few full-size copies (resized,
/// rotated, encoder buffer) and what the encoder holds per output pixel beyond them
/// (`encoder_bytes`: 0 but for AVIF).
pub(crate) fn estimate(
    info: &ImageInfo,
    view: &View,
    source_pixels: u64,
    encoder_bytes: u64,
) -> u64 {
    let channels = u64::from(info.channels.max(1));
    let sample = u64::from(info.bits_per_sample.div_ceil(8).max(1));
    let floats = if info.needs_float() || view.process.needs_float() {
        source_pixels * channels * 4 * 2
    } else {
        0
    };
    let output = u64::from(view.width) * u64::from(view.height) * (channels * 3 + encoder_bytes);
    source_pixels * channels * sample + floats + output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stay_within_the_limit_and_are_given_back() {
        let budget = MemoryBudget::new(100);
        let a = budget.reserve(60).expect("first");
        assert!(budget.reserve(50).is_none(), "over the limit");
        let b = budget.reserve(40).expect("fits");
        assert_eq!(budget.reserved(), 100);
        drop((a, b));
        assert_eq!(budget.reserved(), 0);
        let alone = budget.reserve(500).expect("larger than the budget, alone");
        assert!(budget.reserve(1).is_none());
        drop(alone);
        assert!(
            MemoryBudget::new(0).reserve(u64::MAX / 2).is_some(),
            "0 is no limit"
        );
    }
}
