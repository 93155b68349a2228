//! Where the shootout's threads run, for every section: under `--pin`, a
//! thread of role `k` goes to core `k` modulo the cores (round-robin, the
//! same placement for every implementation of a scenario); without it,
//! wherever the scheduler puts it.

use std::sync::OnceLock;

use core_affinity::CoreId;

/// The cores this process may run on, as listed before any pinning (a
/// pinned thread would see only its own core): `main` lists them first.
pub fn cores() -> &'static [CoreId] {
    static CORES: OnceLock<Vec<CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// The core of a thread of role `role` when `pin` is set; none otherwise.
pub fn core_for(pin: bool, role: usize) -> Option<CoreId> {
    if !pin {
        return None;
    }
    let cores = cores();
    assert!(!cores.is_empty(), "--pin: this platform lists no cores");
    Some(cores[role % cores.len()])
}

/// Pins the calling thread to `core`, if one is given.
pub fn pin_to(core: Option<CoreId>) {
    if let Some(core) = core {
        assert!(
            core_affinity::set_for_current(core),
            "--pin: cannot pin to core {}",
            core.id
        );
    }
}

/// Pins the calling thread by its role when `pin` is set.
pub fn pin(pin: bool, role: usize) {
    pin_to(core_for(pin, role));
}
