//! A worker's parts of one batch as a job's hooks see them: one part per
//! partition, either the elements of a slice or one side of each pair of a
//! slice of pairs (the parts of two jobs run side by side, see
//! [`Job::and`](super::Job::and)). The view is a pointer, a length and a
//! stride, so indexing it costs what indexing a slice does.
//!
//! This module holds the job layer's only `unsafe`: the view stands for a
//! `&'a mut [T]` (or for the `.0` or `.1` fields of a `&'a mut [(A, B)]`),
//! and every access goes through a checked index.

use std::marker::PhantomData;
use std::ops::{Index, IndexMut};
use std::ptr::NonNull;

/// The parts of one batch, one per partition: what [`Job::absorb`] folds
/// into. Built from a slice (`Parts::from(&mut parts[..])`); reads like
/// one (`len`, `parts[p]`, `iter_mut`).
///
/// [`Job::absorb`]: super::Job::absorb
///
/// ```
/// use microbatch::job::Parts;
///
/// let mut counts = vec![0u64; 3];
/// let mut parts = Parts::from(&mut counts[..]);
/// parts[1] += 5;
/// for part in parts.iter_mut() {
///     *part += 1;
/// }
/// assert_eq!(parts.len(), 3);
/// assert_eq!(counts, [1, 6, 1]);
/// ```
pub struct Parts<'a, T> {
    /// The first part; dangling (and never read) when `len` is 0.
    first: NonNull<T>,
    len: usize,
    /// Bytes from one part to the next.
    stride: usize,
    /// The view borrows its parts mutably for `'a`.
    borrow: PhantomData<&'a mut T>,
}

impl<'a, T> From<&'a mut [T]> for Parts<'a, T> {
    fn from(slice: &'a mut [T]) -> Self {
        let len = slice.len();
        Parts {
            first: NonNull::from(slice).cast(),
            len,
            stride: std::mem::size_of::<T>(),
            borrow: PhantomData,
        }
    }
}

impl<'a, T> From<&'a mut Vec<T>> for Parts<'a, T> {
    fn from(parts: &'a mut Vec<T>) -> Self {
        Parts::from(parts.as_mut_slice())
    }
}

impl<'a, T> Parts<'a, T> {
    /// How many parts (partitions) there are.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Part `index`, if there is one.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        // SAFETY: `index < len`, so the part lies inside the borrowed
        // parts (see `at`); `&self` lends it shared for as long as the view
        // is borrowed.
        (index < self.len).then(|| unsafe { self.at(index).as_ref() })
    }

    /// Part `index`, mutably, if there is one.
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        // SAFETY: `index < len`, so the part lies inside the borrowed
        // parts; `&mut self` makes this the only reference into the view
        // while it lives.
        (index < self.len).then(|| unsafe { self.at(index).as_mut() })
    }

    /// The first part, if there is one.
    #[inline]
    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    /// The first part, mutably, if there is one.
    #[inline]
    pub fn first_mut(&mut self) -> Option<&mut T> {
        self.get_mut(0)
    }

    /// The first part and a view of the others.
    pub fn split_first_mut(&mut self) -> Option<(&mut T, Parts<'_, T>)> {
        if self.len == 0 {
            return None;
        }
        let rest = Parts {
            first: if self.len > 1 {
                self.at(1)
            } else {
                NonNull::dangling()
            },
            len: self.len - 1,
            stride: self.stride,
            borrow: PhantomData,
        };
        // SAFETY: part 0 exists (`len > 0`) and lies outside `rest`, which
        // starts at part 1; both borrow from `&mut self`.
        Some((unsafe { self.at(0).as_mut() }, rest))
    }

    /// The parts in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        // SAFETY: as `get`: every `index < len`.
        (0..self.len).map(|index| unsafe { self.at(index).as_ref() })
    }

    /// The parts in order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        let view = &*self;
        // SAFETY: every `index < len` is yielded once, so the references
        // never alias; they borrow from `&mut self`.
        (0..view.len).map(move |index| unsafe { view.at(index).as_mut() })
    }

    /// A shorter-lived view of the same parts, so that one view can be
    /// handed to several calls in turn.
    #[inline]
    pub fn reborrow(&mut self) -> Parts<'_, T> {
        Parts {
            first: self.first,
            len: self.len,
            stride: self.stride,
            borrow: PhantomData,
        }
    }

    /// Where part `index` lies. Callers check `index < len`.
    #[inline(always)]
    fn at(&self, index: usize) -> NonNull<T> {
        debug_assert!(index < self.len);
        // SAFETY: for `index < len` the offset stays inside the parts the
        // view borrows (part `index` starts `index * stride` bytes after
        // part 0), so it neither overflows nor leaves the allocation.
        unsafe { self.first.byte_add(index * self.stride) }
    }
}

impl<'a, A, B> Parts<'a, (A, B)> {
    /// The first side of every pair: the first job's parts.
    #[inline]
    pub fn firsts(&mut self) -> Parts<'_, A> {
        self.side(std::mem::offset_of!((A, B), 0))
    }

    /// The second side of every pair: the second job's parts.
    #[inline]
    pub fn seconds(&mut self) -> Parts<'_, B> {
        self.side(std::mem::offset_of!((A, B), 1))
    }

    /// The field `offset` bytes into each pair, as a view of its own.
    #[inline]
    fn side<S>(&mut self, offset: usize) -> Parts<'_, S> {
        let first = if self.len == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: pair 0 exists, and `offset` is that of one of its
            // fields (`offset_of!`), so the pointer stays inside the pair
            // and is aligned for the field's type.
            unsafe { self.first.byte_add(offset).cast() }
        };
        Parts {
            first,
            len: self.len,
            stride: self.stride,
            borrow: PhantomData,
        }
    }
}

impl<'a, T> IntoIterator for Parts<'a, T> {
    type Item = &'a mut T;
    type IntoIter = IntoIter<'a, T>;

    fn into_iter(self) -> IntoIter<'a, T> {
        IntoIter {
            parts: self,
            next: 0,
        }
    }
}

/// The parts of a view, each once, mutably (see [`Parts`]'s
/// `IntoIterator`).
pub struct IntoIter<'a, T> {
    parts: Parts<'a, T>,
    next: usize,
}

impl<'a, T> Iterator for IntoIter<'a, T> {
    type Item = &'a mut T;

    fn next(&mut self) -> Option<&'a mut T> {
        if self.next == self.parts.len {
            return None;
        }
        let mut part = self.parts.at(self.next);
        self.next += 1;
        // SAFETY: each `index < len` is yielded once, so no two references
        // alias; the view was moved into the iterator and borrowed its
        // parts for `'a`.
        Some(unsafe { part.as_mut() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.parts.len - self.next;
        (left, Some(left))
    }
}

impl<T> Index<usize> for Parts<'_, T> {
    type Output = T;

    #[inline]
    fn index(&self, index: usize) -> &T {
        match self.get(index) {
            Some(part) => part,
            None => out_of_bounds(index, self.len),
        }
    }
}

impl<T> IndexMut<usize> for Parts<'_, T> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        match self.get_mut(index) {
            Some(part) => part,
            None => out_of_bounds(index, len),
        }
    }
}

#[cold]
fn out_of_bounds(index: usize, len: usize) -> ! {
    panic!("part {index} of {len} parts");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_of_a_slice_reads_and_writes_its_elements() {
        let mut parts = vec![1u64, 2, 3];
        let mut view = Parts::from(&mut parts);
        assert_eq!((view.len(), view.is_empty()), (3, false));
        view[0] += 10;
        *view.get_mut(2).unwrap() *= 2;
        assert_eq!(view.get(3), None);
        assert_eq!(view.iter().copied().collect::<Vec<_>>(), [11, 2, 6]);
        for part in view.iter_mut() {
            *part += 1;
        }
        let (first, mut rest) = view.split_first_mut().unwrap();
        *first = 0;
        rest[1] = 99;
        assert_eq!(rest.len(), 2);
        assert_eq!(parts, [0, 3, 99]);
    }

    #[test]
    fn each_side_of_pairs_is_a_view_of_its_own() {
        // Sides of different sizes and alignments, so a wrong offset or
        // stride would show.
        let mut pairs: Vec<(u8, u64)> = vec![(1, 10), (2, 20), (3, 30)];
        let mut view = Parts::from(&mut pairs);
        for first in view.firsts() {
            *first += 1;
        }
        let mut seconds = view.seconds();
        seconds[2] += 5;
        assert_eq!(seconds.iter().sum::<u64>(), 65);
        assert_eq!(pairs, [(2, 10), (3, 20), (4, 35)]);

        let mut nested: Vec<((u16, u32), u8)> = vec![((1, 2), 3), ((4, 5), 6)];
        let mut view = Parts::from(&mut nested);
        view.firsts().seconds()[1] = 50;
        view.firsts().reborrow().firsts()[0] = 10;
        assert_eq!(nested, [((10, 2), 3), ((4, 50), 6)]);
    }

    #[test]
    fn an_empty_view_has_no_parts() {
        let mut none: Vec<(u32, u32)> = Vec::new();
        let mut view = Parts::from(&mut none);
        assert!(view.is_empty());
        assert!(view.first_mut().is_none());
        assert!(view.split_first_mut().is_none());
        assert_eq!(view.firsts().iter().count(), 0);
        assert_eq!(view.seconds().into_iter().count(), 0);
        let mut one = vec![7u32];
        let mut view = Parts::from(&mut one);
        let (_, rest) = view.split_first_mut().unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    #[should_panic(expected = "part 2 of 2 parts")]
    fn an_index_past_the_end_panics() {
        let mut parts = vec![0u8; 2];
        let view = Parts::from(&mut parts);
        let _ = view[2];
    }
}
