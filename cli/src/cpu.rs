//! CPU time and peak memory of this process, for the resource-cost
//! figures.

use std::time::Duration;

/// User plus system CPU time of the whole process so far, from
/// `/proc/self/stat` (Linux; `None` elsewhere or if it cannot be read).
/// Resolution: one clock tick (10 ms on usual kernels).
pub fn process_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

/// The most resident memory this process has held so far, bytes: `VmHWM`
/// of `/proc/self/status` (Linux; `None` elsewhere or if it cannot be
/// read).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_peak(&status)
}

/// The `VmHWM:   1234 kB` line, in bytes.
fn parse_peak(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kilobytes * 1024)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line, in ticks
/// of 1/100 s. The command name (field 2) may hold spaces and parentheses,
/// so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(
        (user + system) * 1000 / TICKS_PER_SECOND,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_resident_memory() {
        let status = "Name:\tmicrobatch\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_peak(status), Some(2048 * 1024));
        assert_eq!(parse_peak("VmRSS: 1 kB"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_memory().is_some_and(|bytes| bytes > 0));
        }
    }

    #[test]
    fn reads_utime_and_stime() {
        let stat = "1234 (my (odd) name) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_time().is_some());
        }
    }
}
