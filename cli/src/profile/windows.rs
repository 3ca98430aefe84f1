//! The checks of a windowed profile: the `[job]` window keys, and what a
//! windowed job needs of the rest (`Profile::check` calls them).

use std::time::Duration;

use super::schema::{JobKind, LatePolicy, OutputModeSpec, Profile, WindowKind};
use crate::jobs::case::no_producers;

impl Profile {
    /// The `[job]` window keys, and what a windowed job needs of the rest.
    pub(super) fn check_window(&self) -> Result<(), (String, String)> {
        let job = &self.job;
        let fail = |key: &str, message: String| Err((key.to_owned(), message));
        let zero = |key: &str, value: Duration| {
            if value.is_zero() {
                Ok(())
            } else {
                fail(
                    key,
                    format!(
                        "{}, but the job has no window; accepted: 0s, or set job.window",
                        humantime::format_duration(value)
                    ),
                )
            }
        };
        // The click-stream case cuts epochs, and sessions of its own.
        let sessions_of_their_own = job.kind == JobKind::Clickstream;
        if job.window == WindowKind::None {
            if job.output_mode == OutputModeSpec::Append {
                return fail(
                    "job.output_mode",
                    "\"append\", but the job has no window; accepted: \"epoch\", \"update\" or \"complete\", or set job.window".into(),
                );
            }
            for (key, set) in [
                ("job.window_size", job.window_size.is_some()),
                ("job.window_slide", job.window_slide.is_some()),
                (
                    "job.session_gap",
                    job.session_gap.is_some() && !sessions_of_their_own,
                ),
            ] {
                if set {
                    return fail(
                        key,
                        "set, but job.window = \"none\"; accepted: no key, or set job.window"
                            .into(),
                    );
                }
            }
            if let Some(gap) = job.session_gap {
                at_least_1ms("job.session_gap", gap)?;
            }
            if !sessions_of_their_own {
                zero("job.watermark_delay", job.watermark_delay)?;
            }
            zero("job.allowed_lateness", job.allowed_lateness)?;
            if job.late == LatePolicy::DeadLetters {
                return fail(
                    "job.late",
                    "\"dead_letters\", but the job has no window, so no record is late; accepted: \"drop\", or set job.window".into(),
                );
            }
            return zero("workload.disorder", self.workload.disorder);
        }
        if sessions_of_their_own {
            return fail(
                "job.window",
                "set, but the click-stream job cuts epochs, and each user's sessions (job.session_gap, 30 minutes by default); accepted: \"none\" with kind = \"clickstream\"".into(),
            );
        }
        if job.output_mode == OutputModeSpec::Complete {
            return fail(
                "job.output_mode",
                "\"complete\", but a windowed job emits the windows that close (append) or that changed (update); accepted: \"append\" or \"update\"".into(),
            );
        }
        if job.window == WindowKind::Session && job.late == LatePolicy::DeadLetters {
            return fail(
                "job.late",
                "\"dead_letters\", but session windows drop late records (a late record may join or merge closed sessions); accepted: \"drop\" for sessions, or a tumbling or hopping window".into(),
            );
        }
        if job.window == WindowKind::Session && job.marks_firings() {
            let key = if job.allowed_lateness.is_zero() {
                "job.output_mode"
            } else {
                "job.allowed_lateness"
            };
            return fail(
                key,
                "set, but session windows fire once, when the watermark passes them (no lateness or update mode yet); accepted: allowed_lateness = \"0s\" and output_mode = \"append\" for sessions, or a tumbling or hopping window".into(),
            );
        }
        check_shape(&self.job)?;
        if job.late == LatePolicy::DeadLetters && self.engine.dead_letters.is_none() {
            return fail(
                "engine.dead_letters",
                "not set, but job.late = \"dead_letters\" writes the late records there; accepted: a file path (JSON lines, appended)".into(),
            );
        }
        no_producers(
            self,
            "a windowed job reads its records in the workers, in their order",
        )
    }
}

/// `value` if it is at least a millisecond, else why not.
fn at_least_1ms(key: &str, value: Duration) -> Result<Duration, (String, String)> {
    if value >= Duration::from_millis(1) {
        Ok(value)
    } else {
        Err((
            key.to_owned(),
            format!(
                "{}; accepted: at least 1ms",
                humantime::format_duration(value)
            ),
        ))
    }
}

/// The keys that shape the windows: a size (and a slide, hopping) for
/// aligned windows, a gap for sessions, and none of the other kind's.
fn check_shape(job: &super::schema::JobSpec) -> Result<(), (String, String)> {
    fn fail<T>(key: &str, message: String) -> Result<T, (String, String)> {
        Err((key.to_owned(), message))
    }
    if job.window == WindowKind::Session {
        for (key, set) in [
            ("job.window_size", job.window_size.is_some()),
            ("job.window_slide", job.window_slide.is_some()),
        ] {
            if set {
                return fail(
                    key,
                    "set, but a session's window is as long as its records and gap; accepted: no key, with session_gap".into(),
                );
            }
        }
        return match job.session_gap {
            Some(gap) => at_least_1ms("job.session_gap", gap).map(drop),
            None => fail(
                "job.session_gap",
                "missing; session windows need the gap that ends a session, such as \"30s\"".into(),
            ),
        };
    }
    let size = match job.window_size {
        Some(size) => at_least_1ms("job.window_size", size)?,
        None => {
            return fail(
                "job.window_size",
                "missing; a windowed job needs its windows' length, such as \"10s\"".into(),
            )
        }
    };
    match (job.window, job.window_slide) {
        (WindowKind::Hopping, None) => {
            return fail(
                "job.window_slide",
                "missing; hopping windows need how far apart they start, such as \"2s\"".into(),
            )
        }
        (WindowKind::Hopping, Some(slide)) if slide < Duration::from_millis(1) || slide > size => {
            return fail(
                "job.window_slide",
                format!(
                    "{}; accepted: from 1ms to window_size ({})",
                    humantime::format_duration(slide),
                    humantime::format_duration(size)
                ),
            )
        }
        (WindowKind::Tumbling, Some(_)) => {
            return fail(
                "job.window_slide",
                "set, but tumbling windows start where the last ended; accepted: no key, or window = \"hopping\"".into(),
            )
        }
        _ => {}
    }
    if job.session_gap.is_some() {
        return fail(
            "job.session_gap",
            "set, but the window is not a session; accepted: no key".into(),
        );
    }
    Ok(())
}
