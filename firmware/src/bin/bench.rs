//! Instructions per operation under `qemu-system-arm -icount shift=0`
//! (one instruction per virtual nanosecond), read off SysTick and
//! calibrated against a loop of known length; and, built with one
//! `measure-*` feature at a time, each structure's flash and RAM above the
//! bare firmware. `bench.sh` runs it all and prints the README's table.
//!
//! Each operation is the pair a queue exists for: put one `u32` in, take it
//! out (`Spsc`: `try_push` + `try_pop`; ring: `try_publish` + `poll`; heapless: `enqueue` + `dequeue`;
//! bbqueue: `grant_exact(4)` + `commit` + `read` + `release`), or a timer's
//! whole life (insert, advance past it, pop it).
#![no_std]
#![no_main]
#![allow(unused_imports, dead_code)]

use core::hint::black_box;

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;

/// Operations per measurement.
const N: u32 = 10_000;

#[entry]
fn main() -> ! {
    let mut core = cortex_m::Peripherals::take().unwrap();
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(0x00ff_ffff);
    core.SYST.clear_current();
    core.SYST.enable_counter();

    // Instructions per SysTick count: a loop of exactly two instructions
    // per turn (`subs`, `bne`), 2 × 400 000 instructions in all.
    let turns: u32 = 400_000;
    let calibration = elapsed(|| {
        // SAFETY: a counted loop on one register; no memory, no stack.
        unsafe {
            core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) turns => _, options(nomem, nostack));
        }
    });
    let empty = elapsed(|| {
        for i in 0..N {
            black_box(i);
        }
    });
    let per_op = |ticks: u32| -> u32 {
        // Tenths of an instruction per operation, loop overhead removed.
        let net = u64::from(ticks.saturating_sub(empty));
        (net * 2 * u64::from(turns) * 10 / (u64::from(calibration) * u64::from(N))) as u32
    };
    hprintln!(
        "calibration: {} SysTick counts for {} instructions",
        calibration,
        2 * turns
    );
    let report = |name: &str, ticks: u32| {
        let t = per_op(ticks);
        hprintln!("insns/op {}: {}.{}", name, t / 10, t % 10);
    };
    // In every build, so the bare firmware has the harness too.
    report("empty loop", empty);
    verify(black_box(expected_sum()));

    #[cfg(feature = "measure-spsc")]
    report("latchfree Spsc try_push+try_pop", spsc::run());
    #[cfg(feature = "measure-ring")]
    report("latchfree SP ring try_publish+poll", ring::run());
    #[cfg(feature = "measure-mpring")]
    report("latchfree MP ring try_publish+poll", mpring::run());
    #[cfg(feature = "measure-heapless")]
    report("heapless spsc enqueue+dequeue", heapless_spsc::run());
    #[cfg(feature = "measure-bbqueue")]
    report("bbqueue grant+commit+read+release", bb::run());
    #[cfg(feature = "measure-wheel")]
    report("latchfree wheel try_insert_at+advance+pop", wheel::run());
    #[cfg(feature = "measure-delay")]
    report(
        "latchfree delay queue try_insert_at+poll_expired",
        delay::run(),
    );
    #[cfg(feature = "measure-embassy")]
    report(
        "embassy generic queue schedule_wake+next_expiration",
        embassy::run(),
    );
    latchfree_firmware::finish("bench")
}

/// The sum of every value put in: what each run must get out.
fn expected_sum() -> u32 {
    (0..N).fold(0u32, |a, b| a.wrapping_add(b))
}

/// Ends the run with FAIL unless `sum` is [`expected_sum`] (no formatting
/// machinery: the sizes measure the structures, not the checks).
fn verify(sum: u32) {
    if sum != expected_sum() {
        hprintln!("FAIL bench: lost or duplicated values");
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    }
}

/// The value of `r`, or FAIL (set-up refused).
fn ok<T, E>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(_) => {
            hprintln!("FAIL bench: set-up refused");
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
            loop {
                cortex_m::asm::wfi();
            }
        }
    }
}

/// Timers that stay queued (far in the future) while each timer measured
/// comes and goes, so no timer structure is measured empty.
const RESIDENTS: u32 = 4;
/// Their deadline: past every deadline the run reaches.
const FAR: u64 = 1 << 40;

/// SysTick counts `f` took (SysTick counts down, 24 bits).
fn elapsed(f: impl FnOnce()) -> u32 {
    let start = SYST::get_current();
    f();
    let end = SYST::get_current();
    start.wrapping_sub(end) & 0x00ff_ffff
}

#[cfg(feature = "measure-spsc")]
mod spsc {
    use super::*;
    use latchfree::ring::Spsc;

    static QUEUE: Spsc<u32, 64> = Spsc::new();

    pub(super) fn run() -> u32 {
        // Split once, so never refused; if it were, a failed run (through
        // `verify`, already in the bare image: the set-up costs no flash
        // the structure does not).
        let Some((mut producer, mut consumer)) = QUEUE.split() else {
            verify(expected_sum().wrapping_add(1));
            return 0;
        };
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                let _ = producer.try_push(black_box(i));
                if let Ok(v) = consumer.try_pop() {
                    sum = sum.wrapping_add(v);
                }
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-ring")]
mod ring {
    use super::*;
    use latchfree::ring::{BusySpin, Inline, Ring, Single};

    static RING: Ring<Inline<u32, 64, 1>, Single, BusySpin> =
        Ring::with_wait(Inline::new([0; 64]), BusySpin);

    pub(super) fn run() -> u32 {
        let mut graph = ok(Ring::graph(&RING));
        let mut consumer = ok(graph.consumer(&[]));
        let mut producer = ok(graph.single_producer());
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                let _ = producer.try_publish(|slot| *slot = black_box(i));
                consumer.poll(|&v, _, _| sum = sum.wrapping_add(v));
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-mpring")]
mod mpring {
    use super::*;
    use latchfree::ring::{BusySpin, Inline, Multi, Ring};

    static RING: Ring<Inline<u32, 64, 1>, Multi, BusySpin> =
        Ring::with_wait(Inline::new([0; 64]), BusySpin);

    pub(super) fn run() -> u32 {
        let mut graph = ok(Ring::graph(&RING));
        let mut consumer = ok(graph.consumer(&[]));
        let mut producer = ok(graph.multi_producer());
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                let _ = producer.try_publish(|slot| *slot = black_box(i));
                consumer.poll(|&v, _, _| sum = sum.wrapping_add(v));
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-heapless")]
mod heapless_spsc {
    use super::*;
    use heapless::spsc::Queue;

    pub(super) fn run() -> u32 {
        static mut QUEUE: Queue<u32, 64> = Queue::new();
        // SAFETY: split once, here, and never touched again through QUEUE.
        let (mut producer, mut consumer) = unsafe { (*core::ptr::addr_of_mut!(QUEUE)).split() };
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                let _ = producer.enqueue(black_box(i));
                if let Some(v) = consumer.dequeue() {
                    sum = sum.wrapping_add(v);
                }
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-bbqueue")]
mod bb {
    use super::*;
    use bbqueue::BBBuffer;

    static BUFFER: BBBuffer<256> = BBBuffer::new();

    pub(super) fn run() -> u32 {
        let (mut producer, mut consumer) = ok(BUFFER.try_split());
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                if let Ok(mut grant) = producer.grant_exact(4) {
                    grant.copy_from_slice(&black_box(i).to_le_bytes());
                    grant.commit(4);
                }
                if let Ok(grant) = consumer.read() {
                    let mut word = [0; 4];
                    word.copy_from_slice(&grant[..4]);
                    sum = sum.wrapping_add(u32::from_le_bytes(word));
                    grant.release(4);
                }
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-wheel")]
mod wheel {
    use super::*;
    use latchfree::wheel::{Fixed, Wheel, WheelConfig};

    pub(super) fn run() -> u32 {
        static mut WHEEL: Wheel<u32, Fixed<16>> = Wheel::new_fixed(WheelConfig::new());
        // SAFETY: the only reference to WHEEL, taken once.
        let wheel = unsafe { &mut *core::ptr::addr_of_mut!(WHEEL) };
        for r in 0..RESIDENTS {
            ok(wheel
                .try_insert_at(u32::MAX, FAR + u64::from(r))
                .map_err(drop));
        }
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                let now = u64::from(i) * 10;
                let _ = wheel.try_insert_at(black_box(i), now + 10);
                wheel.advance_to(now + 10);
                if let Some(e) = wheel.pop_expired() {
                    sum = sum.wrapping_add(e.value);
                }
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-delay")]
mod delay {
    use super::*;
    use latchfree::queue::{DelayQueue, Fixed};

    pub(super) fn run() -> u32 {
        static mut QUEUE: DelayQueue<u32, Fixed<16>> = DelayQueue::new_fixed();
        // SAFETY: the only reference to QUEUE, taken once.
        let queue = unsafe { &mut *core::ptr::addr_of_mut!(QUEUE) };
        for r in 0..RESIDENTS {
            ok(queue
                .try_insert_at(u32::MAX, FAR + u64::from(r))
                .map_err(drop));
        }
        let mut sum = 0u32;
        let t = elapsed(|| {
            for i in 0..N {
                let now = u64::from(i) * 10;
                let _ = queue.try_insert_at(black_box(i), now + 10);
                if let Some(e) = queue.poll_expired(now + 10) {
                    sum = sum.wrapping_add(e.value);
                }
            }
        });
        verify(black_box(sum));
        t
    }
}

#[cfg(feature = "measure-embassy")]
mod embassy {
    use super::*;
    use core::task::{RawWaker, RawWakerVTable, Waker};
    use embassy_time_queue_utils::queue_generic::ConstGenericQueue;

    /// Wakers that do nothing but count (the queue tells tasks apart by
    /// waker: a distinct data pointer per timer).
    static mut WOKEN: u32 = 0;
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        |p| RawWaker::new(p, &VTABLE),
        // SAFETY (both): one thread, no interrupt touches WOKEN.
        |p| unsafe { WOKEN = WOKEN.wrapping_add(p as u32) },
        |p| unsafe { WOKEN = WOKEN.wrapping_add(p as u32) },
        |_| {},
    );

    fn waker(id: usize) -> Waker {
        // SAFETY: the vtable's functions never touch the data pointer's
        // target; it is only an id.
        unsafe { Waker::from_raw(RawWaker::new(id as *const (), &VTABLE)) }
    }

    pub(super) fn run() -> u32 {
        static mut QUEUE: ConstGenericQueue<16> = ConstGenericQueue::new();
        // SAFETY: the only reference to QUEUE, taken once.
        let queue = unsafe { &mut *core::ptr::addr_of_mut!(QUEUE) };
        for r in 0..RESIDENTS {
            queue.schedule_wake(FAR + u64::from(r), &waker(2 + r as usize));
        }
        let timer = waker(1);
        let t = elapsed(|| {
            for i in 0..N {
                let now = u64::from(i) * 10;
                queue.schedule_wake(black_box(now + 10), &timer);
                black_box(queue.next_expiration(now + 10));
            }
        });
        // Each measured timer woke once (waker id 1), no resident did.
        // SAFETY: no waker runs any more.
        let woken = unsafe { WOKEN };
        if woken != N {
            verify(woken.wrapping_add(1));
        }
        t
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    latchfree_firmware::panicked(info)
}
