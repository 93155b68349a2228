//! Rows, progress and the output formats of the shootout: a markdown table,
//! CSV rows and an SVG bar chart of the ratios.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::io::Write;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

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
    /// `(min, max, rounds)` when `value` is the median of several rounds.
    pub range: Option<(f64, f64, usize)>,
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
        self.push(structure, scenario, imp, metric, value, better, None);
    }

    /// Records the median of several rounds, with their min and max.
    pub fn add_rounds(
        &mut self,
        structure: &'static str,
        scenario: &str,
        imp: &str,
        metric: &'static str,
        samples: &[f64],
        better: Better,
    ) {
        assert!(!samples.is_empty(), "{imp}: no rounds for {scenario}");
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        let range = Some((s[0], s[n - 1], n));
        self.push(structure, scenario, imp, metric, median, better, range);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        structure: &'static str,
        scenario: &str,
        imp: &str,
        metric: &'static str,
        value: f64,
        better: Better,
        range: Option<(f64, f64, usize)>,
    ) {
        if self.progress {
            let spread = range.map_or_else(String::new, |(lo, hi, n)| {
                format!("  [{} .. {}, {n} rounds]", fmt_value(lo), fmt_value(hi))
            });
            eprintln!(
                "  {structure:<6} {scenario:<28} {imp:<22} {metric:<16} {value:>14.1}{spread}"
            );
        }
        self.rows.push(Row {
            structure,
            scenario: scenario.to_owned(),
            imp: imp.to_owned(),
            metric,
            value,
            better,
            range,
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

    /// CSV (RFC 4180): a field holding a comma, quote or line break is
    /// quoted, quotes doubled. `value` is the median when `rounds` is set.
    pub fn print_csv(&self) {
        println!("structure,scenario,impl,metric,value,min,max,rounds");
        for r in &self.rows {
            let (lo, hi, n) = r.range.map_or_else(
                || (String::new(), String::new(), String::new()),
                |(lo, hi, n)| (format!("{lo:.3}"), format!("{hi:.3}"), n.to_string()),
            );
            println!(
                "{},{},{},{},{:.3},{lo},{hi},{n}",
                csv_field(r.structure),
                csv_field(&r.scenario),
                csv_field(&r.imp),
                csv_field(r.metric),
                r.value
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
        println!("## latchfree shootout ({})\n", machine());
        println!(
            "ratio = latchfree vs that implementation; above 1.00 means latchfree is better.\n"
        );
        println!("value: the median where a range (min–max over the rounds) is given.\n");
        println!("| structure | scenario | impl | metric | value | range | ratio |");
        println!("|---|---|---|---|---:|---:|---:|");
        for r in &self.rows {
            let ratio = self
                .ratio(r)
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x"));
            let range = r.range.map_or_else(
                || "-".to_owned(),
                |(lo, hi, n)| format!("{}–{} ({n})", fmt_value(lo), fmt_value(hi)),
            );
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                md_cell(r.structure),
                md_cell(&r.scenario),
                md_cell(&r.imp),
                r.metric,
                fmt_value(r.value),
                range,
                ratio
            );
        }
    }

    /// Draws one horizontal bar per (scenario, metric, peer): the ratio
    /// latchfree vs that peer on a log scale, with the 1.0x line marked.
    /// Green bars: latchfree better; red: the peer better.
    pub fn write_svg(&self, path: &str) -> Result<(), Box<dyn std::error::Error>> {
        let bars: Vec<(String, f64)> = self
            .rows
            .iter()
            .filter_map(|r| {
                let ratio = self.ratio(r)?;
                let label = format!("{} {} {} vs {}", r.structure, r.scenario, r.metric, r.imp);
                Some((label, ratio))
            })
            .collect();
        if bars.is_empty() {
            return Err("no ratios to draw (no peer rows)".into());
        }
        let n = bars.len() as i32;
        let lo = bars.iter().map(|b| b.1).fold(1.0f64, f64::min) / 1.5;
        let hi = bars.iter().map(|b| b.1).fold(1.0f64, f64::max) * 1.5;
        // At least 0.25x..4x, so the 1.0x line never sits at an edge.
        let (lo, hi) = (lo.clamp(1e-3, 0.25), hi.clamp(4.0, 1e3));
        let label_px = bars.iter().map(|b| b.0.len()).max().unwrap_or(10) as u32 * 7 + 20;
        let height = 120 + 22 * n as u32;
        let root = SVGBackend::new(path, (label_px + 760, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "latchfree vs peers ({}): ratio, >1 = latchfree better",
                    machine()
                ),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_px)
            .build_cartesian_2d((lo..hi).log_scale(), (0..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            // Row `i` of the table is drawn at `n - 1 - i`, top to bottom.
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if (0..n).contains(i) => {
                    bars[(n - 1 - *i) as usize].0.clone()
                }
                _ => String::new(),
            })
            .x_labels(12)
            .x_desc("ratio (log scale)")
            .x_label_formatter(&|x| format!("{x}x"))
            .draw()?;
        let row = |i: usize| n - 1 - i as i32;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio))| {
            let color = if *ratio >= 1.0 {
                GREEN.mix(0.7)
            } else {
                RED.mix(0.7)
            };
            let y0 = SegmentValue::Exact(row(i));
            let y1 = SegmentValue::Exact(row(i) + 1);
            let mut bar = Rectangle::new([(lo, y0), (ratio.clamp(lo, hi), y1)], color.filled());
            bar.set_margin(3, 3, 0, 0);
            bar
        }))?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio))| {
            let at = (ratio.clamp(lo, hi), SegmentValue::CenterOf(row(i)));
            Text::new(format!(" {ratio:.2}x"), at, ("sans-serif", 11))
        }))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(2),
        )))?;
        root.present()?;
        Ok(())
    }
}

/// "N cores, CPU model" of this machine (the model from /proc/cpuinfo
/// where there is one).
pub fn machine() -> String {
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
    format!("{cores} cores, {cpu}")
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A markdown table cell: a `|` would end the cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
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
