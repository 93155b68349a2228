//! `ring::Spsc` against its sequential model (`tests/support/spsc_model.rs`):
//! a capacity, a start position (the top ones cross the wrap) and a run of
//! steps from the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/spsc_model.rs"]
mod model;

fuzz_target!(|input: (u8, u8, Vec<u8>)| {
    let capacity = 1usize << (input.0 % 4);
    let start = usize::MAX - usize::from(input.1);
    let ops: Vec<model::Op> = input
        .2
        .chunks_exact(2)
        .map(|c| model::Op::from_bytes([c[0], c[1]]))
        .collect();
    if let Err(e) = model::run(capacity, start, &ops) {
        panic!("{e}");
    }
});
