//! The Nexmark queries that fit the engine, as jobs over [`NexEvent`]s,
//! after the Flink Nexmark suite's SQL (all over bids; persons and
//! auctions are read and dropped, as a source of all events feeds every
//! query there too):
//!
//! | query | what | here |
//! | --- | --- | --- |
//! | q0 | pass-through: `auction, bidder, price, dateTime` of every bid | [`Stream::rows`](microbatch::job::Stream::rows) |
//! | q1 | currency conversion: `0.908 * price` | a map, rows |
//! | q2 | selection: `auction % 123 = 0`, `auction, price` | a filter, rows |
//! | q5 | hot items: bids per auction in hopping windows (10 s every 2 s), then the auctions with the most bids per window | a windowed count, [`regroup`](microbatch::job::Job::regroup)ed by window |
//! | q7 | highest bid: the bids at the highest price of each 10 s tumbling window | a windowed reduction keeping the ties |
//! | q12 | bids per bidder in 10 s processing-time windows | a keyed count per epoch: the epoch is the processing-time window (`engine.interval = "10s"`) |
//!
//! The text fields (`extra` of q0, q1 and q7) are not carried (see
//! [`NexEvent`]).

use std::time::Duration;

use microbatch::job::{self, count, Aggregator, Job, Window, Windows};

use super::event::{Bid, NexEvent};

/// The bids of the events, as every query's first stage.
#[inline(always)]
fn bids(event: &NexEvent) -> Option<Bid> {
    event.bid().copied()
}

/// q0's row: every bid.
pub type Q0Row = Bid;

/// q0: pass-through.
pub fn q0() -> impl Job<NexEvent, Row = Q0Row> {
    job::records::<NexEvent>().flat_map(bids).rows()
}

/// q1's row: a bid, its price in euros.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EuroBid {
    /// The auction bid on.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// The price, converted at 0.908 euro to the dollar.
    pub price: f64,
    /// When the bid was made, ms since the Unix epoch.
    pub date_time: u64,
}

/// The conversion of q1.
pub fn to_euros(bid: &Bid) -> EuroBid {
    EuroBid {
        auction: bid.auction,
        bidder: bid.bidder,
        price: 0.908 * bid.price as f64,
        date_time: bid.date_time,
    }
}

/// q1: currency conversion.
pub fn q1() -> impl Job<NexEvent, Row = EuroBid> {
    job::records::<NexEvent>()
        .flat_map(bids)
        .map(to_euros)
        .rows()
}

/// q2's row: `(auction, price)`.
pub type Q2Row = (u64, u64);

/// q2's selection: the auctions whose id is a multiple of 123.
pub fn q2_selects(bid: &Bid) -> bool {
    bid.auction.is_multiple_of(123)
}

/// q2: selection.
pub fn q2() -> impl Job<NexEvent, Row = Q2Row> {
    job::records::<NexEvent>()
        .flat_map(bids)
        .filter(q2_selects)
        .map(|bid: &Bid| (bid.auction, bid.price))
        .rows()
}

/// q5's windows: 10 s, starting every 2 s.
pub fn q5_windows() -> Windows {
    Windows::hopping(Duration::from_secs(10), Duration::from_secs(2))
}

/// q5's row: a window, its greatest count of bids on one auction, and the
/// auctions that had it, in increasing order.
pub type Q5Row = (Window, HotItems);

/// The auctions with the most bids in a window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HotItems {
    /// The bids each of them had.
    pub bids: u64,
    /// The auctions, in increasing order.
    pub auctions: Vec<u64>,
}

/// Keeps, over `(window, auction, bids)` rows, the greatest `bids` and
/// every auction that had it (Flink's q5 joins each window's counts with
/// their maximum, `num >= maxn`, which keeps the ties too).
#[derive(Debug, Clone, Copy)]
pub struct Hottest;

impl Aggregator<(Window, u64, u64)> for Hottest {
    type State = HotItems;
    type Output = HotItems;

    fn init(&self) -> HotItems {
        HotItems::default()
    }

    fn update(&self, state: &mut HotItems, &(_, auction, bids): &(Window, u64, u64)) {
        if state.auctions.is_empty() || bids > state.bids {
            state.bids = bids;
            state.auctions.clear();
        }
        if bids == state.bids {
            state.auctions.push(auction);
        }
    }

    fn merge(&self, state: &mut HotItems, other: HotItems) {
        if other.auctions.is_empty() || other.bids < state.bids {
            return;
        }
        if state.auctions.is_empty() || other.bids > state.bids {
            *state = other;
        } else {
            state.auctions.extend(other.auctions);
        }
    }

    fn finish(&self, mut state: HotItems) -> HotItems {
        state.auctions.sort_unstable();
        state
    }
}

/// q5: hot items.
pub fn q5() -> impl Job<NexEvent, Row = Q5Row> {
    job::records::<NexEvent>()
        .flat_map(bids)
        .event_time(|bid: &Bid| bid.date_time)
        .window(q5_windows())
        .key_by(|bid: &Bid| bid.auction)
        .aggregate(count())
        .regroup(|&(window, _, _): &(Window, u64, u64)| window, Hottest)
}

/// q7's window: 10 s tumbling.
pub fn q7_windows() -> Windows {
    Windows::tumbling(Duration::from_secs(10))
}

/// q7's row: a window and the bids at its highest price, in increasing
/// order.
pub type Q7Row = (Window, (), Vec<Bid>);

/// Keeps the bids at the highest price (every one, if several tie).
#[derive(Debug, Clone, Copy)]
pub struct HighestBids;

impl Aggregator<Bid> for HighestBids {
    /// The bids at the highest price so far; its price is theirs.
    type State = Vec<Bid>;
    type Output = Vec<Bid>;

    fn init(&self) -> Vec<Bid> {
        Vec::new()
    }

    // Hot path: one comparison per bid; the vector grows only at a new
    // highest price or a tie (its memory is the pane's).
    #[inline]
    fn update(&self, state: &mut Vec<Bid>, bid: &Bid) {
        match state.first().map(|top| top.price) {
            Some(top) if bid.price < top => {}
            Some(top) if bid.price == top => state.push(*bid),
            _ => {
                state.clear();
                state.push(*bid);
            }
        }
    }

    fn merge(&self, state: &mut Vec<Bid>, other: Vec<Bid>) {
        for bid in &other {
            self.update(state, bid);
        }
    }

    fn finish(&self, mut state: Vec<Bid>) -> Vec<Bid> {
        state.sort_unstable();
        state
    }
}

/// q7: highest bid.
pub fn q7() -> impl Job<NexEvent, Row = Q7Row> {
    job::records::<NexEvent>()
        .flat_map(bids)
        .event_time(|bid: &Bid| bid.date_time)
        .window(q7_windows())
        .aggregate(HighestBids)
}

/// q12's row: `(bidder, bids)` in the epoch.
pub type Q12Row = (u64, u64);

/// q12: bids per bidder per processing-time window, the window being the
/// epoch.
pub fn q12() -> impl Job<NexEvent, Row = Q12Row> {
    job::records::<NexEvent>()
        .flat_map(bids)
        .key_by(|bid: &Bid| bid.bidder)
        .aggregate(count())
}
