//! A Nexmark query's rows in SQLite: one table (`output.table`) with the
//! query's columns after `epoch`, all of an epoch in one transaction that
//! also records the epoch as committed, so an epoch written again (a
//! replay after a crash) changes nothing.

use std::marker::PhantomData;
use std::path::Path;

use microbatch::job::Window;
use microbatch::progress::EpochProgress;
use microbatch::sink::sqlite::EpochDatabase;
use microbatch::sink::{Gathering, Sink, SinkError};
use rusqlite::types::Value;

use super::event::Bid;
use super::queries::{EuroBid, HotItems};

/// A query's row as SQL: its columns (after `epoch`) and the SQL rows one
/// row makes (q5 and q7 make one per auction or bid).
pub trait QueryRow: Send + 'static {
    /// `name TYPE` of each column after `epoch`.
    const COLUMNS: &'static [&'static str];
    /// The columns after `epoch` that, with it or alone, key the table:
    /// the primary key's columns, `epoch` first if it is part of it.
    const KEY: &'static [&'static str];

    /// Appends each SQL row's values (after `epoch`) to `out`.
    fn values(&self, out: &mut Vec<Vec<Value>>);
}

/// An SQLite integer; the engine's ids, prices and times stay below 2^63.
fn int(value: u64) -> Value {
    Value::Integer(value as i64)
}

fn window(window: &Window) -> [Value; 2] {
    [int(window.start_ms), int(window.end_ms)]
}

const BID_COLUMNS: &[&str] = &[
    "auction INTEGER NOT NULL",
    "bidder INTEGER NOT NULL",
    "price INTEGER NOT NULL",
    "date_time INTEGER NOT NULL",
];

impl QueryRow for Bid {
    const COLUMNS: &'static [&'static str] = BID_COLUMNS;
    const KEY: &'static [&'static str] = &[];

    fn values(&self, out: &mut Vec<Vec<Value>>) {
        out.push(vec![
            int(self.auction),
            int(self.bidder),
            int(self.price),
            int(self.date_time),
        ]);
    }
}

impl QueryRow for EuroBid {
    const COLUMNS: &'static [&'static str] = &[
        "auction INTEGER NOT NULL",
        "bidder INTEGER NOT NULL",
        "price REAL NOT NULL",
        "date_time INTEGER NOT NULL",
    ];
    const KEY: &'static [&'static str] = &[];

    fn values(&self, out: &mut Vec<Vec<Value>>) {
        out.push(vec![
            int(self.auction),
            int(self.bidder),
            Value::Real(self.price),
            int(self.date_time),
        ]);
    }
}

/// q2's `(auction, price)`; q12's `(bidder, bid_count)` is another type.
impl QueryRow for (u64, u64) {
    const COLUMNS: &'static [&'static str] =
        &["auction INTEGER NOT NULL", "price INTEGER NOT NULL"];
    const KEY: &'static [&'static str] = &[];

    fn values(&self, out: &mut Vec<Vec<Value>>) {
        out.push(vec![int(self.0), int(self.1)]);
    }
}

impl QueryRow for (Window, HotItems) {
    const COLUMNS: &'static [&'static str] = &[
        "window_start_ms INTEGER NOT NULL",
        "window_end_ms INTEGER NOT NULL",
        "auction INTEGER NOT NULL",
        "num INTEGER NOT NULL",
    ];
    const KEY: &'static [&'static str] = &["window_start_ms", "window_end_ms", "auction"];

    fn values(&self, out: &mut Vec<Vec<Value>>) {
        let (window_, hot) = self;
        for &auction in &hot.auctions {
            let [start, end] = window(window_);
            out.push(vec![start, end, int(auction), int(hot.bids)]);
        }
    }
}

impl QueryRow for (Window, (), Vec<Bid>) {
    const COLUMNS: &'static [&'static str] = &[
        "window_start_ms INTEGER NOT NULL",
        "window_end_ms INTEGER NOT NULL",
        "auction INTEGER NOT NULL",
        "bidder INTEGER NOT NULL",
        "price INTEGER NOT NULL",
        "date_time INTEGER NOT NULL",
    ];
    const KEY: &'static [&'static str] = &[];

    fn values(&self, out: &mut Vec<Vec<Value>>) {
        let (window_, (), bids) = self;
        for bid in bids {
            let [start, end] = window(window_);
            out.push(vec![
                start,
                end,
                int(bid.auction),
                int(bid.bidder),
                int(bid.price),
                int(bid.date_time),
            ]);
        }
    }
}

/// q12's row: a bidder and its bids in the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BidderCount(pub u64, pub u64);

impl QueryRow for BidderCount {
    const COLUMNS: &'static [&'static str] =
        &["bidder INTEGER NOT NULL", "bid_count INTEGER NOT NULL"];
    const KEY: &'static [&'static str] = &["epoch", "bidder"];

    fn values(&self, out: &mut Vec<Vec<Value>>) {
        out.push(vec![int(self.0), int(self.1)]);
    }
}

/// Writes a query's rows into one table, exactly once per epoch.
pub struct QuerySink<Row, T> {
    database: EpochDatabase,
    insert: String,
    pending: Gathering<T>,
    /// The job's row, turned into the table's by `convert`.
    convert: fn(Row) -> T,
    _rows: PhantomData<fn(Row)>,
}

impl<Row: Send + 'static, T: QueryRow> QuerySink<Row, T> {
    /// Opens (or creates) the database at `path` and its `table`, whose
    /// epochs are recorded under the table's name.
    pub fn open(path: &Path, table: &str, convert: fn(Row) -> T) -> Result<Self, SinkError> {
        let database = EpochDatabase::open(path, table)?;
        let mut columns = vec!["epoch INTEGER NOT NULL".to_owned()];
        columns.extend(T::COLUMNS.iter().map(|c| (*c).to_owned()));
        if !T::KEY.is_empty() {
            columns.push(format!("PRIMARY KEY ({})", T::KEY.join(", ")));
        }
        let create = format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" ({})",
            columns.join(", ")
        );
        database.execute_batch(&create, "create the table")?;
        let names: Vec<&str> = std::iter::once("epoch")
            .chain(T::COLUMNS.iter().map(|c| c.split(' ').next().unwrap_or(c)))
            .collect();
        let marks = vec!["?"; names.len()].join(", ");
        let insert = format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({marks})",
            names.join(", ")
        );
        Ok(QuerySink {
            database,
            insert,
            pending: Gathering::new(),
            convert,
            _rows: PhantomData,
        })
    }

    /// The epochs committed so far, oldest first.
    pub fn committed(&self) -> Result<Vec<u64>, SinkError> {
        self.database.committed()
    }
}

impl<Row: Send + 'static, T: QueryRow> Sink<Row> for QuerySink<Row, T> {
    fn write(&self, epoch: u64, _: usize, rows: &mut Vec<Row>) -> Result<(), SinkError> {
        let mut converted: Vec<T> = rows.drain(..).map(self.convert).collect();
        self.pending.add(epoch, &mut converted);
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        let rows = self.pending.take(epoch);
        let mut values = Vec::new();
        for row in &rows {
            row.values(&mut values);
        }
        self.database
            .commit_epoch(epoch, values.len(), |transaction| {
                let fail = |error: rusqlite::Error| SinkError::Custom(format!("SQLite: {error}"));
                let mut insert = transaction.prepare_cached(&self.insert).map_err(fail)?;
                for mut row in values {
                    row.insert(0, int(epoch));
                    insert
                        .execute(rusqlite::params_from_iter(row))
                        .map_err(fail)?;
                }
                Ok(())
            })
    }
}
