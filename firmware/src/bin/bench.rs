#![no_std]
#![no_main]
use cortex_m_rt::entry;
#[entry]
fn main() -> ! { latchfree_firmware::finish("bench") }
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! { latchfree_firmware::panicked(info) }
