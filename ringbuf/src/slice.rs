//! Batch transfer of `Copy` items: one copy per contiguous run and one pair
//! of index updates (at most one load of the other side's index, one store
//! of our own) per call, whatever the batch size.

use std::ptr;

use crate::ring::{Consumer, Producer};

impl<T: Copy> Producer<T> {
    /// Copies as many items from the front of `items` as there are free
    /// slots and returns how many it copied (0 when full). Wait-free.
    ///
    /// ```
    /// let (mut producer, mut consumer) = microbatch_ringbuf::ring::<u32>(4);
    /// assert_eq!(producer.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = [0; 8];
    /// assert_eq!(consumer.pop_slice(&mut out), 4);
    /// assert_eq!(out[..4], [1, 2, 3, 4]);
    /// ```
    #[inline]
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        // Hot path.
        let n = self.free_slots(items.len()).min(items.len());
        if n == 0 {
            return 0;
        }
        let (first, first_len, second_len) = self.shared.runs(self.tail, n);
        // SAFETY: slots `[tail, tail + n)` are free (n ≤ free slots) and the
        // consumer does not read them before `tail` is published; `items`
        // cannot overlap the ring's private allocation.
        unsafe {
            ptr::copy_nonoverlapping(items.as_ptr(), first, first_len);
            ptr::copy_nonoverlapping(
                items.as_ptr().add(first_len),
                self.shared.base(),
                second_len,
            );
        }
        self.commit(n);
        n
    }
}

impl<T: Copy> Consumer<T> {
    /// Moves as many of the oldest items into the front of `out` as fit and
    /// returns how many it moved (0 when empty). Wait-free.
    #[inline]
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        // Hot path.
        let n = self.available(out.len()).min(out.len());
        if n == 0 {
            return 0;
        }
        let (first, first_len, second_len) = self.shared.runs(self.head, n);
        // SAFETY: items `[head, head + n)` are initialized (n ≤ available)
        // and the producer does not write their slots before `head` is
        // published past them; `out` cannot overlap the ring's allocation.
        unsafe {
            ptr::copy_nonoverlapping(first, out.as_mut_ptr(), first_len);
            ptr::copy_nonoverlapping(
                self.shared.base(),
                out.as_mut_ptr().add(first_len),
                second_len,
            );
        }
        self.commit(n);
        n
    }
}
