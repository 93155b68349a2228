//! panic-never: the timing wheel's hot path (`try_insert_at`, `remove`,
//! `reset_at`, `advance_to`, `pop_expired`, `advance_with`, `poll_expired`)
//! on a `static` 16-timer wheel, with inputs the optimiser cannot see
//! through.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use latchfree::wheel::{Fixed, Wheel, WheelConfig};

#[entry]
fn main() -> ! {
    static mut WHEEL: Wheel<u32, Fixed<16>> = Wheel::new_fixed(WheelConfig::new());
    let wheel = black_box(WHEEL);
    let mut now = 0u64;
    loop {
        let deadline = black_box(now + 100);
        if let Ok(key) = wheel.try_insert_at(black_box(7), deadline) {
            let _ = black_box(wheel.reset_at(key, black_box(deadline + 3)));
            if black_box(false) {
                let _ = black_box(wheel.remove(key));
            }
        }
        now = black_box(now + 1);
        if black_box(now & 1 == 0) {
            let _ = black_box(wheel.advance_to(now));
            while let Some(expired) = wheel.pop_expired() {
                black_box((expired.key, expired.deadline, expired.value));
            }
        } else if black_box(now & 2 == 0) {
            let fired = wheel.advance_with(now, |expired| {
                black_box((expired.key, expired.deadline, expired.value));
            });
            black_box(fired);
        } else {
            while let Some(expired) = wheel.poll_expired(now) {
                black_box((expired.key, expired.deadline, expired.value));
            }
        }
    }
}

latchfree_firmware::panic_never_handler!();
