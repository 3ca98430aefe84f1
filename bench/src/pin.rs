//! Pinning benchmark threads to cores.

use std::sync::OnceLock;

/// The cores this process may run on, read once before any thread is
/// pinned: `core_affinity::get_core_ids` answers from the calling thread's
/// affinity mask, which a pinned thread (and every thread it spawns) has
/// narrowed to one core.
fn cores() -> &'static [core_affinity::CoreId] {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling thread to the `index`-th core (modulo the core count).
/// Returns whether it worked: benchmarks run unpinned where pinning is not
/// possible, and say so.
pub fn pin_to_core(index: usize) -> bool {
    let cores = cores();
    !cores.is_empty() && core_affinity::set_for_current(cores[index % cores.len()])
}
