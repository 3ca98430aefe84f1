//! What a command shows on the terminal while it runs: the live progress
//! bar (hidden when stderr is no terminal) and the line that says what
//! runs next.

use indicatif::{ProgressBar, ProgressStyle};

use crate::driver::{Observer, Status};
use crate::report::rate;
use microbatch::progress::TargetStatus;

/// The live progress bar on stderr (hidden when stderr is no terminal).
pub struct Bar(pub ProgressBar);

impl Bar {
    /// A bar, drawn once the first tick comes.
    pub fn new() -> Self {
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Default for Bar {
    fn default() -> Self {
        Bar::new()
    }
}

impl Observer for Bar {
    fn tick(&mut self, status: &Status) {
        let bar = &self.0;
        bar.set_length(status.planned.as_millis() as u64);
        bar.set_position(status.elapsed.as_millis() as u64);
        let remaining = status.planned.saturating_sub(status.elapsed);
        let adaptive = match (status.last_target, status.last_interval) {
            (Some(TargetStatus::Unreachable), _) => {
                " · target cannot be met at this load".to_owned()
            }
            (Some(_), Some(interval)) => {
                format!(" · interval {:.1} ms", interval.as_secs_f64() * 1e3)
            }
            _ => String::new(),
        };
        bar.set_message(format!(
            "epoch {} · {} · p99 {:.2} ms{adaptive} · {:.0}s elapsed, {:.0}s left{}",
            status.epochs,
            rate(status.records_per_second),
            status.last_p99_micros as f64 / 1e3,
            status.elapsed.as_secs_f64(),
            remaining.as_secs_f64(),
            if status.warming_up { " · warm-up" } else { "" }
        ));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Says what runs next: above the bar on a terminal, else on stderr.
pub fn announce(bar: &ProgressBar, what: &str) {
    if bar.is_hidden() {
        eprintln!("  running {what}");
    } else {
        bar.println(format!("  running {what}"));
    }
}
