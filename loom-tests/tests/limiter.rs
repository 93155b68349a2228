#![cfg(latchfree_loom)]
//! Loom models of the limiters: concurrent acquires never over-admit (each
//! limiter's one-word CAS), and the keyed limiter's sweep racing an
//! admission never hands out a second burst.

mod support;

use latchfree::limiter::{
    FixedWindow, Gcra, Gcra32, Keyed, LeakyBucket, Limiter, Quota, SlidingWindow, TokenBucket,
};
use latchfree::map::{DefaultHashBuilder, HashMap};
use loom::sync::Arc;
use loom::thread;
use support::model;

/// Three callers (two threads and the main one) race for a capacity of
/// two at one instant: exactly two are admitted, whatever the interleaving.
fn exactly_capacity<L: Limiter + Send + Sync + 'static>(make: fn() -> L) {
    model(move || {
        let l = Arc::new(make());
        let spawn = |l: Arc<L>| thread::spawn(move || l.try_acquire_at(1, 1_000).is_ok() as u32);
        let a = spawn(l.clone());
        let b = spawn(l.clone());
        let mine = l.try_acquire_at(1, 1_000).is_ok() as u32;
        let admitted = mine + a.join().unwrap() + b.join().unwrap();
        assert_eq!(admitted, 2);
        assert!(l.try_acquire_at(1, 1_000).is_err());
    });
}

#[test]
fn gcra_never_over_admits() {
    exactly_capacity(|| Gcra::new(Quota::with_period(100).allow_burst(2)));
}

#[test]
fn gcra32_never_over_admits() {
    exactly_capacity(|| Gcra32::try_new(100, 2).unwrap());
}

#[test]
fn token_bucket_never_over_admits() {
    exactly_capacity(|| TokenBucket::new(Quota::with_period(100).allow_burst(2)));
}

/// A stale caller (its `now` one tick behind) racing two current ones:
/// the bucket (2 tokens, 1 a tick) admits at most the 2 it holds plus the
/// 1 refilled by the later tick, whatever the order; the stale reading
/// never moves the word back to refill the ticks between again.
#[test]
fn token_bucket_stale_caller_creates_nothing() {
    model(|| {
        let l = Arc::new(TokenBucket::with_refill(2, 1, 100));
        let take = |l: Arc<TokenBucket>, n: u32, now: u64| {
            thread::spawn(move || {
                if l.try_acquire_at(n, now).is_ok() {
                    n
                } else {
                    0
                }
            })
        };
        let current = take(l.clone(), 2, 1_100);
        let stale = take(l.clone(), 1, 1_000);
        let mine = if l.try_acquire_at(1, 1_100).is_ok() {
            1
        } else {
            0
        };
        let admitted = mine + current.join().unwrap() + stale.join().unwrap();
        assert!((1..=3).contains(&admitted), "{admitted} admitted");
        assert!(l.try_acquire_at(1, 1_100).is_err() || admitted < 3);
    });
}

#[test]
fn leaky_bucket_never_over_admits() {
    exactly_capacity(|| LeakyBucket::new(Quota::with_period(100).allow_burst(2)));
}

#[test]
fn fixed_window_never_over_admits() {
    exactly_capacity(|| FixedWindow::new(2, 10_000));
}

#[test]
fn sliding_window_never_over_admits() {
    exactly_capacity(|| SlidingWindow::new(2, 10_000));
}

/// A backwards caller racing a current one across the sliding window's
/// 24-bit index wrap: B reads window 0, A window 2²⁴ + 2 (whose low bits
/// read as 2 ahead of 0). Whatever the order, A's window ends up full: B
/// either counted first (in window 0, cleared by A), or counts in A's
/// window (once A raised `latest`, even before A's own admission lands:
/// then A is refused); it never moves the word back to window 0, which
/// would free A's window again.
#[test]
fn sliding_window_backwards_caller_never_moves_the_word_back() {
    model(|| {
        let l = Arc::new(SlidingWindow::new(2, 1));
        let far = (1u64 << 24) + 2;
        let l2 = l.clone();
        let back = thread::spawn(move || l2.try_acquire_at(2, 0).is_ok());
        let mine = l.try_acquire_at(2, far).is_ok();
        assert!(back.join().unwrap() || mine);
        assert!(
            l.try_acquire_at(1, far).is_err(),
            "the latest window was freed by a backwards caller"
        );
    });
}

/// The same race on the fixed window (one word, its position only grows).
#[test]
fn fixed_window_backwards_caller_never_moves_the_word_back() {
    model(|| {
        let l = Arc::new(FixedWindow::new(2, 1));
        let far = (1u64 << 32) + 2;
        let l2 = l.clone();
        let back = thread::spawn(move || l2.try_acquire_at(2, 0).is_ok());
        let mine = l.try_acquire_at(2, far).is_ok();
        assert!(back.join().unwrap() || mine);
        assert!(l.try_acquire_at(1, far).is_err());
    });
}

#[test]
fn leaky_take_hands_out_distinct_slots() {
    model(|| {
        let l = Arc::new(LeakyBucket::new(Quota::with_period(10).allow_burst(1)));
        let l2 = l.clone();
        let t = thread::spawn(move || l2.take_at(0));
        let mine = l.take_at(0);
        let theirs = t.join().unwrap();
        let mut waits = [mine, theirs];
        waits.sort();
        assert_eq!(waits, [0, 10]);
    });
}

/// A sweep racing an admission on an idle key: the burst is handed out
/// once, whether the admission lands on the old word (then the sweep must
/// not remove it) or on a fresh one (then the old one must be gone).
#[test]
fn keyed_sweep_never_doubles_a_burst() {
    model(|| {
        let map = HashMap::builder()
            .shards(1)
            .hasher(DefaultHashBuilder::with_seeds([1, 2, 3, 4]));
        let k = Arc::new(Keyed::with_map_builder(
            Quota::with_period(100).allow_burst(1),
            map,
        ));
        assert!(k.try_acquire_at(&7u32, 1, 0).is_ok()); // schedule ends at 100
        let k2 = k.clone();
        let admit = thread::spawn(move || k2.try_acquire_at(&7, 1, 100).is_ok());
        k.sweep_at(100);
        assert!(admit.join().unwrap(), "an idle key must admit");
        assert!(
            k.try_acquire_at(&7, 1, 100).is_err(),
            "a second burst at the same instant"
        );
    });
}
