//! What the engine's integration tests share: the keyed count-and-sum job
//! over `(key, value)` records, and its single-threaded reference.

#![allow(dead_code)]

pub mod broker;
pub mod commits;
pub mod timed;

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};

use microbatch::job::{self, count, sum};
use microbatch::progress::EpochProgress;
use microbatch::sink::{Sink, SinkError};

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

/// A one-worker engine, not yet started, whose sink holds the commit of
/// epoch 0 (epochs of 100 records, one in flight, rings of 64, the given
/// overload policy): behind it the rings fill. Also the sender that
/// releases the sink and the receiver told when it starts holding.
pub fn held_engine(
    overload: microbatch::Overload,
) -> (
    microbatch::EngineBuilder<Record, impl microbatch::job::Job<Record, Row = Row>>,
    mpsc::Sender<()>,
    mpsc::Receiver<()>,
) {
    let (release, held) = mpsc::channel();
    let (entered, in_sink) = mpsc::channel();
    let sink = HeldSink {
        release: Mutex::new(held),
        entered: Mutex::new(entered),
    };
    let builder = microbatch::Engine::builder(count_and_sum(), sink)
        .workers(1)
        .pin(false)
        .interval(None)
        .max_batch_records(Some(100))
        .max_epochs_in_flight(1)
        .ring_capacity(64)
        .overload(overload);
    (builder, release, in_sink)
}

/// A sink that holds the commit of epoch 0 until released: tells
/// `entered` when it starts waiting, waits for a message on `release`.
pub struct HeldSink {
    pub release: Mutex<mpsc::Receiver<()>>,
    pub entered: Mutex<mpsc::Sender<()>>,
}

impl<Row: Send + 'static> Sink<Row> for HeldSink {
    fn write(&self, _: u64, _: usize, _: &mut Vec<Row>) -> Result<(), SinkError> {
        Ok(())
    }

    fn epoch_complete(&self, epoch: u64, _: &EpochProgress) -> Result<(), SinkError> {
        if epoch == 0 {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv();
        }
        Ok(())
    }
}
