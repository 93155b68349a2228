//! What the test firmwares share: a failure count, PASS/FAIL over
//! semihosting and the exit code QEMU hands back to the shell, the SysTick
//! set-up and a small deterministic random source.
#![no_std]

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_semihosting::{debug, hprintln};

/// Checks that failed so far (main thread and interrupts alike; only
/// loads and stores, so it works on Cortex-M0 too, and a lost count
/// between an interrupt and the main thread would still leave it > 0).
static FAILURES: AtomicU32 = AtomicU32::new(0);

/// Records a failed check. Use [`check!`].
pub fn fail(file: &str, line: u32, what: core::fmt::Arguments<'_>) {
    FAILURES.store(FAILURES.load(Relaxed).saturating_add(1), Relaxed);
    hprintln!("FAIL {}:{}: {}", file, line, what);
}

/// `check!(cond, "what {}", x)`: records a failure (and says where) if
/// `cond` is false; the firmware goes on, so one run reports every failure.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            $crate::fail(file!(), line!(), format_args!($($what)+));
        }
    };
}

/// How many checks failed.
pub fn failures() -> u32 {
    FAILURES.load(Relaxed)
}

/// Prints `PASS <name>` or `FAIL <name>` and ends the emulation with exit
/// code 0 or 1.
pub fn finish(name: &str) -> ! {
    let failed = failures();
    if failed == 0 {
        hprintln!("PASS {}", name);
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("FAIL {} ({} checks failed)", name, failed);
        debug::exit(debug::EXIT_FAILURE);
    }
    // Not under an emulator with semihosting: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Panics are failures: print the message, exit 1.
pub fn panicked(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("FAIL panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Starts SysTick: an interrupt every `cycles` processor clocks.
pub fn start_systick(mut syst: SYST, cycles: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(cycles - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// xorshift32: the same sequence on every board and every run.
pub struct Rng(pub u32);

impl Rng {
    /// The next value.
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }
}

/// The `never_*` firmwares' panic handler. With the `panic-never` feature
/// it calls a function nobody defines, so the firmware links only if the
/// optimiser removed every path to a panic; without it, it is a plain loop
/// (the image links, and its disassembly shows who still calls a panic).
#[macro_export]
macro_rules! panic_never_handler {
    () => {
        #[panic_handler]
        fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
            #[cfg(feature = "panic-never")]
            {
                extern "Rust" {
                    /// Undefined on purpose: a link error naming it means a
                    /// panicking branch survived on a hot path.
                    fn latchfree_hot_path_may_panic() -> !;
                }
                // SAFETY: never runs: the firmware only links when no call
                // to this handler is left.
                unsafe { latchfree_hot_path_may_panic() }
            }
            #[cfg(not(feature = "panic-never"))]
            loop {
                cortex_m::asm::udf();
            }
        }
    };
}
