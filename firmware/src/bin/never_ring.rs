//! panic-never: the single-producer ring's hot path (`try_publish`,
//! `try_push`, `poll`) on a `static` ring, and its single-producer/
//! single-consumer front's (`Spsc`: `try_push`, `try_pop`), with inputs the
//! optimiser cannot see through. Links with `--features panic-never` only
//! if those paths have no panicking branch (set-up included: building the
//! graph, splitting the queue).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use latchfree::ring::{BusySpin, Inline, Ring, Single, Spsc};

static RING: Ring<Inline<u32, 16, 1>, Single, BusySpin> =
    Ring::with_wait(Inline::new([0; 16]), BusySpin);
static QUEUE: Spsc<u32, 16> = Spsc::new();

#[entry]
fn main() -> ! {
    // A refused set-up parks the core (it cannot happen: one graph, one
    // consumer); a panic would defeat the check.
    let Ok(mut graph) = Ring::graph(&RING) else {
        halt()
    };
    let Ok(mut consumer) = graph.consumer(&[]) else {
        halt()
    };
    let Ok(mut producer) = graph.single_producer() else {
        halt()
    };
    let Some((mut queue_in, mut queue_out)) = QUEUE.split() else {
        halt()
    };
    loop {
        let value = black_box(0u32);
        let _ = black_box(queue_in.try_push(value).is_ok());
        let _ = black_box(queue_out.try_pop());
        let _ = black_box(producer.try_publish(|slot| *slot = value).is_ok());
        let _ = black_box(producer.try_push(value ^ 1).is_ok());
        let _ = black_box(consumer.poll(|&event, seq, end| {
            black_box((event, seq, end));
        }));
    }
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

latchfree_firmware::panic_never_handler!();
