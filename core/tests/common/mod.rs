//! What the engine's integration tests share: the keyed count-and-sum job
//! over `(key, value)` records, and its single-threaded reference.

#![allow(dead_code)]

use std::collections::HashMap;

use microbatch::job::{self, count, sum};

pub type Record = (u64, u64);
pub type Row = (u64, (u64, u64));

pub fn count_and_sum() -> impl microbatch::job::Job<Record, Row = Row> {
    job::records::<Record>()
        .key_by(|r| r.0)
        .aggregate((count(), sum(|r: &Record| r.1)))
}

/// Per key: (count, sum), over every epoch.
pub fn fold_rows(rows: impl IntoIterator<Item = Row>) -> HashMap<u64, (u64, u64)> {
    let mut totals: HashMap<u64, (u64, u64)> = HashMap::new();
    for (key, (c, s)) in rows {
        let total = totals.entry(key).or_default();
        total.0 += c;
        total.1 = total.1.wrapping_add(s);
    }
    totals
}

pub fn reference(records: &[Record]) -> HashMap<u64, (u64, u64)> {
    fold_rows(records.iter().map(|&(k, v)| (k, (1, v))))
}
