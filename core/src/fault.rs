//! What happens when user code panics: the panic policy.
//!
//! A panic while a worker folds its batch (in a `key_by`, `map`, `filter`
//! or aggregator closure) is handled by the [`PanicPolicy`]: retry the
//! batch from its retained input, then stop with an error naming the epoch,
//! the worker and the panic, or bisect the batch to quarantine the records
//! that panic in a dead-letter file and complete the epoch without them.
//! Any other panic (merging, finishing, a sink) stops the engine with
//! [`EngineError::WorkerPanicked`](crate::EngineError::WorkerPanicked).
//!
//! Only with a policy does the worker keep a copy of its open batch's
//! input (one `extend_from_slice` per chunk, cleared at the seal) and fold
//! each chunk under `catch_unwind` (the worker's fold, in `worker::fold`);
//! without one, the hot path is unchanged and a panic stops the engine.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use crate::config::{ConfigError, PanicPolicy};
use crate::input::CHUNK;
use crate::job::{Job, Parts};
use crate::sync::cold::{lock, Mutex, Once};

/// One quarantined record, a line of the dead-letter file.
#[derive(Serialize)]
struct DeadLetter<'a, R> {
    epoch: u64,
    worker: usize,
    panic: &'a str,
    record: &'a R,
}

std::thread_local! {
    /// This thread is inside [`quietly`].
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent on threads inside
/// [`quietly`] and hands every other panic to the hook that was there.
static QUIET_HOOK: Once = Once::new();

/// Runs `f`, which may panic under `catch_unwind`, with the panic hook
/// silent on this thread: a panic the policy handles (retried, or whose
/// record goes to the dead-letter file) is not printed once per attempt.
/// A panic that stops the engine is reported in its error.
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> T {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
    let out = f();
    QUIET.with(|quiet| quiet.set(false));
    out
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The policy with what it needs of the record type (copying records,
/// writing them as JSON), made where the record type's bounds are known.
pub(crate) struct PanicHandler<R> {
    retries: u32,
    copy: fn(&[R], &mut Vec<R>),
    dead_letters: Option<DeadLetterFile<R>>,
}

/// The open dead-letter file and how to write a record into it.
struct DeadLetterFile<R> {
    path: PathBuf,
    file: Mutex<File>,
    encode: fn(u64, usize, &str, &R) -> serde_json::Result<Vec<u8>>,
}

fn copy<R: Clone>(records: &[R], into: &mut Vec<R>) {
    into.extend_from_slice(records);
}

fn encode<R: Serialize>(
    epoch: u64,
    worker: usize,
    panic: &str,
    record: &R,
) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(&DeadLetter {
        epoch,
        worker,
        panic,
        record,
    })?;
    line.push(b'\n');
    Ok(line)
}

impl<R: Clone + Serialize> PanicHandler<R> {
    /// Opens the dead-letter file (appending) if the policy names one.
    pub(crate) fn new(policy: PanicPolicy) -> Result<Self, ConfigError> {
        let dead_letters = match policy.dead_letters {
            None => None,
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        ConfigError::new(
                            "dead_letters",
                            path.display(),
                            format!("a file that can be opened for appending ({e})"),
                        )
                    })?;
                Some(DeadLetterFile {
                    path,
                    file: Mutex::new(file),
                    encode: encode::<R>,
                })
            }
        };
        Ok(PanicHandler {
            retries: policy.retries,
            copy: copy::<R>,
            dead_letters,
        })
    }
}

impl<R> PanicHandler<R> {
    /// Keeps a copy of `records`, which the batch is about to fold. Hot
    /// path under a policy: one `extend_from_slice`.
    #[inline]
    pub(crate) fn retain(&self, records: &[R], batch: &mut RetainedBatch<R>) {
        (self.copy)(records, &mut batch.retained);
    }
}

/// A worker's open batch as the policy sees it: its input so far and its
/// first panic.
pub(crate) struct RetainedBatch<R> {
    /// The batch's input so far (with a policy).
    retained: Vec<R>,
    /// The first panic of the batch, not yet handled.
    failed: Option<String>,
}

/// How a batch came through a panic.
pub(crate) enum Recovered {
    /// Folded again without a panic, nothing lost.
    Retried,
    /// Folded again without these many records, now in the dead-letter
    /// file.
    Quarantined(u64),
}

/// Why a batch could not be recovered.
pub(crate) enum Unrecovered {
    /// Every attempt panicked; the last panic's message.
    Panicked { attempts: u32, message: String },
    /// The dead-letter file could not take the records.
    DeadLetters { path: PathBuf, message: String },
}

impl<R> RetainedBatch<R> {
    pub(crate) fn new() -> Self {
        RetainedBatch {
            retained: Vec::new(),
            failed: None,
        }
    }

    /// Whether a panic waits to be handled.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Notes a panic of the fold (the first one counts; after it the parts
    /// are suspect, and [`recover`] rebuilds them).
    pub(crate) fn note_panic(&mut self, message: String) {
        self.failed.get_or_insert(message);
    }

    /// The batch is sealed: its input is no longer needed.
    pub(crate) fn clear(&mut self) {
        self.retained.clear();
        self.failed = None;
    }
}

/// Folds `records` into fresh `parts`, a chunk at a time; the panic's
/// message if one panics.
fn refold<R, J: Job<R>>(job: &J, parts: &mut [J::Part], records: &[R]) -> Result<(), String> {
    for part in parts.iter_mut() {
        *part = job.new_part();
    }
    for chunk in records.chunks(CHUNK) {
        quietly(|| {
            catch_unwind(AssertUnwindSafe(|| {
                job.absorb(chunk, Parts::from(&mut *parts))
            }))
        })
        .map_err(|payload| panic_message(payload.as_ref()))?;
    }
    Ok(())
}

/// Appends to `poison` the indices (from `offset`) of the records of
/// `records` that panic when folded alone, with their panics: halves that
/// fold cleanly are cleared whole.
fn bisect<R, J: Job<R>>(
    job: &J,
    scratch: &mut [J::Part],
    records: &[R],
    offset: usize,
    poison: &mut Vec<(usize, String)>,
) {
    if records.is_empty() {
        return;
    }
    let Err(message) = refold(job, scratch, records) else {
        return;
    };
    if records.len() == 1 {
        poison.push((offset, message));
        return;
    }
    let middle = records.len() / 2;
    bisect(job, scratch, &records[..middle], offset, poison);
    bisect(job, scratch, &records[middle..], offset + middle, poison);
}

/// Rebuilds `parts` after a panic in the batch of `epoch` on `worker`:
/// up to `retries` refolds of the retained input, then, with a dead-letter
/// file, a bisection that quarantines the records that panic and a refold
/// of the others. The failure path: it may allocate.
pub(crate) fn recover<R, J: Job<R>>(
    job: &J,
    parts: &mut [J::Part],
    handler: &PanicHandler<R>,
    batch: &mut RetainedBatch<R>,
    epoch: u64,
    worker: usize,
) -> Result<Recovered, Unrecovered> {
    let mut message = batch.failed.take().unwrap_or_default();
    for attempt in 1..=handler.retries {
        tracing::warn!(target: "microbatch", epoch, worker, attempt, panic = %message, "a batch panicked; folding it again");
        match refold(job, parts, &batch.retained) {
            Ok(()) => return Ok(Recovered::Retried),
            Err(again) => message = again,
        }
    }
    let Some(letters) = &handler.dead_letters else {
        return Err(Unrecovered::Panicked {
            attempts: handler.retries + 1,
            message,
        });
    };
    let mut scratch: Vec<J::Part> = parts.iter().map(|_| job.new_part()).collect();
    let mut poison = Vec::new();
    bisect(job, &mut scratch, &batch.retained, 0, &mut poison);
    let letters_failed = |message: String| Unrecovered::DeadLetters {
        path: letters.path.clone(),
        message,
    };
    let mut lines = Vec::new();
    for (index, panic) in &poison {
        let line = (letters.encode)(epoch, worker, panic, &batch.retained[*index])
            .map_err(|e| letters_failed(e.to_string()))?;
        lines.extend_from_slice(&line);
    }
    {
        let mut file = lock(&letters.file);
        file.write_all(&lines)
            .and_then(|()| file.sync_data())
            .map_err(|e| letters_failed(e.to_string()))?;
    }
    // The others, in their order, into fresh parts.
    let mut next_poison = poison.iter().map(|(index, _)| *index).peekable();
    let mut index = 0;
    batch.retained.retain(|_| {
        let keep = next_poison.peek() != Some(&index);
        if !keep {
            next_poison.next();
        }
        index += 1;
        keep
    });
    refold(job, parts, &batch.retained).map_err(|message| Unrecovered::Panicked {
        attempts: handler.retries + 2,
        message,
    })?;
    tracing::warn!(
        target: "microbatch",
        epoch,
        worker,
        records = poison.len(),
        file = %letters.path.display(),
        "records that panic were quarantined as dead letters"
    );
    Ok(Recovered::Quarantined(poison.len() as u64))
}
