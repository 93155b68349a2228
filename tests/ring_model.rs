//! proptest: random operation sequences on a single-threaded ring, checked
//! step by step against a plain sequential model (`support/ring_model.rs`).
#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

#[path = "support/ring_model.rs"]
mod model;

use model::{run, Op};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Push),
        2 => (0usize..10).prop_map(Op::Batch),
        3 => (1usize..6).prop_map(Op::PollA),
        3 => (1usize..6).prop_map(Op::PollB),
        3 => (0usize..2, 1usize..4).prop_map(|(w, m)| Op::PollWorker(w, m)),
        1 => (0usize..5).prop_map(Op::ReadA),
        1 => Just(Op::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn ring_matches_its_model(cap_log in 0u32..4, ops in proptest::collection::vec(op(), 1..120)) {
        run(1 << cap_log, ops).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn fuzzer_byte_decoding_replays() {
    // Every opcode, as the fuzz target decodes it, on the smallest ring.
    let ops: Vec<Op> = (0u8..16)
        .map(|k| Op::from_bytes([k, k.wrapping_mul(7), 3]))
        .collect();
    run(1, ops).unwrap();
}
