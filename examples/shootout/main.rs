//! Side-by-side comparison of latchfree against its peers and a physical
//! floor, measured in one run on this machine.
//!
//! ```text
//! cargo run --release --example shootout -- [ring|map|wheel|queue|pool|buffer|batch|limiter|breaker|balance|async|all] [--csv] [--svg FILE] [--pin] [--rounds N] [--only SCENARIOS]
//! ```
//!
//! `--pin` pins every thread of the ring, map and async sections to a core
//! (round-robin over the cores, the same placement for every
//! implementation);
//! `--rounds N` sets its (and the pool, map and async sections') number of
//! interleaved rounds (default 5; the median and min–max over them are
//! reported); `--only 1p1c,pingpong` runs only the ring and async scenarios
//! whose names start with those prefixes.
//!
//! Progress (the section running, then each measurement as it lands) goes
//! to stderr; the report (a markdown table headed with the machine's core
//! count and CPU model, or CSV rows) to stdout. `--svg FILE` also draws the
//! ratios as a bar chart.
//!
//! Every scenario checks that each implementation delivered every item
//! before its time is recorded. The table reports, for each peer, the ratio
//! latchfree / peer for throughput metrics (higher is better for latchfree)
//! and peer / latchfree for latency metrics, so a ratio above 1.0 always
//! means latchfree won.

mod async_bare;
mod async_rt;
mod balance;
mod batch;
mod breaker;
mod buffer;
mod guard_support;
mod limiter;
mod map;
#[cfg(target_pointer_width = "64")]
mod map_bustle;
mod placement;
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
    ("limiter", limiter::run),
    ("breaker", breaker::run),
    ("balance", balance::run),
    ("async", async_rt::run),
];

/// Counts heap bytes per thread for the map section's bytes-per-entry rows
/// (a thread-local add per allocation; no shared counter).
#[global_allocator]
static ALLOC: map::CountingAlloc = map::CountingAlloc;

fn main() {
    let mut csv = false;
    let mut svg: Option<String> = None;
    let mut wanted: Vec<String> = Vec::new();
    let mut ring_opts = ring::Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--csv" => csv = true,
            "--svg" => match args.next() {
                Some(file) => svg = Some(file),
                None => {
                    eprintln!("shootout: --svg needs a file name");
                    std::process::exit(2);
                }
            },
            "--pin" => ring_opts.pin = true,
            "--only" => match args.next() {
                Some(list) => ring_opts.only.extend(list.split(',').map(str::to_owned)),
                None => {
                    eprintln!("shootout: --only needs scenario names (comma-separated prefixes)");
                    std::process::exit(2);
                }
            },
            "--rounds" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n >= 1 => ring_opts.rounds = n,
                _ => {
                    eprintln!("shootout: --rounds needs a count of at least 1");
                    std::process::exit(2);
                }
            },
            "-h" | "--help" => {
                let names: Vec<&str> = SECTIONS.iter().map(|s| s.0).collect();
                println!(
                    "usage: shootout [{}|all] [--csv] [--svg FILE] [--pin] [--rounds N] [--only SCENARIOS]",
                    names.join("|")
                );
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

    // Listed now, from the unpinned main thread: a pinned thread would see
    // only its own core.
    let _ = placement::cores();
    pool::configure(ring_opts.rounds);
    async_rt::configure(ring_opts.rounds, &ring_opts.only, ring_opts.pin);
    map::configure(ring_opts.rounds, ring_opts.pin);
    ring::configure(ring_opts);
    let mut report = Report::new(true);
    let start = std::time::Instant::now();
    let chosen: Vec<&Section> = SECTIONS
        .iter()
        .filter(|s| wanted.iter().any(|w| w == s.0))
        .collect();
    eprintln!("shootout on {}", report::machine());
    for (i, (name, run)) in chosen.iter().enumerate() {
        eprintln!(
            "== [{}/{}] {name} (at {:.0} s)",
            i + 1,
            chosen.len(),
            start.elapsed().as_secs_f64()
        );
        run(&mut report);
    }
    eprintln!("== done in {:.0} s", start.elapsed().as_secs_f64());
    if let Some(path) = &svg {
        match report.write_svg(path) {
            Ok(()) => eprintln!("wrote {path}"),
            Err(e) => {
                eprintln!("shootout: cannot write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
    if csv {
        report.print_csv();
    } else {
        report.print_markdown();
    }
}
