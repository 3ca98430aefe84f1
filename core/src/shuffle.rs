//! How a partial aggregate crosses cores: the shuffle mesh, a W×W grid of
//! SPSC rings that carries each worker's [`Message`] (an epoch's part of
//! one key partition) to the worker that owns the partition, and a grid of
//! return rings that carries emptied parts back to their sender for reuse.
//! The return path is the only way data flows back against the stream.
//!
//! A worker's messages to itself do not travel: the grid has no ring on its
//! diagonal, and the worker merges its own part in place.

use microbatch_ringbuf::{try_ring, CapacityError, Consumer, Full, Producer};

use crate::sync::wait::Idle;

/// A part on its way from its sender to the owner of its partition, or an
/// emptied part on its way back.
pub(crate) struct Message<P> {
    /// The epoch the part belongs to.
    pub(crate) epoch: u64,
    /// The partial aggregate.
    pub(crate) part: P,
}

/// A message between two workers could not be delivered because the other
/// worker is gone (its endpoint was dropped); the message is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {to} left the mesh; the message is handed back")]
pub struct Disconnected<M> {
    /// The worker the message was for.
    pub to: usize,
    /// The message.
    pub message: M,
}

/// One worker's end of the mesh: its outboxes to every other worker, its
/// inboxes from every other worker, and the matching buffer-return rings.
///
/// Invariants: messages from one sender to one receiver arrive in the order
/// they were sent (each pair has its own FIFO ring); a worker waiting for
/// room to send keeps draining its own inboxes (see [`Endpoint::send`]), so
/// the mesh cannot deadlock while every worker keeps calling the mesh
/// (`two_workers_flooding_each_other_both_finish`, and the loom model
/// `loom-tests/tests/mesh.rs`).
pub struct Endpoint<M> {
    id: usize,
    /// `outboxes[to]`; `None` at `to == id`.
    outboxes: Vec<Option<Producer<M>>>,
    /// `inboxes[from]`; `None` at `from == id`.
    inboxes: Vec<Option<Consumer<M>>>,
    /// `returns_to[from]`: emptied buffers back to the worker they came from.
    returns_to: Vec<Option<Producer<M>>>,
    /// `returns_from[to]`: our buffers coming back from the worker we sent to.
    returns_from: Vec<Option<Consumer<M>>>,
    /// Round-robin cursor over the inboxes, so no sender is starved.
    next_inbox: usize,
    /// Round-robin cursor over the return rings.
    next_return: usize,
}

/// Builds the mesh of `workers` endpoints, with rings of `capacity` messages
/// (rounded up to a power of two) between every ordered pair of workers.
/// Allocation happens here only.
pub fn mesh<M>(workers: usize, capacity: usize) -> Result<Vec<Endpoint<M>>, CapacityError> {
    fn empty<T>(workers: usize) -> Vec<Option<T>> {
        (0..workers).map(|_| None).collect()
    }
    let mut endpoints: Vec<Endpoint<M>> = (0..workers)
        .map(|id| Endpoint {
            id,
            outboxes: empty(workers),
            inboxes: empty(workers),
            returns_to: empty(workers),
            returns_from: empty(workers),
            next_inbox: 0,
            next_return: 0,
        })
        .collect();
    for from in 0..workers {
        for to in (0..workers).filter(|&to| to != from) {
            let (tx, rx) = try_ring(capacity)?;
            endpoints[from].outboxes[to] = Some(tx);
            endpoints[to].inboxes[from] = Some(rx);
            let (back_tx, back_rx) = try_ring(capacity)?;
            endpoints[to].returns_to[from] = Some(back_tx);
            endpoints[from].returns_from[to] = Some(back_rx);
        }
    }
    Ok(endpoints)
}

impl<M> Endpoint<M> {
    /// This worker's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many workers the mesh joins.
    pub fn workers(&self) -> usize {
        self.outboxes.len()
    }

    /// Sends `message` to worker `to`, waiting while its ring is full. While
    /// waiting it drains this worker's inboxes into `on_message` (with the
    /// sender's index), so two workers sending to each other through full
    /// rings both make progress.
    ///
    /// # Panics
    /// If `to` is this worker or out of range: a worker's part for itself
    /// never travels through the mesh.
    pub fn send(
        &mut self,
        to: usize,
        message: M,
        mut on_message: impl FnMut(usize, M),
    ) -> Result<(), Disconnected<M>> {
        let mut message = message;
        let mut idle = Idle::new();
        loop {
            let outbox = self.outboxes[to]
                .as_mut()
                .unwrap_or_else(|| panic!("worker {to} cannot send to itself through the mesh"));
            match outbox.try_push(message) {
                Ok(()) => return Ok(()),
                Err(Full(back)) => message = back,
            }
            if outbox.is_abandoned() {
                return Err(Disconnected { to, message });
            }
            // No deadlock: keep draining our own inbox while waiting.
            let mut drained = false;
            while let Some((from, received)) = self.try_recv() {
                on_message(from, received);
                drained = true;
            }
            if drained {
                idle.reset();
            } else {
                idle.step();
            }
        }
    }

    /// Receives one message from any other worker, visiting the inboxes
    /// round-robin; `None` if all are empty right now.
    pub fn try_recv(&mut self) -> Option<(usize, M)> {
        // Hot path: one load of a cached index per empty inbox.
        pop_round_robin(&mut self.inboxes, &mut self.next_inbox)
    }

    /// Hands an emptied buffer back to the worker `from` that sent it, or
    /// returns it if that worker's return ring is full or gone (the caller
    /// then keeps or drops it).
    pub fn give_back(&mut self, from: usize, buffer: M) -> Result<(), M> {
        match self.returns_to[from].as_mut() {
            Some(ring) => ring.try_push(buffer).map_err(Full::into_inner),
            None => Err(buffer),
        }
    }

    /// Takes one of this worker's buffers that a receiver handed back, if
    /// any has come back.
    pub fn reclaim(&mut self) -> Option<M> {
        pop_round_robin(&mut self.returns_from, &mut self.next_return).map(|(_, buffer)| buffer)
    }

    /// Whether every other worker has left the mesh and nothing is left in
    /// this worker's inboxes.
    pub fn is_drained_and_alone(&self) -> bool {
        self.inboxes
            .iter()
            .flatten()
            .all(|inbox| inbox.is_abandoned() && inbox.is_empty())
    }
}

/// Pops one item from the first non-empty ring, starting at `cursor` and
/// moving it past the ring served, so that no ring is starved. Returns the
/// ring's index with the item.
fn pop_round_robin<T>(rings: &mut [Option<Consumer<T>>], cursor: &mut usize) -> Option<(usize, T)> {
    let count = rings.len();
    for step in 0..count {
        let index = (*cursor + step) % count;
        if let Some(item) = rings[index].as_mut().and_then(Consumer::try_pop) {
            *cursor = (index + 1) % count;
            return Some((index, item));
        }
    }
    None
}

impl<M> std::fmt::Debug for Endpoint<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn messages_arrive_in_order_per_sender_and_none_to_self() {
        let mut endpoints = mesh::<u64>(3, 4).unwrap();
        let mut received = Vec::new();
        {
            let (first, rest) = endpoints.split_at_mut(1);
            for i in 0..3 {
                first[0].send(1, i, |_, _| unreachable!()).unwrap();
                first[0].send(2, 10 + i, |_, _| unreachable!()).unwrap();
            }
            while let Some(m) = rest[0].try_recv() {
                received.push(m);
            }
        }
        assert_eq!(received, [(0, 0), (0, 1), (0, 2)]);
        assert_eq!(endpoints[2].try_recv(), Some((0, 10)));
        assert_eq!(endpoints[0].try_recv(), None);
    }

    #[test]
    fn buffers_travel_back_to_their_sender() {
        let mut endpoints = mesh::<Vec<u8>>(2, 2).unwrap();
        let buffer = Vec::with_capacity(64);
        let ptr = buffer.as_ptr();
        endpoints[0].send(1, buffer, |_, _| {}).unwrap();
        let (from, mut got) = endpoints[1].try_recv().unwrap();
        got.clear();
        endpoints[1].give_back(from, got).unwrap();
        let back = endpoints[0].reclaim().unwrap();
        assert_eq!(back.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!(back.capacity(), 64);
    }

    #[test]
    fn send_to_a_departed_worker_hands_the_message_back() {
        let mut endpoints = mesh::<u64>(2, 1).unwrap();
        endpoints[0].send(1, 1, |_, _| {}).unwrap();
        drop(endpoints.pop());
        let error = endpoints[0].send(1, 2, |_, _| {}).unwrap_err();
        assert_eq!((error.to, error.message), (1, 2));
        assert!(endpoints[0].is_drained_and_alone());
    }

    #[test]
    #[should_panic(expected = "cannot send to itself")]
    fn sending_to_itself_is_a_bug() {
        let mut endpoints = mesh::<u64>(2, 1).unwrap();
        let _ = endpoints[0].send(0, 1, |_, _| {});
    }

    #[test]
    fn two_workers_flooding_each_other_both_finish() {
        const COUNT: u64 = 100_000;
        let endpoints = mesh::<u64>(2, 2).unwrap();
        let handles: Vec<_> = endpoints
            .into_iter()
            .map(|mut endpoint| {
                crate::sync::cold::ThreadBuilder::new()
                    .spawn(move || {
                        let other = 1 - endpoint.id();
                        let mut got = Vec::new();
                        for i in 0..COUNT {
                            endpoint.send(other, i, |_, m| got.push(m)).unwrap();
                        }
                        while (got.len() as u64) < COUNT {
                            match endpoint.try_recv() {
                                Some((_, m)) => got.push(m),
                                None => crate::sync::wait::Idle::new().snooze(),
                            }
                        }
                        got
                    })
                    .unwrap()
            })
            .collect();
        for handle in handles {
            let got = handle.join().unwrap();
            assert_eq!(got, (0..COUNT).collect::<Vec<_>>());
        }
    }
}
