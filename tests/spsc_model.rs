//! proptest: random operation sequences on `ring::Spsc`, checked step by
//! step against a plain sequential model (`support/spsc_model.rs`), with
//! positions started anywhere, near the wrap of the position words too.
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/spsc_model.rs"]
mod model;

use model::{run, Op};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => any::<u32>().prop_map(Op::Push),
        8 => Just(Op::Pop),
        1 => Just(Op::DropProducer),
        1 => Just(Op::DropConsumer),
    ]
}

fn start() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        (0usize..32).prop_map(|k| usize::MAX - k),
        any::<usize>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn spsc_matches_its_model(
        cap_log in 0u32..4,
        start in start(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run(1 << cap_log, start, &ops).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn fuzzer_byte_decoding_replays() {
    // Every opcode, as the fuzz target decodes it, across the wrap.
    let ops: Vec<Op> = (0u8..16).map(|k| Op::from_bytes([k, k])).collect();
    run(1, usize::MAX - 2, &ops).unwrap();
    run(2, usize::MAX, &ops).unwrap();
}
