//! Chunks: direct access to the ring's slots as (at most two) contiguous
//! slices, for items of any type. A write chunk lets a producer build items
//! in place; a read chunk lets a consumer work on items where they lie,
//! without copying, and free them all with one index update.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::{ptr, slice};

use crate::error::TooFewSlots;
use crate::ring::{Consumer, Producer};

/// Free slots of a ring, reserved for writing. Nothing becomes visible to
/// the consumer until [`commit`](Self::commit); dropping the chunk without
/// committing leaves the ring as it was.
pub struct WriteChunkUninit<'a, T> {
    producer: &'a mut Producer<T>,
    first: *mut T,
    first_len: usize,
    second_len: usize,
}

/// Items at the front of a ring, borrowed in place. They stay in the ring
/// until [`commit`](Self::commit) drops and frees them, or iterating the
/// chunk by value moves them out.
pub struct ReadChunk<'a, T> {
    consumer: &'a mut Consumer<T>,
    first: *mut T,
    first_len: usize,
    second_len: usize,
}

/// The `i`-th slot of a chunk made of the run `[first, first + first_len)`
/// followed by the run that wraps to `base`.
///
/// # Safety
/// `i` must be below the chunk's length (both runs together).
#[inline(always)]
unsafe fn nth_slot<T>(first: *mut T, first_len: usize, base: *mut T, i: usize) -> *mut T {
    if i < first_len {
        // SAFETY: `i < first_len`: inside the first run.
        unsafe { first.add(i) }
    } else {
        // SAFETY: the caller keeps `i - first_len` inside the second run.
        unsafe { base.add(i - first_len) }
    }
}

impl<T> Producer<T> {
    /// Reserves exactly `n` free slots, or says how many there are.
    ///
    /// ```
    /// let (mut producer, mut consumer) = microbatch_ringbuf::ring::<String>(4);
    /// let chunk = producer.write_chunk_uninit(3)?;
    /// assert_eq!(chunk.fill_from_iter(["a", "b", "c"].map(String::from)), 3);
    /// assert!(producer.write_chunk_uninit(2).is_err());
    /// let chunk = consumer.read_chunk(3)?;
    /// let (first, second) = chunk.as_slices();
    /// assert_eq!(first.len() + second.len(), 3);
    /// chunk.commit_all();
    /// # Ok::<(), microbatch_ringbuf::TooFewSlots>(())
    /// ```
    pub fn write_chunk_uninit(&mut self, n: usize) -> Result<WriteChunkUninit<'_, T>, TooFewSlots> {
        let available = self.free_slots(n);
        if available < n {
            return Err(TooFewSlots {
                requested: n,
                available,
            });
        }
        Ok(self.reserve(n))
    }

    /// Reserves as many free slots as there are, up to `max` (possibly none).
    #[inline]
    pub fn write_chunk_uninit_up_to(&mut self, max: usize) -> WriteChunkUninit<'_, T> {
        let n = self.free_slots(max).min(max);
        self.reserve(n)
    }

    #[inline(always)]
    fn reserve(&mut self, n: usize) -> WriteChunkUninit<'_, T> {
        let (first, first_len, second_len) = self.shared.runs(self.tail, n);
        WriteChunkUninit {
            producer: self,
            first,
            first_len,
            second_len,
        }
    }
}

impl<'a, T> WriteChunkUninit<'a, T> {
    /// How many slots the chunk holds.
    pub fn len(&self) -> usize {
        self.first_len + self.second_len
    }

    /// Whether the chunk holds no slot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The reserved slots, in ring order: the second slice continues the
    /// first after the ring wraps around.
    pub fn as_mut_slices(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        // SAFETY: the runs are free slots reserved for this chunk, which
        // borrows the only producer mutably; the consumer does not read them
        // before they are committed.
        unsafe {
            (
                slice::from_raw_parts_mut(self.first.cast(), self.first_len),
                slice::from_raw_parts_mut(self.producer.shared.base().cast(), self.second_len),
            )
        }
    }

    /// Makes the first `n` slots of the chunk visible to the consumer.
    ///
    /// # Safety
    /// Those `n` slots must have been initialized through
    /// [`as_mut_slices`](Self::as_mut_slices); they now belong to the ring.
    ///
    /// # Panics
    /// If `n` is larger than the chunk.
    pub unsafe fn commit(self, n: usize) {
        assert!(
            n <= self.len(),
            "commit({n}) on a chunk of {} slots",
            self.len()
        );
        self.producer.commit(n);
    }

    /// Makes every slot of the chunk visible to the consumer.
    ///
    /// # Safety
    /// Every slot must have been initialized.
    pub unsafe fn commit_all(self) {
        let n = self.len();
        // SAFETY: the caller initialized all `n` slots.
        unsafe { self.commit(n) }
    }

    /// Moves items from `iter` into the slots in order until either runs out,
    /// commits them and returns how many. If `iter` panics, the items
    /// written before are committed, so none is leaked or lost.
    pub fn fill_from_iter<I: IntoIterator<Item = T>>(self, iter: I) -> usize {
        /// Commits the slots written so far, also on unwind.
        struct Written<'p, T> {
            producer: &'p mut Producer<T>,
            count: usize,
        }
        impl<T> Drop for Written<'_, T> {
            fn drop(&mut self) {
                self.producer.commit(self.count);
            }
        }

        let WriteChunkUninit {
            producer,
            first,
            first_len,
            second_len,
        } = self;
        let base = producer.shared.base();
        let mut written = Written { producer, count: 0 };
        for item in iter.into_iter().take(first_len + second_len) {
            // SAFETY: `count < first_len + second_len`, and that slot is
            // reserved and still uninitialized.
            unsafe { nth_slot(first, first_len, base, written.count).write(item) };
            written.count += 1;
        }
        written.count
    }
}

impl<T> Consumer<T> {
    /// Borrows exactly the `n` oldest items in place, or says how many there
    /// are.
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, T>, TooFewSlots> {
        let available = self.available(n);
        if available < n {
            return Err(TooFewSlots {
                requested: n,
                available,
            });
        }
        Ok(self.borrow_front(n))
    }

    /// Borrows as many of the oldest items as there are, up to `max`
    /// (possibly none). This is how a worker drains a ring in place.
    #[inline]
    pub fn read_chunk_up_to(&mut self, max: usize) -> ReadChunk<'_, T> {
        let n = self.available(max).min(max);
        self.borrow_front(n)
    }

    #[inline(always)]
    fn borrow_front(&mut self, n: usize) -> ReadChunk<'_, T> {
        let (first, first_len, second_len) = self.shared.runs(self.head, n);
        ReadChunk {
            consumer: self,
            first,
            first_len,
            second_len,
        }
    }
}

impl<'a, T> ReadChunk<'a, T> {
    /// How many items the chunk holds.
    pub fn len(&self) -> usize {
        self.first_len + self.second_len
    }

    /// Whether the chunk holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items, oldest first: the second slice continues the first after
    /// the ring wraps around.
    pub fn as_slices(&self) -> (&[T], &[T]) {
        // SAFETY: the runs hold initialized items that the producer does not
        // touch until they are committed, which needs this chunk by value.
        unsafe {
            (
                slice::from_raw_parts(self.first, self.first_len),
                slice::from_raw_parts(self.consumer.shared.base(), self.second_len),
            )
        }
    }

    /// The items, mutably, oldest first.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        // SAFETY: as in `as_slices`, and the chunk borrows the only consumer
        // mutably.
        unsafe {
            (
                slice::from_raw_parts_mut(self.first, self.first_len),
                slice::from_raw_parts_mut(self.consumer.shared.base(), self.second_len),
            )
        }
    }

    /// Drops the `n` oldest items of the chunk and frees their slots; the
    /// rest stay in the ring.
    ///
    /// # Panics
    /// If `n` is larger than the chunk.
    pub fn commit(self, n: usize) {
        assert!(
            n <= self.len(),
            "commit({n}) on a chunk of {} items",
            self.len()
        );
        /// Frees the slots after their items are dropped, also on unwind:
        /// an item whose `Drop` panics leaks those after it, never drops
        /// anything twice.
        struct Free<'c, T>(&'c mut Consumer<T>, usize);
        impl<T> Drop for Free<'_, T> {
            fn drop(&mut self) {
                self.0.commit(self.1);
            }
        }

        let in_first = n.min(self.first_len);
        let free = Free(self.consumer, n);
        let base = free.0.shared.base();
        // SAFETY: these `n` items are initialized and owned by the ring; the
        // producer cannot reuse their slots before `Free` publishes `head`.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.first, in_first));
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(base, n - in_first));
        }
        drop(free);
    }

    /// Drops every item of the chunk and frees the slots.
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }

    /// Moves every item of the chunk to the end of `out`, oldest first, and
    /// frees the slots: two copies of contiguous runs, for items of any
    /// type. For a consumer that must give the ring up before it works on
    /// the items (`out` reserves room for them if it has too little).
    ///
    /// ```
    /// let (mut producer, mut consumer) = microbatch_ringbuf::ring::<String>(4);
    /// for word in ["a", "b", "c"] {
    ///     producer.push(word.to_owned()).unwrap();
    /// }
    /// let mut out = vec!["z".to_owned()];
    /// consumer.read_chunk_up_to(2).move_into(&mut out);
    /// assert_eq!(out, ["z", "a", "b"]);
    /// assert_eq!(consumer.pop().as_deref(), Some("c"));
    /// ```
    pub fn move_into(self, out: &mut Vec<T>) {
        let n = self.len();
        out.reserve(n);
        let base = self.consumer.shared.base();
        // SAFETY: the chunk's `n` items are initialized and owned by the
        // ring, and `out` has room for `n` more after its length (reserved
        // above) in its own allocation, disjoint from the ring's. The items
        // are moved bitwise, `out` takes ownership by its new length, and
        // the slots are freed without dropping what was in them.
        unsafe {
            let end = out.as_mut_ptr().add(out.len());
            ptr::copy_nonoverlapping(self.first, end, self.first_len);
            ptr::copy_nonoverlapping(base, end.add(self.first_len), self.second_len);
            out.set_len(out.len() + n);
        }
        self.consumer.commit(n);
    }
}

/// Moves the chunk's items out, oldest first; the slots of the items taken
/// are freed when the iterator is dropped, those not taken stay in the ring.
pub struct ReadChunkIntoIter<'a, T> {
    chunk: ReadChunk<'a, T>,
    taken: usize,
    _items: PhantomData<T>,
}

impl<'a, T> IntoIterator for ReadChunk<'a, T> {
    type Item = T;
    type IntoIter = ReadChunkIntoIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        ReadChunkIntoIter {
            chunk: self,
            taken: 0,
            _items: PhantomData,
        }
    }
}

impl<T> Iterator for ReadChunkIntoIter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        let chunk = &self.chunk;
        if self.taken == chunk.len() {
            return None;
        }
        let base = chunk.consumer.shared.base();
        // SAFETY: `taken < len`; the item there is initialized and read once:
        // `taken` moves past it and `Drop` frees its slot without dropping it.
        let item = unsafe { nth_slot(chunk.first, chunk.first_len, base, self.taken).read() };
        self.taken += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.chunk.len() - self.taken;
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for ReadChunkIntoIter<'_, T> {}

impl<T> Drop for ReadChunkIntoIter<'_, T> {
    fn drop(&mut self) {
        self.chunk.consumer.commit(self.taken);
    }
}
