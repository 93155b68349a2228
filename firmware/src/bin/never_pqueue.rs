//! panic-never: the priority queue's hot path (`try_push`, `peek`, `pop`,
//! `change_priority`, `remove`) on a 16-item fixed queue, with inputs the
//! optimiser cannot see through.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use latchfree::queue::{Fixed, PriorityQueue};

#[entry]
fn main() -> ! {
    static mut QUEUE: PriorityQueue<u32, u32, Fixed<16>> = PriorityQueue::new_fixed();
    let queue = black_box(QUEUE);
    loop {
        if let Ok(key) = queue.try_push(black_box(1), black_box(5)) {
            let _ = black_box(queue.change_priority(key, black_box(2)));
            if black_box(false) {
                let _ = black_box(queue.remove(key));
            }
        }
        black_box(queue.peek());
        if black_box(true) {
            black_box(queue.pop());
        }
    }
}

latchfree_firmware::panic_never_handler!();
