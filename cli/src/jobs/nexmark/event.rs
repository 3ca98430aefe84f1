//! Nexmark's events as the engine carries them: fixed-size copies of the
//! `nexmark` crate's persons, auctions and bids, with every number the
//! queries read and none of the text (names, e-mail, city, item name,
//! description, channel, URL, `extra`), so that a record is 64 bytes,
//! moves without an allocation and archives into a record log.

use microbatch::log::LogRecord;

/// A person who sells or bids.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Person {
    /// The person's id.
    pub id: u64,
    /// When the person joined, ms since the Unix epoch.
    pub date_time: u64,
}

/// An item put up for auction.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Auction {
    /// The auction's id.
    pub id: u64,
    /// The person selling.
    pub seller: u64,
    /// The item's category.
    pub category: u64,
    /// The opening price.
    pub initial_bid: u64,
    /// The least price the seller takes.
    pub reserve: u64,
    /// When the auction opened, ms since the Unix epoch.
    pub date_time: u64,
    /// When it closes, ms since the Unix epoch.
    pub expires: u64,
}

/// A bid on an auction.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Bid {
    /// The auction bid on.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// The price bid (in cents, as Nexmark's generator draws it).
    pub price: u64,
    /// When the bid was made, ms since the Unix epoch.
    pub date_time: u64,
}

/// One Nexmark event.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub enum NexEvent {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl NexEvent {
    /// The bid, if this event is one.
    #[inline(always)]
    pub fn bid(&self) -> Option<&Bid> {
        match self {
            NexEvent::Bid(bid) => Some(bid),
            _ => None,
        }
    }

    /// When it happened, ms since the Unix epoch.
    pub fn date_time(&self) -> u64 {
        match self {
            NexEvent::Person(person) => person.date_time,
            NexEvent::Auction(auction) => auction.date_time,
            NexEvent::Bid(bid) => bid.date_time,
        }
    }
}

impl From<&nexmark::event::Event> for NexEvent {
    fn from(event: &nexmark::event::Event) -> Self {
        // The generator's ids and prices are `usize`s, at most 64 bits here.
        let n = |value: usize| value as u64;
        match event {
            nexmark::event::Event::Person(person) => NexEvent::Person(Person {
                id: n(person.id),
                date_time: person.date_time,
            }),
            nexmark::event::Event::Auction(auction) => NexEvent::Auction(Auction {
                id: n(auction.id),
                seller: n(auction.seller),
                category: n(auction.category),
                initial_bid: n(auction.initial_bid),
                reserve: n(auction.reserve),
                date_time: auction.date_time,
                expires: auction.expires,
            }),
            nexmark::event::Event::Bid(bid) => NexEvent::Bid(Bid {
                auction: n(bid.auction),
                bidder: n(bid.bidder),
                price: n(bid.price),
                date_time: bid.date_time,
            }),
        }
    }
}

impl LogRecord for NexEvent {
    const SCHEMA: &'static str = "microbatch.nexmark.v1(person(id, date_time) | auction(id, seller, category, initial_bid, reserve, date_time, expires) | bid(auction, bidder, price, date_time), u64 each)";
}

/// The columns of `nexmark generate --csv`: the bids, in order.
pub const BID_CSV_HEADER: &str = "auction,bidder,price,date_time";

impl Bid {
    /// Its line in `nexmark generate --csv`, without the newline.
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{}",
            self.auction, self.bidder, self.price, self.date_time
        )
    }

    /// Reads a line of `nexmark generate --csv`.
    pub fn from_csv_line(line: &str) -> Result<Bid, String> {
        let fields: Vec<&str> = line.trim().split(',').collect();
        let [auction, bidder, price, date_time] = fields[..] else {
            return Err(format!(
                "{} fields; expected 4 ({BID_CSV_HEADER})",
                fields.len()
            ));
        };
        let number = |name: &str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("{name} `{text}` is not an unsigned integer"))
        };
        Ok(Bid {
            auction: number("auction", auction)?,
            bidder: number("bidder", bidder)?,
            price: number("price", price)?,
            date_time: number("date_time", date_time)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_a_fixed_64_bytes_and_a_bid_reads_back_from_its_csv_line() {
        assert_eq!(std::mem::size_of::<NexEvent>(), 64);
        let bid = Bid {
            auction: 1007,
            bidder: 2001,
            price: 5_000,
            date_time: 1_764_115_200_123,
        };
        assert_eq!(Bid::from_csv_line(&bid.csv_line()), Ok(bid));
        assert!(Bid::from_csv_line("1,2,3")
            .unwrap_err()
            .contains("3 fields"));
        assert!(Bid::from_csv_line("1,2,x,4")
            .unwrap_err()
            .contains("price `x`"));
    }
}
