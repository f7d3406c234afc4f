//! SVG charts of `compare --json` lines (plotters, SVG backend only; text is
//! laid out with plotters' built-in estimate, so no system fonts are needed).
//!
//! - [`throughput_chart`]: echo transactions/s against connections, one line
//!   per system (from an `echo --conns 1,10,50,...` sweep);
//! - [`latency_chart`]: the echo latency distribution, p50 to p99.9, one line
//!   per system;
//! - [`connect_chart`]: connections/s, one bar per system and client-loop count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::measurement::{Measurement, Metrics};

/// Chart size in pixels.
const SIZE: (u32, u32) = (800, 500);

/// The file names the charts are written to inside the output folder.
pub const THROUGHPUT_FILE: &str = "echo_tx_per_conns.svg";
/// See [`THROUGHPUT_FILE`].
pub const LATENCY_FILE: &str = "echo_latency.svg";
/// See [`THROUGHPUT_FILE`].
pub const CONNECT_FILE: &str = "connect_rate.svg";

/// Parses JSON lines; blank lines are skipped. Returns the measurements and
/// one message per line that did not parse (`LINE: why`).
pub fn parse_lines(text: &str) -> (Vec<Measurement>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Measurement::from_json_line(line) {
            Ok(m) => ok.push(m),
            Err(e) => bad.push(format!("line {}: {e}", i + 1)),
        }
    }
    (ok, bad)
}

/// The colour of a system's series: mtcp red, tokio blue, monoio green,
/// smoltcp orange, others from a palette.
fn colour(system: &str, index: usize) -> RGBColor {
    match system {
        "mtcp" => RGBColor(0xd6, 0x27, 0x28),
        "tokio" => RGBColor(0x1f, 0x77, 0xb4),
        "monoio" => RGBColor(0x2c, 0xa0, 0x2c),
        "smoltcp" => RGBColor(0xff, 0x7f, 0x0e),
        _ => {
            let c = Palette99::pick(index + 2).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

/// Measurements grouped by system, in first-seen order, each sorted by conns.
fn by_system<'a>(ms: impl Iterator<Item = &'a Measurement>) -> Vec<(String, Vec<&'a Measurement>)> {
    let mut groups: Vec<(String, Vec<&Measurement>)> = Vec::new();
    for m in ms {
        match groups.iter_mut().find(|(s, _)| *s == m.system) {
            Some((_, v)) => v.push(m),
            None => groups.push((m.system.clone(), vec![m])),
        }
    }
    for (_, v) in &mut groups {
        v.sort_by_key(|m| m.conns);
    }
    groups
}

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// Writes the echo transactions/s against connections chart to `path`.
///
/// # Errors
///
/// When there are no echo measurements or the file cannot be written.
pub fn throughput_chart(ms: &[Measurement], path: &Path) -> Result<(), String> {
    let groups = by_system(
        ms.iter()
            .filter(|m| matches!(m.metrics, Metrics::Echo { .. })),
    );
    if groups.is_empty() {
        return Err("no echo measurements".into());
    }
    let tx = |m: &Measurement| match m.metrics {
        Metrics::Echo { tx_per_s, .. } => tx_per_s,
        _ => 0.0,
    };
    let max_conns = groups
        .iter()
        .flat_map(|(_, v)| v.iter().map(|m| m.conns))
        .max()
        .unwrap_or(1);
    let max_tx = groups
        .iter()
        .flat_map(|(_, v)| v.iter().map(|m| tx(m)))
        .fold(0.0, f64::max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "echo: transactions/s against connections",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (1.0f64..(max_conns as f64 * 1.3).max(2.0)).log_scale(),
            0.0f64..(max_tx * 1.15).max(1.0),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .y_desc("transactions/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (system, v)) in groups.iter().enumerate() {
        let c = colour(system, i);
        let points: Vec<(f64, f64)> = v.iter().map(|m| (m.conns as f64, tx(m))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(system.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Writes the echo latency distribution chart (p50, p90, p99, p99.9 in µs,
/// log scale) to `path`; for each system the run with 50 connections, else
/// its run with the most connections.
///
/// # Errors
///
/// When there are no echo measurements or the file cannot be written.
pub fn latency_chart(ms: &[Measurement], path: &Path) -> Result<(), String> {
    let groups = by_system(
        ms.iter()
            .filter(|m| matches!(m.metrics, Metrics::Echo { .. })),
    );
    if groups.is_empty() {
        return Err("no echo measurements".into());
    }
    let picked: Vec<(String, &Measurement)> = groups
        .iter()
        .filter_map(|(s, v)| {
            let m = v.iter().find(|m| m.conns == 50).or_else(|| v.last())?;
            Some((s.clone(), *m))
        })
        .collect();
    const LABELS: [&str; 4] = ["p50", "p90", "p99", "p99.9"];
    let values = |m: &Measurement| -> [f64; 4] {
        let l = m.latency().copied().unwrap_or_default();
        [l.p50_us, l.p90_us, l.p99_us, l.p999_us]
            .map(|v| if v.is_finite() { v.max(0.1) } else { 0.1 })
    };
    let max = picked
        .iter()
        .flat_map(|(_, m)| values(m))
        .fold(1.0, f64::max);
    let min = picked
        .iter()
        .flat_map(|(_, m)| values(m))
        .fold(f64::INFINITY, f64::min)
        .min(max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("echo: latency distribution (µs)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            -0.3f64..3.3f64,
            ((min / 2.0).max(0.05)..max * 2.0).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency, µs")
        .x_labels(4)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && (0.0..=3.0).contains(&i) {
                LABELS[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (system, m)) in picked.iter().enumerate() {
        let c = colour(system, i);
        let points: Vec<(f64, f64)> = values(m)
            .into_iter()
            .enumerate()
            .map(|(k, v)| (k as f64, v))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(format!("{system}, {} conns", m.conns))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Writes the connections/s bar chart (one bar per system and client-loop
/// count) to `path`.
///
/// # Errors
///
/// When there are no connect measurements or the file cannot be written.
pub fn connect_chart(ms: &[Measurement], path: &Path) -> Result<(), String> {
    let groups = by_system(
        ms.iter()
            .filter(|m| matches!(m.metrics, Metrics::Connect { .. })),
    );
    if groups.is_empty() {
        return Err("no connect measurements".into());
    }
    let mut bars: Vec<(String, usize, f64)> = Vec::new();
    for (i, (system, v)) in groups.iter().enumerate() {
        for m in v {
            if let Metrics::Connect { conns_per_s, .. } = m.metrics {
                let plural = if m.conns == 1 { "" } else { "s" };
                bars.push((
                    format!("{system}, {} loop{plural}", m.conns),
                    i,
                    conns_per_s,
                ));
            }
        }
    }
    let max = bars.iter().map(|b| b.2).fold(1.0, f64::max);
    let n = bars.len();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "connect: connections/s (connect, 64 B echo, close)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0.0f64..max * 1.15)
        .map_err(err)?;
    let labels: BTreeMap<usize, String> = bars
        .iter()
        .enumerate()
        .map(|(i, b)| (i, b.0.clone()))
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(&(i as usize)).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("connections/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, g, v))| {
            let x = i as f64;
            let c = colour(&groups[*g].0, *g);
            Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *v)], c.filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, _, v))| {
            Text::new(
                format!("{v:.0}"),
                (i as f64 - 0.15, *v * 1.02 + max * 0.03),
                ("sans-serif", 16),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Markdown tables of the measurements, one per scenario present, in the
/// contract's scenario order, each under a `### scenario` heading.
pub fn markdown_tables(ms: &[Measurement]) -> String {
    let mut out = String::new();
    for scenario in crate::scenario::Scenario::ALL {
        let rows: Vec<crate::report::Outcome> = ms
            .iter()
            .filter(|m| m.scenario() == scenario)
            .cloned()
            .map(crate::report::Outcome::Ran)
            .collect();
        if rows.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("### {scenario}\n\n"));
        out.push_str(&crate::report::markdown(scenario, &rows));
    }
    out
}

/// Writes every chart the measurements allow into `dir` and returns the
/// files written.
///
/// # Errors
///
/// When the folder cannot be created, nothing can be plotted, or a chart
/// cannot be written.
pub fn write_all(ms: &[Measurement], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let has_echo = ms.iter().any(|m| matches!(m.metrics, Metrics::Echo { .. }));
    let has_connect = ms
        .iter()
        .any(|m| matches!(m.metrics, Metrics::Connect { .. }));
    if has_echo {
        let p = dir.join(THROUGHPUT_FILE);
        throughput_chart(ms, &p)?;
        written.push(p);
        let p = dir.join(LATENCY_FILE);
        latency_chart(ms, &p)?;
        written.push(p);
    }
    if has_connect {
        let p = dir.join(CONNECT_FILE);
        connect_chart(ms, &p)?;
        written.push(p);
    }
    if written.is_empty() {
        return Err("nothing to plot: no echo or connect measurements".into());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::Latency;

    fn echo(system: &str, conns: usize, tx: f64) -> Measurement {
        Measurement {
            system: system.into(),
            cores: 1,
            conns,
            size: 64,
            seconds: 1.0,
            rounds: 1,
            metrics: Metrics::Echo {
                tx_per_s: tx,
                latency: Latency {
                    p50_us: 10.0,
                    p90_us: 15.0,
                    p99_us: 30.0,
                    p999_us: 90.0,
                    max_us: 100.0,
                },
            },
        }
    }

    fn connect(system: &str, rate: f64) -> Measurement {
        Measurement {
            system: system.into(),
            cores: 1,
            conns: 8,
            size: 64,
            seconds: 1.0,
            rounds: 1,
            metrics: Metrics::Connect {
                conns_per_s: rate,
                time_wait: true,
                latency: Latency::default(),
                errors: 0,
            },
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("benches-plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn parses_lines_and_reports_bad_ones() {
        let text = format!(
            "{}\n\nnot json\n{}\n",
            echo("tokio", 1, 5.0).to_json_line(),
            connect("tokio", 7.0).to_json_line()
        );
        let (ok, bad) = parse_lines(&text);
        assert_eq!(ok.len(), 2);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("line 3: not JSON"), "{bad:?}");
    }

    #[test]
    fn writes_three_svgs() {
        let ms = vec![
            echo("tokio", 1, 1000.0),
            echo("tokio", 50, 50_000.0),
            echo("mtcp", 1, 2000.0),
            echo("mtcp", 50, 90_000.0),
            connect("tokio", 20_000.0),
            connect("mtcp", 40_000.0),
        ];
        let dir = temp_dir("all");
        let written = write_all(&ms, &dir).unwrap();
        assert_eq!(written.len(), 3);
        for p in &written {
            let svg = std::fs::read_to_string(p).unwrap();
            assert!(svg.starts_with("<svg"), "{}", p.display());
            assert!(svg.contains("tokio"), "{}", p.display());
            assert!(svg.contains("mtcp"), "{}", p.display());
        }
        let tx = std::fs::read_to_string(dir.join(THROUGHPUT_FILE)).unwrap();
        assert!(tx.contains("transactions/s"));
        let lat = std::fs::read_to_string(dir.join(LATENCY_FILE)).unwrap();
        assert!(lat.contains("p99.9"), "{lat}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_system_gets_its_own_series() {
        let systems = ["mtcp", "tokio", "monoio", "smoltcp"];
        let mut ms = Vec::new();
        for (i, system) in systems.iter().enumerate() {
            ms.push(echo(system, 1, 1000.0 * (i + 1) as f64));
            ms.push(echo(system, 50, 9000.0 * (i + 1) as f64));
        }
        let dir = temp_dir("four");
        std::fs::create_dir_all(&dir).unwrap();
        throughput_chart(&ms, &dir.join(THROUGHPUT_FILE)).unwrap();
        let svg = std::fs::read_to_string(dir.join(THROUGHPUT_FILE)).unwrap();
        for system in systems {
            assert!(svg.contains(system), "{system} missing");
        }
        let colours: Vec<RGBColor> = systems
            .iter()
            .enumerate()
            .map(|(i, s)| colour(s, i))
            .collect();
        for (i, a) in colours.iter().enumerate() {
            for b in &colours[i + 1..] {
                assert_ne!((a.0, a.1, a.2), (b.0, b.1, b.2));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tables_by_scenario() {
        let md = markdown_tables(&[connect("tokio", 10.0), echo("tokio", 1, 5.0)]);
        let echo_at = md.find("### echo\n\n| system |").unwrap();
        let connect_at = md.find("### connect\n\n| system |").unwrap();
        assert!(echo_at < connect_at, "{md}");
        assert!(
            md.contains("| tokio | 1 | 1 | 5 | 10.0 | 30.0 | 90.0 |"),
            "{md}"
        );
        assert_eq!(markdown_tables(&[]), "");
    }

    #[test]
    fn only_what_the_data_allows() {
        let dir = temp_dir("connect");
        let written = write_all(&[connect("tokio", 1.0)], &dir).unwrap();
        assert_eq!(written, vec![dir.join(CONNECT_FILE)]);
        assert!(write_all(&[], &dir).is_err());
        assert!(throughput_chart(&[connect("tokio", 1.0)], &dir.join("x.svg")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
