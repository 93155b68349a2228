//! Side-by-side comparison of latchfree against its peers and a physical
//! floor, measured in one run on this machine.
//!
//! ```text
//! cargo run --release --example shootout -- [ring|map|wheel|queue|pool|buffer|batch|all] [--csv]
//! ```
//!
//! Every scenario checks that each implementation delivered every item
//! before its time is recorded. The table reports, for each peer, the ratio
//! latchfree / peer for throughput metrics (higher is better for latchfree)
//! and peer / latchfree for latency metrics, so a ratio above 1.0 always
//! means latchfree won.

mod batch;
mod buffer;
mod map;
mod pool;
mod queue;
mod report;
mod ring;
mod wheel;

use report::Report;

/// A section's name and its runner.
type Section = (&'static str, fn(&mut Report));

const SECTIONS: &[Section] = &[
    ("ring", ring::run),
    ("map", map::run),
    ("wheel", wheel::run),
    ("queue", queue::run),
    ("pool", pool::run),
    ("buffer", buffer::run),
    ("batch", batch::run),
];

/// Counts heap bytes per thread for the map section's bytes-per-entry rows
/// (a thread-local add per allocation; no shared counter).
#[global_allocator]
static ALLOC: map::CountingAlloc = map::CountingAlloc;

fn main() {
    let mut csv = false;
    let mut wanted: Vec<String> = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--csv" => csv = true,
            "-h" | "--help" => {
                let names: Vec<&str> = SECTIONS.iter().map(|s| s.0).collect();
                println!("usage: shootout [{}|all] [--csv]", names.join("|"));
                return;
            }
            other => wanted.push(other.to_owned()),
        }
    }
    if wanted.is_empty() || wanted.iter().any(|w| w == "all") {
        wanted = SECTIONS.iter().map(|s| s.0.to_owned()).collect();
    }
    for w in &wanted {
        if !SECTIONS.iter().any(|s| s.0 == w) {
            eprintln!("shootout: unknown section '{w}'");
            std::process::exit(2);
        }
    }

    let mut report = Report::new(!csv);
    for (name, run) in SECTIONS {
        if wanted.iter().any(|w| w == name) {
            run(&mut report);
        }
    }
    if csv {
        report.print_csv();
    } else {
        report.print_markdown();
    }
}
