#![cfg(latchfree_loom)]
//! Loom models of the balancers' snapshot swaps: pickers racing a
//! membership change see the old or the new members, never anything else
//! (and never a freed snapshot); racing changes both land; the fixed
//! left-right form never lets a picker read the copy being written.

mod support;

use latchfree::balance::{fixed, RoundRobin};
use loom::sync::Arc;
use loom::thread;
use support::model;

#[test]
fn picker_sees_old_or_new_snapshot() {
    model(|| {
        let rr = Arc::new(RoundRobin::new([1u32, 2]));
        let rr2 = rr.clone();
        let writer = thread::spawn(move || rr2.set([3, 4]));
        let first = rr.pick_cloned().unwrap();
        let second = rr.pick_cloned().unwrap();
        assert!((1..=4).contains(&first) && (1..=4).contains(&second));
        // No going back: once the new members were seen, only they are.
        if first >= 3 {
            assert!(second >= 3);
        }
        writer.join().unwrap();
        assert!(rr.pick_cloned().unwrap() >= 3);
    });
}

#[test]
fn racing_changes_both_land() {
    model(|| {
        let rr = Arc::new(RoundRobin::new([1u32]));
        let rr2 = rr.clone();
        let t = thread::spawn(move || rr2.add(2));
        rr.add(3);
        t.join().unwrap();
        let mut m = rr.members();
        m.sort();
        assert_eq!(m, [1, 2, 3]);
    });
}

#[test]
fn fixed_pickers_never_read_a_copy_being_written() {
    model(|| {
        let lb = Arc::new(fixed::RoundRobin::<u32, 2>::new());
        lb.add(1).unwrap();
        let lb2 = lb.clone();
        let writer = thread::spawn(move || {
            lb2.add(2).unwrap();
            lb2.remove(&1).unwrap();
        });
        // Loom's cells fail the model if a pick overlaps a write.
        let a = lb.pick().unwrap();
        assert!(a == 1 || a == 2);
        writer.join().unwrap();
        assert_eq!(lb.pick(), Some(2));
    });
}
