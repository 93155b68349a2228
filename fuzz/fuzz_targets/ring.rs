//! Replays arbitrary operation sequences on a single-threaded ring against
//! the sequential model shared with `tests/ring_model.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/ring_model.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    let Some((&cap, rest)) = data.split_first() else {
        return;
    };
    let ops: Vec<model::Op> = rest
        .chunks_exact(3)
        .map(|c| model::Op::from_bytes([c[0], c[1], c[2]]))
        .collect();
    if let Err(e) = model::run(1 << (cap % 5), ops.clone()) {
        panic!("ring diverged from the model: {e}\nops: {ops:?}");
    }
});
