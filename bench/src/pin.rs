//! Pinning benchmark threads to cores.

/// Pins the calling thread to the `index`-th core (modulo the core count).
/// Returns whether it worked: benchmarks run unpinned where pinning is not
/// possible, and say so.
pub fn pin_to_core(index: usize) -> bool {
    match core_affinity::get_core_ids() {
        Some(cores) if !cores.is_empty() => {
            core_affinity::set_for_current(cores[index % cores.len()])
        }
        _ => false,
    }
}
