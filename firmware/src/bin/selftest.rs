//! Every structure latchfree's core has without an allocator, run on a
//! QEMU board and checked: PASS or FAIL over semihosting, exit code 0 or 1.
//!
//! - a `static` single-producer ring fed from the SysTick interrupt (the
//!   producer handle moved into the handler once), drained by the main
//!   loop, filled to the brim on purpose;
//! - a `static` `Spsc` (the ring's single-producer/single-consumer front)
//!   fed from the same interrupt with `try_push`, drained with `try_pop`,
//!   filled to the brim, then closed by the interrupt dropping its producer;
//! - a `static` multi-producer ring published from the main loop and from
//!   the interrupt at once;
//! - a `static` timing wheel driven by the tick counter the interrupt keeps;
//! - the fixed-capacity priority queue and delay queue, against a model;
//! - the 32-bit GCRA limiter and the fixed round-robin balancer.
//!
//! The same source runs on the Cortex-M0 (micro:bit, atomics from
//! portable-atomic), the M3 (LM3S6965EVB) and the M4F (MPS2 AN386).
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};

use cortex_m::peripheral::SYST;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use critical_section::Mutex;
use latchfree::balance::fixed::RoundRobin;
use latchfree::limiter::{Gcra32, TryAcquireError};
use latchfree::queue::{DelayQueue, Fixed, PriorityQueue};
use latchfree::ring::{
    BusySpin, Consumer, Inline, Multi, MultiProducer, Producer, PublishError, Ring, Single, Spsc,
    SpscConsumer, SpscProducer, TryPopError,
};
use latchfree::error::TryPushError;
use latchfree::wheel::{SmallWheel, Wheel, WheelConfig};
use latchfree_firmware::{check, finish, start_systick, Rng};

/// Samples the SysTick handler publishes into the single-producer ring.
const SAMPLES: u32 = 300;
/// Events each of the two producers publishes into the multi-producer ring.
const EVENTS: u32 = 200;
/// Items the SysTick handler pushes into the `Spsc` before it closes it.
const ITEMS: u32 = 250;
/// Marks an event the interrupt published.
const FROM_IRQ: u32 = 1 << 31;
/// Processor clocks between two SysTick interrupts.
const TICK_CYCLES: u32 = 4_000;
/// Ticks after which the main loop gives up (a lost event, a hang).
const GIVE_UP_TICKS: u32 = 20_000;

type SampleRing = Ring<Inline<u32, 16, 1>, Single, BusySpin>;
type EventRing = Ring<Inline<u32, 16, 1>, Multi, BusySpin>;

/// A ring in a `static`: built at compile time, no allocator.
static SAMPLE_RING: SampleRing = Ring::with_wait(Inline::new([0; 16]), BusySpin);
static EVENT_RING: EventRing = Ring::with_wait(Inline::new([0; 16]), BusySpin);
/// The single-producer/single-consumer front, in a `static` too.
static SPSC_QUEUE: Spsc<u32, 8> = Spsc::new();

type IrqHandles = (
    Producer<&'static SampleRing>,
    MultiProducer<&'static EventRing>,
    // `None` once the handler has pushed every item: dropping the producer
    // closes the queue for the main loop.
    Option<SpscProducer<'static, u32, 8>>,
);
/// The hand-off: `main` puts the interrupt's producer handles here once;
/// the handler takes them on its first run and owns them from then on.
static IRQ_HANDLES: Mutex<RefCell<Option<IrqHandles>>> = Mutex::new(RefCell::new(None));

/// The tick counter (only the handler writes it: a load and a store).
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Ticks on which the sample ring was full (the sample waits a tick).
static FULL: AtomicU32 = AtomicU32::new(0);
/// Ticks on which the `Spsc` was full (the item waits a tick).
static QUEUE_FULL: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // cortex-m-rt turns these into `&mut` owned by this handler alone.
    static mut HANDLES: Option<IrqHandles> = None;
    static mut NEXT_SAMPLE: u32 = 0;
    static mut NEXT_EVENT: u32 = 0;
    static mut NEXT_ITEM: u32 = 0;
    static mut JITTER: Rng = Rng(0x6c07_8965);

    TICKS.store(TICKS.load(Relaxed).wrapping_add(1), Release);
    // The next tick comes after a random number of clocks, so under
    // QEMU's `-icount` (the same instruction stream on every run) the
    // interrupt still lands at many different points of the main loop,
    // inside its publishes and polls among them.
    let next = TICK_CYCLES / 2 + JITTER.below(TICK_CYCLES);
    // SAFETY: only this handler writes the reload register once SysTick
    // runs; the new value takes effect at the next wrap.
    unsafe { (*SYST::PTR).rvr.write(next - 1) };
    if HANDLES.is_none() {
        *HANDLES = critical_section::with(|cs| IRQ_HANDLES.borrow_ref_mut(cs).take());
    }
    let Some((samples, events, queue)) = HANDLES else {
        return;
    };
    // Only `try_publish` in here: a waiting `publish` would wait for the
    // main loop to free a slot, and the main loop cannot run until this
    // handler returns.
    if *NEXT_SAMPLE < SAMPLES {
        let value = *NEXT_SAMPLE;
        match samples.try_publish(|s| *s = value) {
            Ok(seq) => {
                check!(
                    seq == u64::from(value),
                    "sample {} got sequence {}",
                    value,
                    seq
                );
                *NEXT_SAMPLE += 1;
            }
            Err(PublishError::Full(_)) => FULL.store(FULL.load(Relaxed) + 1, Relaxed),
            Err(_) => check!(false, "the sample ring refused sample {}", value),
        }
    }
    if let Some(producer) = queue {
        // `try_push` only, for the same reason.
        match producer.try_push(*NEXT_ITEM) {
            Ok(()) => *NEXT_ITEM += 1,
            Err(TryPushError::Full(_)) => QUEUE_FULL.store(QUEUE_FULL.load(Relaxed) + 1, Relaxed),
            Err(TryPushError::Closed(_)) => check!(false, "the Spsc closed under its producer"),
        }
        if *NEXT_ITEM == ITEMS {
            *queue = None;
        }
    }
    if *NEXT_EVENT < EVENTS {
        let value = *NEXT_EVENT;
        match events.try_publish(|e| *e = FROM_IRQ | value) {
            Ok(_) => *NEXT_EVENT += 1,
            Err(PublishError::Full(_)) => {}
            Err(_) => check!(false, "the event ring refused interrupt event {}", value),
        }
    }
}

#[entry]
fn main() -> ! {
    // `static mut` in `#[entry]`: cortex-m-rt hands out one `&'static mut`.
    static mut WHEEL: Wheel<u32, Fixed<16>> = Wheel::new_fixed(WheelConfig::new());
    static mut PRIORITIES: PriorityQueue<u32, u32, Fixed<16>> = PriorityQueue::new_fixed();
    static mut DELAYS: DelayQueue<u32, Fixed<16>> = DelayQueue::new_fixed();
    static mut SMALL_WHEEL: SmallWheel<u32, 16> = SmallWheel::new_fixed(WheelConfig::new());

    let core = cortex_m::Peripherals::take().unwrap();

    priority_queue(PRIORITIES);
    delay_queue(DELAYS);
    small_wheel(SMALL_WHEEL);
    limiter();
    balancer();

    let mut graph = Ring::graph(&SAMPLE_RING).unwrap();
    let mut samples = graph.consumer(&[]).unwrap();
    let sample_producer = graph.single_producer().unwrap();
    let mut graph = Ring::graph(&EVENT_RING).unwrap();
    let mut events = graph.consumer(&[]).unwrap();
    let mut event_producer = graph.multi_producer().unwrap();
    check!(
        Ring::graph(&SAMPLE_RING).is_err(),
        "a second graph was built"
    );
    let Some((queue_producer, mut queue)) = SPSC_QUEUE.split() else {
        panic!("the Spsc refused its first split");
    };
    check!(SPSC_QUEUE.split().is_none(), "the Spsc split twice");
    let irq = (sample_producer, event_producer.clone(), Some(queue_producer));
    critical_section::with(|cs| *IRQ_HANDLES.borrow_ref_mut(cs) = Some(irq));

    start_systick(core.SYST, TICK_CYCLES);
    rings_and_wheel(&mut samples, &mut events, &mut event_producer, &mut queue, WHEEL);
    footprint();
    finish("selftest")
}

/// The main loop: drains both rings, publishes its own events, drives the
/// wheel from the tick counter, until everything arrived (or time is up).
fn rings_and_wheel(
    samples: &mut Consumer<&'static SampleRing>,
    events: &mut Consumer<&'static EventRing>,
    producer: &mut MultiProducer<&'static EventRing>,
    queue: &mut SpscConsumer<'static, u32, 8>,
    wheel: &mut Wheel<u32, Fixed<16>>,
) {
    let mut rng = Rng(0x2545_f491);
    let mut deadlines = [0u64; 16];
    let mut keys = [None; 16];
    for (i, (deadline, key)) in deadlines.iter_mut().zip(&mut keys).enumerate() {
        *deadline = 30 + u64::from(rng.below(600));
        *key = wheel.try_insert_at(i as u32, *deadline).ok();
        check!(key.is_some(), "the wheel refused timer {}", i);
    }
    check!(
        wheel.try_insert_at(99, 5) == Err(99),
        "a full wheel took a 17th timer"
    );
    let mut cancelled = [false; 16];
    for i in [3, 7] {
        check!(
            wheel.remove(keys[i].unwrap()) == Some(i as u32),
            "cancel {}",
            i
        );
        check!(
            wheel.remove(keys[i].unwrap()).is_none(),
            "a stale key cancelled twice"
        );
        cancelled[i] = true;
    }
    deadlines[5] = 700;
    check!(wheel.reset_at(keys[5].unwrap(), 700), "reset");
    let mut fired = [false; 16];

    // Let the interrupt fill the sample ring before anyone drains it.
    while TICKS.load(Acquire) < 40 {
        cortex_m::asm::wfi();
    }

    let (mut next_sample, mut main_next, mut main_seen, mut irq_seen) = (0u32, 0u32, 0u32, 0u32);
    let (mut next_item, mut queue_closed) = (0u32, false);
    loop {
        let now = TICKS.load(Acquire);
        if now > GIVE_UP_TICKS {
            check!(
                false,
                "gave up at tick {}: samples {}, events {}+{}, items {}",
                now,
                next_sample,
                main_seen,
                irq_seen,
                next_item
            );
            break;
        }
        samples.poll(|&s, seq, _| {
            check!(
                s == next_sample && seq == u64::from(s),
                "sample {} at {}, expected {}",
                s,
                seq,
                next_sample
            );
            next_sample = s + 1;
        });
        // Every item, in order, then `Closed` (never before the last).
        while !queue_closed {
            match queue.try_pop() {
                Ok(v) => {
                    check!(v == next_item, "Spsc item {}, expected {}", v, next_item);
                    next_item = v + 1;
                }
                Err(TryPopError::Empty) => break,
                Err(TryPopError::Closed) => {
                    check!(next_item == ITEMS, "Spsc closed after {} items", next_item);
                    queue_closed = true;
                }
            }
        }
        if main_next < EVENTS {
            match producer.try_publish(|e| *e = main_next) {
                Ok(_) => main_next += 1,
                Err(PublishError::Full(_)) => {}
                Err(_) => check!(false, "the event ring refused main event {}", main_next),
            }
        }
        events.poll(|&e, _, _| {
            if e & FROM_IRQ != 0 {
                check!(
                    e & !FROM_IRQ == irq_seen,
                    "interrupt event {} out of order",
                    e & !FROM_IRQ
                );
                irq_seen += 1;
            } else {
                check!(e == main_seen, "main event {} out of order", e);
                main_seen += 1;
            }
        });
        wheel.advance_to(u64::from(now));
        while let Some(x) = wheel.pop_expired() {
            let i = x.value as usize;
            check!(
                i < 16 && !fired[i] && !cancelled[i],
                "timer {} fired twice or after cancel",
                i
            );
            check!(
                x.deadline == deadlines[i],
                "timer {}: deadline {}",
                i,
                x.deadline
            );
            check!(
                x.deadline <= u64::from(now),
                "timer {} early: {} at {}",
                i,
                x.deadline,
                now
            );
            check!(Some(x.key) == keys[i], "timer {}: key", i);
            fired[i] = true;
        }
        if next_sample == SAMPLES
            && main_seen == EVENTS
            && irq_seen == EVENTS
            && queue_closed
            && wheel.is_empty()
        {
            break;
        }
    }
    for i in 0..16 {
        check!(
            fired[i] != cancelled[i],
            "timer {}: fired {} cancelled {}",
            i,
            fired[i],
            cancelled[i]
        );
    }
    check!(FULL.load(Relaxed) > 0, "the sample ring never filled up");
    check!(QUEUE_FULL.load(Relaxed) > 0, "the Spsc never filled up");
}

/// What a `static` costs on this core, for the record, and issue 14's
/// target held: a single-producer ring at most 64 B beyond its slots.
fn footprint() {
    use core::mem::size_of;
    fn ring<const N: usize>(name: &str, size: usize) {
        let slots = N * size_of::<u32>();
        hprintln!(
            "size_of {}: {} B ({} B of slots, {} B beyond)",
            name,
            size,
            slots,
            size - slots
        );
    }
    ring::<1>(
        "SP Ring<Inline<u32, 1, 1>>",
        size_of::<Ring<Inline<u32, 1, 1>, Single, BusySpin>>(),
    );
    ring::<16>("SP Ring<Inline<u32, 16, 1>>", size_of::<SampleRing>());
    // Held to it: no stamps, no padding on a cacheless core.
    check!(
        size_of::<SampleRing>() - 16 * size_of::<u32>() <= 64,
        "SP ring overhead beyond its slots: {} B (at most 64)",
        size_of::<SampleRing>() - 16 * size_of::<u32>()
    );
    ring::<16>("MP Ring<Inline<u32, 16, 1>>", size_of::<EventRing>());
    ring::<8>("Spsc<u32, 8>", size_of::<Spsc<u32, 8>>());
    check!(
        size_of::<Spsc<u32, 8>>() - 8 * size_of::<u32>() <= 64,
        "Spsc overhead beyond its slots: {} B (at most 64)",
        size_of::<Spsc<u32, 8>>() - 8 * size_of::<u32>()
    );
    hprintln!(
        "size_of Wheel<u32, Fixed<16>>: {} B",
        size_of::<Wheel<u32, Fixed<16>>>()
    );
    hprintln!(
        "size_of SmallWheel<u32, 16> (one level): {} B",
        size_of::<SmallWheel<u32, 16>>()
    );
    check!(
        size_of::<SmallWheel<u32, 16>>() <= 1024,
        "a 16-timer SmallWheel takes more than 1 KiB"
    );
    hprintln!(
        "size_of PriorityQueue<u32, u32, Fixed<16>>: {} B",
        size_of::<PriorityQueue<u32, u32, Fixed<16>>>()
    );
    hprintln!(
        "size_of DelayQueue<u32, Fixed<16>>: {} B",
        size_of::<DelayQueue<u32, Fixed<16>>>()
    );
}

/// The one-level wheel for small parts: 16 timers near and far (far ones
/// wait on the 64-tick ring and re-cascade), each handed out at the first
/// advance at or after its deadline and never before; full at 16.
fn small_wheel(wheel: &mut SmallWheel<u32, 16>) {
    const DEADLINES: [u64; 16] = [
        0,
        1,
        5,
        5,
        63,
        64,
        65,
        127,
        128,
        1000,
        4095,
        4096,
        70_000,
        1 << 20,
        1 << 40,
        u64::MAX - 1,
    ];
    for (i, &d) in DEADLINES.iter().enumerate() {
        check!(
            wheel.try_insert_at(i as u32, d).is_ok(),
            "the small wheel refused timer {}",
            i
        );
    }
    check!(
        wheel.try_insert_at(99, 3) == Err(99),
        "a full small wheel took a 17th timer"
    );
    let mut stops = [0u64; 32];
    for (n, &d) in DEADLINES.iter().enumerate() {
        stops[2 * n] = d.saturating_sub(1);
        stops[2 * n + 1] = d;
    }
    stops.sort_unstable();
    let mut fired = 0;
    for &t in &stops {
        wheel.advance_to(t);
        while let Some(e) = wheel.pop_expired() {
            check!(
                e.deadline == t && DEADLINES[e.value as usize] == t,
                "small wheel: timer {} due {} fired at {}",
                e.value,
                e.deadline,
                t
            );
            fired += 1;
        }
    }
    check!(fired == 16, "small wheel: {} of 16 timers fired", fired);
    check!(wheel.is_empty(), "small wheel not empty after the drain");
}

/// Fixed-capacity priority queue against a model: push to full, change
/// priorities, remove, pop everything in priority order.
fn priority_queue(q: &mut PriorityQueue<u32, u32, Fixed<16>>) {
    let mut rng = Rng(0x9e37_79b9);
    for round in 0..3 {
        let mut prio = [0u32; 16];
        let mut keys = [None; 16];
        for i in 0..16 {
            prio[i] = rng.below(40);
            keys[i] = q.try_push(i as u32, prio[i]).ok();
            check!(keys[i].is_some(), "round {}: push {} refused", round, i);
        }
        check!(
            q.is_full() && q.try_push(99, 0) == Err((99, 0)),
            "a full queue took a 17th item"
        );
        for i in [2, 9, 13] {
            prio[i] = rng.below(40);
            check!(
                q.change_priority(keys[i].unwrap(), prio[i]),
                "change_priority {}",
                i
            );
        }
        let mut gone = [false; 16];
        for i in [4, 11] {
            check!(
                q.remove(keys[i].unwrap()) == Some((i as u32, prio[i])),
                "remove {}",
                i
            );
            check!(q.remove(keys[i].unwrap()).is_none(), "removed {} twice", i);
            gone[i] = true;
        }
        let min = (0..16).filter(|&i| !gone[i]).map(|i| prio[i]).min();
        check!(q.peek().map(|(_, p)| *p) == min, "peek is not the minimum");
        let mut last = 0;
        let mut popped = 0;
        while let Some((v, p)) = q.pop() {
            let i = v as usize;
            check!(i < 16 && !gone[i] && p == prio[i], "popped ({}, {})", p, v);
            check!(p >= last, "popped {} after {}", p, last);
            check!(!q.contains(keys[i].unwrap()), "a popped key is still live");
            gone[i] = true;
            last = p;
            popped += 1;
        }
        check!(
            popped == 14 && q.is_empty(),
            "round {}: popped {}",
            round,
            popped
        );
    }
}

/// Fixed-capacity delay queue: items come out in deadline order, never
/// before their deadline, each once; reset and remove are honoured.
fn delay_queue(q: &mut DelayQueue<u32, Fixed<16>>) {
    let mut rng = Rng(0x85eb_ca6b);
    let mut deadline = [0u64; 16];
    let mut keys = [None; 16];
    for i in 0..16 {
        deadline[i] = 1 + u64::from(rng.below(500));
        keys[i] = q.try_insert_at(i as u32, deadline[i]).ok();
        check!(keys[i].is_some(), "insert {} refused", i);
    }
    check!(
        q.try_insert_at(99, 1) == Err(99),
        "a full delay queue took a 17th item"
    );
    for i in [1, 6] {
        deadline[i] = 1 + u64::from(rng.below(500));
        check!(q.reset_at(keys[i].unwrap(), deadline[i]), "reset {}", i);
        check!(
            q.deadline(keys[i].unwrap()) == Some(deadline[i]),
            "deadline after reset"
        );
    }
    let mut gone = [false; 16];
    for i in [0, 12] {
        check!(q.remove(keys[i].unwrap()) == Some(i as u32), "remove {}", i);
        gone[i] = true;
    }
    let mut now = 0;
    let mut last = 0;
    let mut released = 0;
    while !q.is_empty() && now < 1_000 {
        while let Some(e) = q.poll_expired(now) {
            let i = e.value as usize;
            check!(
                i < 16 && !gone[i] && e.deadline == deadline[i],
                "released {}",
                e.value
            );
            check!(
                e.deadline <= now && e.deadline >= last,
                "{} released at {} after {}",
                e.deadline,
                now,
                last
            );
            check!(Some(e.key) == keys[i], "key of {}", i);
            gone[i] = true;
            last = e.deadline;
            released += 1;
        }
        now += 7;
    }
    check!(released == 14 && q.is_empty(), "released {}", released);
}

/// The 32-bit GCRA (the limiter that needs no 64-bit atomics).
fn limiter() {
    let gcra = match Gcra32::try_new(10, 3) {
        Ok(g) => g,
        Err(_) => {
            check!(false, "Gcra32::try_new(10, 3) refused");
            return;
        }
    };
    let t0 = 1_000;
    for n in 0..3 {
        check!(
            gcra.try_acquire_at(1, t0).is_ok(),
            "burst cell {} refused",
            n
        );
    }
    match gcra.try_acquire_at(1, t0) {
        Err(TryAcquireError::NotReady { ready_at }) => {
            check!(ready_at == t0 + 10, "ready_at {}", ready_at);
            check!(
                gcra.try_acquire_at(1, ready_at).is_ok(),
                "refused at ready_at"
            );
        }
        other => check!(false, "a fourth cell in the burst: {:?}", other),
    }
    check!(
        gcra.try_acquire_at(4, t0 + 100).is_err(),
        "took more than the burst"
    );
}

/// The fixed round-robin balancer in a `static`.
fn balancer() {
    static LB: RoundRobin<u16, 4> = RoundRobin::new();
    check!(
        LB.add(8080).is_ok() && LB.add(8081).is_ok() && LB.add(8082).is_ok(),
        "add"
    );
    let picks = [LB.pick(), LB.pick(), LB.pick(), LB.pick()];
    check!(
        picks == [Some(8080), Some(8081), Some(8082), Some(8080)],
        "picks {:?}",
        picks
    );
    check!(LB.remove(&8081).is_ok(), "remove");
    check!(LB.len() == 2, "len {}", LB.len());
    for _ in 0..4 {
        check!(LB.pick() != Some(8081), "picked a removed member");
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    latchfree_firmware::panicked(info)
}
