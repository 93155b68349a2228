//! Rows, progress and the two output formats of the shootout.

use std::io::Write;

/// Whether a larger value of a metric is better.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Better {
    /// Throughput-like metrics (`events_per_sec`).
    Higher,
    /// Latency-like metrics (`rtt_ns_p50`, `ns_per_op`).
    Lower,
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct Row {
    pub structure: &'static str,
    pub scenario: String,
    pub imp: String,
    pub metric: &'static str,
    pub value: f64,
    pub better: Better,
}

/// Collects rows and prints progress to stderr while it runs.
pub struct Report {
    rows: Vec<Row>,
    progress: bool,
}

impl Report {
    pub fn new(progress: bool) -> Self {
        Self {
            rows: Vec::new(),
            progress,
        }
    }

    /// Records one measurement. The implementation named `latchfree` is
    /// the one every other row of its scenario and metric is compared with.
    pub fn add(
        &mut self,
        structure: &'static str,
        scenario: &str,
        imp: &str,
        metric: &'static str,
        value: f64,
        better: Better,
    ) {
        if self.progress {
            eprintln!("  {structure:<6} {scenario:<28} {imp:<22} {metric:<16} {value:>14.1}");
        }
        self.rows.push(Row {
            structure,
            scenario: scenario.to_owned(),
            imp: imp.to_owned(),
            metric,
            value,
            better,
        });
    }

    /// Prints a progress note to stderr (not part of the report).
    pub fn note(&self, msg: &str) {
        if self.progress {
            eprintln!("{msg}");
            let _ = std::io::stderr().flush();
        }
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn print_csv(&self) {
        println!("structure,scenario,impl,metric,value");
        for r in &self.rows {
            println!(
                "{},{},{},{},{:.3}",
                r.structure, r.scenario, r.imp, r.metric, r.value
            );
        }
    }

    /// The latchfree-vs-peer ratio for a row, oriented so that above 1.0
    /// means latchfree is better. `None` for latchfree's own rows.
    pub fn ratio(&self, row: &Row) -> Option<f64> {
        if row.imp == "latchfree" {
            return None;
        }
        let ours = self.rows.iter().find(|o| {
            o.imp == "latchfree"
                && o.structure == row.structure
                && o.scenario == row.scenario
                && o.metric == row.metric
        })?;
        if row.value <= 0.0 || ours.value <= 0.0 {
            return None;
        }
        Some(match row.better {
            Better::Higher => ours.value / row.value,
            Better::Lower => row.value / ours.value,
        })
    }

    pub fn print_markdown(&self) {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("## latchfree shootout ({cores} cores, {cpu})\n");
        println!(
            "ratio = latchfree vs that implementation; above 1.00 means latchfree is better.\n"
        );
        println!("| structure | scenario | impl | metric | value | ratio |");
        println!("|---|---|---|---|---:|---:|");
        for r in &self.rows {
            let ratio = self
                .ratio(r)
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x"));
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.structure,
                r.scenario,
                r.imp,
                r.metric,
                fmt_value(r.value),
                ratio
            );
        }
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}
