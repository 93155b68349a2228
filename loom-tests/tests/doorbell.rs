//! Loom models of the doorbell alone, the adapters' one sleep/wake protocol
//! (pool workers and batch flushers sleep on it). Run with
//! `RUSTFLAGS="--cfg latchfree_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p latchfree-loom-tests --test doorbell`.
//!
//! The work here is a counter of tokens: a sleeper's check takes one if
//! there is one. Every use the adapters make is modelled: a ring racing a
//! sleeper's registration (the Dekker pair of fences), a timed sleep that
//! must still be woken, a close that every sleeper must see (`ring_all`),
//! and a napper next to a sleeper. A lost wake-up shows up as a deadlock.
#![cfg(latchfree_loom)]

use std::time::Duration;

use latchfree::__loom::{Check, Doorbell};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

mod support;
use support::model;

struct Work {
    bell: Doorbell,
    tokens: AtomicUsize,
    closed: AtomicBool,
}

fn work() -> Arc<Work> {
    Arc::new(Work {
        bell: Doorbell::new(),
        tokens: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
    })
}

impl Work {
    /// Takes a token if there is one (Relaxed: the doorbell's fences and
    /// lock are what the models check, not this counter's orderings).
    fn take(&self) -> bool {
        let mut n = self.tokens.load(Ordering::Relaxed);
        while n > 0 {
            match self
                .tokens
                .compare_exchange(n, n - 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// Makes one token and rings, as a submitter does after publishing.
    fn give(&self) {
        self.tokens.fetch_add(1, Ordering::Relaxed);
        self.bell.ring();
    }

    /// Sleeps until a token (true) or the close (false); `wait` is the
    /// limit each wait asks for.
    fn sleep(&self, wait: Option<Duration>) -> bool {
        self.bell.sleep(|_| {
            if self.take() {
                Check::Done(true)
            } else if self.closed.load(Ordering::Relaxed) {
                Check::Done(false)
            } else {
                Check::Wait(wait)
            }
        })
    }

    /// Closes and wakes everyone, as a shutdown does.
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.bell.ring_all();
    }
}

/// A ring races a sleeper registering itself: either the ringer sees the
/// sleeper, or the sleeper's check sees the token. The sleeper must get
/// the token without any other help.
#[test]
fn ring_races_a_sleeper_registering() {
    model(|| {
        let w = work();
        let w2 = w.clone();
        let sleeper = thread::spawn(move || w2.sleep(None));
        w.give();
        assert!(sleeper.join().unwrap(), "the token was lost");
        assert_eq!(w.bell.sleepers(), 0);
    });
}

/// Two sleepers, two tokens from two ringers: each ring wakes one sleeper
/// and both sleepers end with a token (a signal that finds a sleeper which
/// the other token already woke is not lost: the woken one takes one, the
/// other is signalled by the second ring).
#[test]
fn two_rings_wake_two_sleepers() {
    model(|| {
        let w = work();
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let w = w.clone();
                thread::spawn(move || w.sleep(None))
            })
            .collect();
        let w2 = w.clone();
        let ringer = thread::spawn(move || w2.give());
        w.give();
        ringer.join().unwrap();
        for s in sleepers {
            assert!(s.join().unwrap());
        }
        assert_eq!(w.tokens.load(Ordering::Relaxed), 0);
    });
}

/// A timed sleep (the pool's keep-alive, a batch flusher's flush wait) is
/// woken by a ring like an untimed one (under loom a non-zero timed wait
/// ends only by being woken). A zero wait times out at once and the check
/// learns so.
#[test]
fn timed_sleep_is_woken_and_times_out() {
    model(|| {
        let w = work();
        let w2 = w.clone();
        let sleeper = thread::spawn(move || w2.sleep(Some(Duration::from_secs(60))));
        w.give();
        assert!(sleeper.join().unwrap());

        let mut asked = 0;
        let timed_out = w.bell.sleep(|timed_out| {
            asked += 1;
            if timed_out {
                Check::Done(true)
            } else {
                Check::Wait(Some(Duration::ZERO))
            }
        });
        assert!(timed_out && asked == 2);
    });
}

/// A close races two sleepers: `ring_all` after the state change reaches
/// both, whether they were already waiting or still checking.
#[test]
fn close_wakes_every_sleeper() {
    model(|| {
        let w = work();
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let w = w.clone();
                thread::spawn(move || w.sleep(None))
            })
            .collect();
        w.close();
        for s in sleepers {
            assert!(!s.join().unwrap());
        }
        assert_eq!(w.bell.sleepers(), 0);
    });
}

/// A napper (a flusher with a lingering batch) and a sleeper share the
/// doorbell. A `ring` must reach the sleeper (the napper is not counted);
/// the napper's check under the lock sees the close that `ring_all`
/// follows. (Under loom a nap is a yield; that a `ring`'s one signal never
/// lands on a napper's wait is checked with real threads in the doorbell's
/// unit tests.)
#[test]
fn ring_reaches_the_sleeper_not_the_napper() {
    model(|| {
        let w = work();
        let w2 = w.clone();
        let napper = thread::spawn(move || {
            let mut naps = 0;
            while !w2.closed.load(Ordering::Relaxed) && naps < 2 {
                w2.bell.nap(Duration::from_secs(60), || {
                    w2.closed.load(Ordering::Relaxed)
                });
                naps += 1;
            }
        });
        let w3 = w.clone();
        let sleeper = thread::spawn(move || w3.sleep(None));
        w.give();
        assert!(sleeper.join().unwrap(), "the ring went to the napper");
        w.close();
        napper.join().unwrap();
    });
}

/// Two rings race one sleeper: the second ring may find the first one's
/// signal still in flight and send none (module docs, "Wakes in flight").
/// The signalled sleeper's next check must then come after the second
/// token, so a sleeper that sleeps again for each token it takes (as a
/// worker polls again after each job) gets both; a skipped signal that
/// left a token unseen shows up as a deadlock. Ends with no signal counted.
#[test]
fn a_ring_skipped_for_a_signal_in_flight_is_not_lost() {
    model(|| {
        let w = work();
        let w2 = w.clone();
        let sleeper = thread::spawn(move || w2.sleep(None) && w2.sleep(None));
        let w3 = w.clone();
        let ringer = thread::spawn(move || w3.give());
        w.give();
        ringer.join().unwrap();
        assert!(sleeper.join().unwrap(), "a token was lost");
        assert_eq!(w.bell.sleepers(), 0);
        assert_eq!(w.bell.pending(), 0, "a signal count was left behind");
    });
}

/// A signal in flight to a timed sleeper whose wait ends on its own (a
/// zero wait, which under loom returns at once): whichever return takes
/// the signal up, a later ring still reaches the sleeper, and no count is
/// left behind for rings to skip on.
#[test]
fn a_timed_out_sleeper_takes_up_the_signal() {
    model(|| {
        let w = work();
        let w2 = w.clone();
        let sleeper = thread::spawn(move || {
            let mut naps = 0;
            let got = w2.bell.sleep(|_| {
                if w2.take() {
                    Check::Done(true)
                } else if naps < 1 {
                    naps += 1;
                    Check::Wait(Some(Duration::ZERO))
                } else {
                    Check::Wait(None)
                }
            });
            got && w2.sleep(None)
        });
        w.give();
        w.give();
        assert!(sleeper.join().unwrap(), "a token was lost");
        assert_eq!(w.bell.pending(), 0, "a signal count was left behind");
    });
}

/// Announced work (module docs, "Announced work"): a ringer announces a
/// token (as the pool's submitter claims a slot), listens (the fence and
/// the sleeper count), then makes the token and signals only if it heard
/// a sleeper. A sleeper whose check sees an announcement without its token
/// looks again without waiting (as a worker that finds a claimed,
/// unfinished slot). Two such ringers race a sleeper that wants both
/// tokens: a sleeper that waits for a signal the ringer decided not to
/// send shows up as a deadlock.
#[test]
fn announced_work_is_seen_or_signalled() {
    model(|| {
        let w = work();
        let announced = Arc::new(AtomicUsize::new(0));
        let sleeper = {
            let (w, announced) = (w.clone(), announced.clone());
            thread::spawn(move || {
                let mut got = 0;
                while got < 2 {
                    let took = w.bell.sleep(|_| {
                        if w.take() {
                            Check::Done(true)
                        } else if announced.load(Ordering::Relaxed) > got {
                            // Announced, not yet made: look again.
                            Check::Done(false)
                        } else {
                            Check::Wait(None)
                        }
                    });
                    if took {
                        got += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let give = |w: &Work, announced: &AtomicUsize| {
            announced.fetch_add(1, Ordering::Relaxed);
            let heard = w.bell.listen();
            w.tokens.fetch_add(1, Ordering::Relaxed);
            if heard {
                w.bell.signal();
            }
        };
        let ringer = {
            let (w, announced) = (w.clone(), announced.clone());
            thread::spawn(move || give(&w, &announced))
        };
        give(&w, &announced);
        ringer.join().unwrap();
        sleeper.join().unwrap();
        assert_eq!(w.bell.sleepers(), 0);
        assert_eq!(w.bell.pending(), 0, "a signal count was left behind");
    });
}
