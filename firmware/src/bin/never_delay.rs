//! panic-never: the delay queue's hot path (`try_insert_at`,
//! `reset_at`, `remove`, `poll_expired`) on a 16-item fixed queue, with inputs the
//! optimiser cannot see through.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use latchfree::queue::{DelayQueue, Fixed};

#[entry]
fn main() -> ! {
    static mut QUEUE: DelayQueue<u32, Fixed<16>> = DelayQueue::new_fixed();
    let queue = black_box(QUEUE);
    let mut now = 0u64;
    loop {
        if let Ok(key) = queue.try_insert_at(black_box(1), black_box(now + 10)) {
            let _ = black_box(queue.reset_at(key, black_box(now + 20)));
            if black_box(false) {
                let _ = black_box(queue.remove(key));
            }
        }
        now = black_box(now + 1);
        while let Some(expired) = queue.poll_expired(now) {
            black_box((expired.key, expired.deadline, expired.value));
        }
    }
}

latchfree_firmware::panic_never_handler!();
