//! What a windowed job's row says of itself. By default ([`Append`]) a
//! window's row goes out once, when the watermark passes its end, as
//! `(window, key, output)`. A job with an allowed lateness or early
//! updates ([`Marked`]) emits `(window, key, output, firing)`: the
//! window's rows so far each epoch that changed it ([`Firing::Early`],
//! update mode), its row when the watermark passes its end
//! ([`Firing::OnTime`]), and again after that whenever records come
//! within the allowed lateness ([`Firing::Late`]). A window's last row is
//! its final one; it is final for certain once the watermark passes its
//! end plus the allowed lateness (with none, its on-time row is).

use super::windows::Window;

/// When a window's row went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Firing {
    /// Before the watermark passed the window's end: its records so far
    /// (update mode).
    Early,
    /// When the watermark passed its end.
    OnTime,
    /// After that: the whole window again, with records that came within
    /// the allowed lateness. Replaces the rows before it.
    Late,
    /// Not the window's row: records that came after the window was past
    /// its allowed lateness, reduced on their own, an epoch's per window
    /// and key (a side output, see
    /// [`WindowedStream::expired_rows`](super::WindowedStream::expired_rows)).
    /// Replaces nothing.
    Expired,
}

impl Firing {
    /// Its name in files and tables: `early`, `on_time`, `late`,
    /// `expired`.
    pub fn name(self) -> &'static str {
        match self {
            Firing::Early => "early",
            Firing::OnTime => "on_time",
            Firing::Late => "late",
            Firing::Expired => "expired",
        }
    }
}

/// How a windowed job's rows are shaped.
pub trait Emit: Send + Sync + 'static {
    /// The row of a window, its key and output.
    type Row<K: Send + 'static, O: Send + 'static>: Send + 'static;

    /// The row of `window`'s `key`, fired as `firing`.
    fn row<K: Send + 'static, O: Send + 'static>(
        window: Window,
        key: K,
        output: O,
        firing: Firing,
    ) -> Self::Row<K, O>;

    /// When `row` fired, if its rows say.
    fn firing<K: Send + 'static, O: Send + 'static>(row: &Self::Row<K, O>) -> Option<Firing>;
}

/// Each window once, when the watermark passes its end: rows
/// `(window, key, output)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Append;

impl Emit for Append {
    type Row<K: Send + 'static, O: Send + 'static> = (Window, K, O);

    #[inline]
    fn row<K: Send + 'static, O: Send + 'static>(
        window: Window,
        key: K,
        output: O,
        _: Firing,
    ) -> (Window, K, O) {
        (window, key, output)
    }

    #[inline]
    fn firing<K: Send + 'static, O: Send + 'static>(_: &(Window, K, O)) -> Option<Firing> {
        None
    }
}

/// Rows marked with when they fired: `(window, key, output, firing)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marked;

impl Emit for Marked {
    type Row<K: Send + 'static, O: Send + 'static> = (Window, K, O, Firing);

    #[inline]
    fn row<K: Send + 'static, O: Send + 'static>(
        window: Window,
        key: K,
        output: O,
        firing: Firing,
    ) -> (Window, K, O, Firing) {
        (window, key, output, firing)
    }

    #[inline]
    fn firing<K: Send + 'static, O: Send + 'static>(
        row: &(Window, K, O, Firing),
    ) -> Option<Firing> {
        Some(row.3)
    }
}
