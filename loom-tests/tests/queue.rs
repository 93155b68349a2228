#![cfg(latchfree_loom)]
//! Loom models of the blocking delay queue: an insert that becomes the new
//! head always wakes a waiting consumer (no lost wake-up), and close always
//! wakes a waiting consumer.

use latchfree::queue::BlockingDelayQueue;
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

#[test]
fn insert_wakes_waiting_pop() {
    loom::model(|| {
        let q = Arc::new(BlockingDelayQueue::new());
        let q2 = Arc::clone(&q);
        let consumer = thread::spawn(move || q2.pop());
        q.insert(5u32, Duration::ZERO).unwrap();
        assert_eq!(consumer.join().unwrap(), Ok(5));
    });
}

#[test]
fn close_wakes_waiting_pop() {
    loom::model(|| {
        let q: Arc<BlockingDelayQueue<u32>> = Arc::new(BlockingDelayQueue::new());
        let q2 = Arc::clone(&q);
        let consumer = thread::spawn(move || q2.pop());
        assert!(q.close().is_empty());
        assert!(consumer.join().unwrap().is_err());
        assert!(q.insert(1, Duration::ZERO).is_err());
    });
}

#[test]
fn insert_vs_close_never_drops_silently() {
    loom::model(|| {
        let q: Arc<BlockingDelayQueue<u32>> = Arc::new(BlockingDelayQueue::new());
        let q2 = Arc::clone(&q);
        let producer = thread::spawn(move || q2.insert(9, Duration::ZERO).is_ok());
        let rest = q.close();
        let accepted = producer.join().unwrap();
        // Accepted before the close: handed back by close. Refused: the
        // producer got it back. Never both, never neither.
        assert_eq!(accepted, rest == vec![9]);
    });
}
