//! panic-never: the timing wheel's hot path (`insert`, `cancel`, `reset`,
//! `advance_to`, `pop_expired`) on a `static` 16-timer wheel, with inputs
//! the optimiser cannot see through.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use latchfree::queue::arena::Fixed;
use latchfree::wheel::{Wheel, WheelConfig};

#[entry]
fn main() -> ! {
    static mut WHEEL: Wheel<u32, Fixed<16>> = Wheel::new_fixed(WheelConfig::new());
    let wheel = black_box(WHEEL);
    let mut now = 0u64;
    loop {
        let deadline = black_box(now + 100);
        if let Ok(key) = wheel.insert(deadline, black_box(7)) {
            let _ = black_box(wheel.reset(key, black_box(deadline + 3)));
            if black_box(false) {
                let _ = black_box(wheel.cancel(key));
            }
        }
        now = black_box(now + 1);
        let _ = black_box(wheel.advance_to(now));
        while let Some(expired) = wheel.pop_expired() {
            black_box((expired.key, expired.deadline, expired.value));
        }
    }
}

latchfree_firmware::panic_never_handler!();
