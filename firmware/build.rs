//! Picks the board's memory map by target: thumbv6m is the micro:bit
//! (Cortex-M0), thumbv7m the LM3S6965EVB (M3), thumbv7em the MPS2 AN386
//! (M4F). cortex-m-rt's `link.x` includes the `memory.x` written here.

use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let board = if target.starts_with("thumbv6m") {
        "microbit"
    } else if target.starts_with("thumbv7m") {
        "lm3s6965"
    } else if target.starts_with("thumbv7em") {
        "an386"
    } else {
        panic!(
            "latchfree-firmware: no board for target {target:?} (thumbv6m, thumbv7m, thumbv7em)"
        );
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let map = fs::read(format!("memory/{board}.x")).unwrap();
    fs::write(out.join("memory.x"), map).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory/{board}.x");
    println!("cargo:rerun-if-changed=build.rs");
}
