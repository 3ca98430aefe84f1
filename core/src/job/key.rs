//! How a keyed job gets an item's key: made by value
//! ([`Stream::key_by`](super::Stream::key_by)), or borrowed from the item
//! and owned only when the key is first seen in an epoch
//! ([`Stream::key_by_ref`](super::Stream::key_by_ref)).

use std::borrow::Borrow;
use std::fmt::Debug;
use std::hash::Hash;

/// What a key of a keyed job must be: hashed and compared to group items,
/// `Debug` because the engine names hot keys in its progress reports
/// ([`EpochProgress::hot_keys`](crate::progress::EpochProgress::hot_keys)),
/// and `Send + 'static` to travel to its owner with the epoch's parts.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a key: a key is `Hash + Eq + Debug + Send + 'static`",
    label = "the key this closure returns",
    note = "Debug: the engine names hot keys in its progress reports; derive it, or key by a field that has it"
)]
pub trait Key: Hash + Eq + Debug + Send + 'static {}

impl<K: Hash + Eq + Debug + Send + 'static> Key for K {}

/// Gives an item's key. Implemented by `Fn(&T) -> K` closures (keys by
/// value) and by [`ByRef`] (keys borrowed from the item); a keyed job is
/// generic over it.
///
/// The stored `Key` borrows as the `Lookup` that is hashed, compared and
/// partitioned, with the same hash (as [`Borrow`] requires): `String` as
/// `str`, or any key as itself.
pub trait KeyFn<T>: Send + Sync + 'static {
    /// The key stored in the tables and carried by result rows.
    type Key: Key + Borrow<Self::Lookup>;
    /// What the fold hashes, compares and partitions by.
    type Lookup: ?Sized + Hash + Eq;
    /// The key as [`key`](KeyFn::key) gives it: made, or borrowed.
    type Ref<'a>;

    /// The key of `item`. Hot path.
    fn key<'a>(&self, item: &'a T) -> Self::Ref<'a>;

    /// The form of `key` that is hashed and compared.
    fn lookup<'k>(key: &'k Self::Ref<'_>) -> &'k Self::Lookup;

    /// The key to store, when it is first seen in an epoch: moved if it
    /// was made, copied out of the item if borrowed.
    fn own(key: Self::Ref<'_>) -> Self::Key;
}

impl<T, F, K> KeyFn<T> for F
where
    F: Fn(&T) -> K + Send + Sync + 'static,
    K: Key,
{
    type Key = K;
    type Lookup = K;
    type Ref<'a> = K;

    #[inline(always)]
    fn key(&self, item: &T) -> K {
        self(item)
    }

    #[inline(always)]
    fn lookup(key: &K) -> &K {
        key
    }

    #[inline(always)]
    fn own(key: K) -> K {
        key
    }
}

/// A key borrowed from the item, made by
/// [`Stream::key_by_ref`](super::Stream::key_by_ref).
#[derive(Debug, Clone, Copy)]
pub struct ByRef<G>(pub(super) G);

impl<T, G, Q> KeyFn<T> for ByRef<G>
where
    G: for<'a> Fn(&'a T) -> &'a Q + Send + Sync + 'static,
    Q: ?Sized + Hash + Eq + ToOwned + 'static,
    Q::Owned: Key,
{
    type Key = Q::Owned;
    type Lookup = Q;
    type Ref<'a> = &'a Q;

    #[inline(always)]
    fn key<'a>(&self, item: &'a T) -> &'a Q {
        (self.0)(item)
    }

    #[inline(always)]
    fn lookup<'k>(key: &'k &Q) -> &'k Q {
        key
    }

    #[inline(always)]
    fn own(key: &Q) -> Q::Owned {
        key.to_owned()
    }
}
