//! A Nexmark query's rows in SQLite: the library's [`SqliteSink`] (one
//! table, `output.table`, with the query's columns after `epoch`, all of
//! an epoch in one transaction that also records the epoch as committed,
//! so an epoch written again changes nothing), fed with the SQL rows each
//! of the query's rows makes (q5 and q7 make one per auction or bid).

use std::path::Path;

use microbatch::job::Window;
use microbatch::progress::EpochProgress;
use microbatch::sink::sqlite::{Column, SqlType, SqlValue, SqliteSink};
use microbatch::sink::{Sink, SinkError};

use super::event::Bid;
use super::queries::EuroBid;

/// One row of a query's table, after `epoch`.
pub trait QueryRow: Send + 'static {
    /// Whether `epoch` is part of the primary key (with the columns
    /// marked key); without it and without key columns, there is none.
    const EPOCH_IN_KEY: bool = false;

    /// The columns after `epoch`.
    fn columns() -> Vec<Column>;

    /// The values, in the order of [`columns`](QueryRow::columns).
    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String>;
}

/// Columns of `names`, each an integer; `key` ones part of the key.
fn integers(names: &[&str], key: &[&str]) -> Vec<Column> {
    names
        .iter()
        .map(|name| Column::new(*name, SqlType::Integer, key.contains(name)))
        .collect()
}

/// Pushes each of `values` as an SQLite integer, refusing one above
/// `i64::MAX` rather than wrapping it.
fn push_integers(out: &mut Vec<SqlValue>, values: &[(&str, u64)]) -> Result<(), String> {
    for &(name, value) in values {
        let value = i64::try_from(value)
            .map_err(|_| format!("{name} {value} exceeds SQLite's INTEGER range"))?;
        out.push(SqlValue::Integer(value));
    }
    Ok(())
}

const BID_COLUMNS: [&str; 4] = ["auction", "bidder", "price", "date_time"];

impl QueryRow for Bid {
    fn columns() -> Vec<Column> {
        integers(&BID_COLUMNS, &[])
    }

    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String> {
        push_integers(
            out,
            &[
                ("auction", self.auction),
                ("bidder", self.bidder),
                ("price", self.price),
                ("date_time", self.date_time),
            ],
        )
    }
}

impl QueryRow for EuroBid {
    fn columns() -> Vec<Column> {
        let mut columns = integers(&BID_COLUMNS, &[]);
        columns[2].sql_type = SqlType::Real;
        columns
    }

    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String> {
        push_integers(out, &[("auction", self.auction), ("bidder", self.bidder)])?;
        out.push(SqlValue::Real(self.price));
        push_integers(out, &[("date_time", self.date_time)])
    }
}

/// q2's `(auction, price)`; q12's `(bidder, bid_count)` is another type.
impl QueryRow for (u64, u64) {
    fn columns() -> Vec<Column> {
        integers(&["auction", "price"], &[])
    }

    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String> {
        push_integers(out, &[("auction", self.0), ("price", self.1)])
    }
}

/// q5's SQL row: a window, one of its hottest auctions and its bids.
impl QueryRow for (Window, u64, u64) {
    fn columns() -> Vec<Column> {
        let key = ["window_start_ms", "window_end_ms", "auction"];
        integers(
            &["window_start_ms", "window_end_ms", "auction", "num"],
            &key,
        )
    }

    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String> {
        let (window, auction, num) = *self;
        push_integers(
            out,
            &[
                ("window_start_ms", window.start_ms),
                ("window_end_ms", window.end_ms),
                ("auction", auction),
                ("num", num),
            ],
        )
    }
}

/// q7's SQL row: a window and one of the bids at its highest price.
impl QueryRow for (Window, Bid) {
    fn columns() -> Vec<Column> {
        let mut columns = integers(&["window_start_ms", "window_end_ms"], &[]);
        columns.extend(Bid::columns());
        columns
    }

    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String> {
        let (window, bid) = self;
        push_integers(
            out,
            &[
                ("window_start_ms", window.start_ms),
                ("window_end_ms", window.end_ms),
            ],
        )?;
        bid.values(out)
    }
}

/// q12's row: a bidder and its bids in the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BidderCount(pub u64, pub u64);

impl QueryRow for BidderCount {
    const EPOCH_IN_KEY: bool = true;

    fn columns() -> Vec<Column> {
        integers(&["bidder", "bid_count"], &["bidder"])
    }

    fn values(&self, out: &mut Vec<SqlValue>) -> Result<(), String> {
        push_integers(out, &[("bidder", self.0), ("bid_count", self.1)])
    }
}

/// Writes a query's rows into one table, exactly once per epoch: each job
/// row through `flatten` into the table's rows.
pub struct QuerySink<Row, T> {
    inner: SqliteSink<T>,
    flatten: fn(Row, &mut Vec<T>),
}

impl<Row: Send + 'static, T: QueryRow> QuerySink<Row, T> {
    /// Opens (or creates) the database at `path` and its `table`, whose
    /// epochs are recorded under the table's name.
    pub fn open(
        path: &Path,
        table: &str,
        flatten: fn(Row, &mut Vec<T>),
    ) -> Result<Self, SinkError> {
        let inner = SqliteSink::open_keyed(path, table, T::columns(), T::values, T::EPOCH_IN_KEY)?;
        Ok(QuerySink { inner, flatten })
    }

    /// The epochs committed so far, oldest first.
    pub fn committed(&self) -> Result<Vec<u64>, SinkError> {
        self.inner.committed()
    }
}

impl<Row: Send + 'static, T: QueryRow> Sink<Row> for QuerySink<Row, T> {
    fn write(&self, epoch: u64, partition: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let mut flat = Vec::with_capacity(rows.len());
        for row in rows.drain(..) {
            (self.flatten)(row, &mut flat);
        }
        self.inner.write(epoch, partition, &mut flat)
    }

    fn epoch_complete(&self, epoch: u64, progress: &EpochProgress) -> Result<(), SinkError> {
        self.inner.epoch_complete(epoch, progress)
    }
}
