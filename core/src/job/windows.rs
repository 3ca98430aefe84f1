//! How records fall into aligned windows of event time: [`Windows`]
//! (tumbling or hopping, aligned to the Unix epoch, folded into panes of
//! the gcd of size and slide) and one [`Window`], `[start, end)`.

use std::time::Duration;

/// How records fall into windows: each window covers `[start, start +
/// size)` ms of event time, with `start` a multiple of `slide` (tumbling:
/// `slide == size`, one window per record; hopping: `size / slide`
/// windows per record, rounded up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub(super) size_ms: u64,
    pub(super) slide_ms: u64,
}

impl Windows {
    /// Back-to-back windows of `size` (at least 1 ms).
    pub fn tumbling(size: Duration) -> Self {
        let size_ms = (size.as_millis() as u64).max(1);
        Windows {
            size_ms,
            slide_ms: size_ms,
        }
    }

    /// Windows of `size` starting every `slide` (at least 1 ms, at most
    /// `size`): a record is in each of the windows that cover it. Records
    /// fold into panes as long as the greatest common divisor of the two,
    /// and a window is combined from its panes when it closes: a slide
    /// that divides the size keeps panes long (10 s / 2 s: panes of 2 s);
    /// one that does not makes them short (10 s / 3 s: 1 s), down to 1 ms,
    /// and each window then combines that many more.
    pub fn hopping(size: Duration, slide: Duration) -> Self {
        let size_ms = (size.as_millis() as u64).max(1);
        let slide_ms = (slide.as_millis() as u64).clamp(1, size_ms);
        Windows { size_ms, slide_ms }
    }

    /// The length of a window, in ms.
    pub fn size_ms(&self) -> u64 {
        self.size_ms
    }

    /// The length of a pane: the greatest common divisor of the size and
    /// the slide, so that every window is a whole number of panes.
    pub(super) fn pane_ms(&self) -> u64 {
        let (mut a, mut b) = (self.size_ms, self.slide_ms);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    /// The starts of the windows that cover event time `t`, newest first.
    #[inline]
    pub(super) fn starts(&self, t: u64) -> impl Iterator<Item = u64> {
        let newest = t - t % self.slide_ms;
        let (size, slide) = (self.size_ms, self.slide_ms);
        (0..size.div_ceil(slide))
            .map(move |k| newest.checked_sub(k * slide))
            .map_while(move |start| start.filter(|&start| start + size > t))
    }
}

/// One window of event time, `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Window {
    /// Its first millisecond.
    pub start_ms: u64,
    /// The millisecond after its last.
    pub end_ms: u64,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_to_the_epoch_and_cover_each_time_once_per_slide() {
        let tumbling = Windows::tumbling(Duration::from_secs(10));
        assert_eq!(tumbling.starts(0).collect::<Vec<_>>(), [0]);
        assert_eq!(tumbling.starts(9_999).collect::<Vec<_>>(), [0]);
        assert_eq!(tumbling.starts(10_000).collect::<Vec<_>>(), [10_000]);
        let hopping = Windows::hopping(Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(
            hopping.starts(13_500).collect::<Vec<_>>(),
            [12_000, 10_000, 8_000, 6_000, 4_000]
        );
        // Near the start of time, only the windows that begin at or after 0.
        assert_eq!(hopping.starts(1_000).collect::<Vec<_>>(), [0]);
        assert_eq!(hopping.starts(2_000).collect::<Vec<_>>(), [2_000, 0]);
        // A slide that does not divide the size: ceil(size / slide) at most.
        let uneven = Windows::hopping(Duration::from_millis(10), Duration::from_millis(4));
        for t in 0..100u64 {
            for start in uneven.starts(t) {
                assert!(
                    start % 4 == 0 && start <= t && t < start + 10,
                    "{t} {start}"
                );
            }
            let expected = (0..=t).filter(|s| s % 4 == 0 && t < s + 10).count();
            assert_eq!(uneven.starts(t).count(), expected, "t = {t}");
        }
    }
}
