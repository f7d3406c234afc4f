//! What a comparison prints: JSON lines or a markdown table.

use std::fmt::Write as _;

use crate::measurement::{Measurement, Metrics};
use crate::scenario::Scenario;

/// What happened to one system in one configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran; the median of its rounds.
    Ran(Measurement),
    /// It cannot run here; the reason from [`crate::System::available`].
    Skipped {
        /// The system's name.
        system: String,
        /// Why it cannot run.
        reason: String,
    },
    /// It was available but a run failed.
    Failed {
        /// The system's name.
        system: String,
        /// The error of the failed run.
        error: String,
    },
}

impl Outcome {
    /// The system's name.
    pub fn system(&self) -> &str {
        match self {
            Outcome::Ran(m) => &m.system,
            Outcome::Skipped { system, .. } | Outcome::Failed { system, .. } => system,
        }
    }

    /// One line for a system that did not run (for stderr), `None` if it ran.
    pub fn note(&self) -> Option<String> {
        match self {
            Outcome::Ran(_) => None,
            Outcome::Skipped { system, reason } => Some(format!("{system}: skipped: {reason}")),
            Outcome::Failed { system, error } => Some(format!("{system}: failed: {error}")),
        }
    }
}

/// Renders the outcomes of one scenario as a markdown table; systems that
/// did not run are listed under it, one bullet each.
pub fn markdown(scenario: Scenario, outcomes: &[Outcome]) -> String {
    let (header, align): (&[&str], &str) = match scenario {
        Scenario::Echo => (
            &[
                "system",
                "cores",
                "conns",
                "tx/s",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
            ],
            "|---|--:|--:|--:|--:|--:|--:|",
        ),
        Scenario::Connect => (
            &[
                "system",
                "cores",
                "client loops",
                "conns/s",
                "TIME-WAIT",
                "p50 µs",
                "p99 µs",
                "errors",
            ],
            "|---|--:|--:|--:|:-:|--:|--:|--:|",
        ),
        Scenario::Bulk => (
            &["system", "cores", "write bytes", "Gbit/s"],
            "|---|--:|--:|--:|",
        ),
        Scenario::Udp => (
            &[
                "system",
                "cores",
                "conns",
                "tx/s",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
                "lost",
            ],
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ),
        Scenario::Idle => (
            &[
                "system",
                "cores",
                "conns",
                "requested",
                "bytes/conn",
                "kernel bytes/conn/side",
            ],
            "|---|--:|--:|--:|--:|--:|",
        ),
    };
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "{align}");
    for outcome in outcomes {
        let Outcome::Ran(m) = outcome else { continue };
        let cells: Vec<String> = match &m.metrics {
            Metrics::Echo { tx_per_s, latency } => vec![
                m.system.clone(),
                m.cores.to_string(),
                m.conns.to_string(),
                format!("{tx_per_s:.0}"),
                format!("{:.1}", latency.p50_us),
                format!("{:.1}", latency.p99_us),
                format!("{:.1}", latency.p999_us),
            ],
            Metrics::Connect {
                conns_per_s,
                time_wait,
                latency,
                errors,
            } => vec![
                m.system.clone(),
                m.cores.to_string(),
                m.conns.to_string(),
                format!("{conns_per_s:.0}"),
                if *time_wait { "yes" } else { "no" }.to_string(),
                format!("{:.1}", latency.p50_us),
                format!("{:.1}", latency.p99_us),
                errors.to_string(),
            ],
            Metrics::Udp {
                tx_per_s,
                latency,
                lost,
            } => vec![
                m.system.clone(),
                m.cores.to_string(),
                m.conns.to_string(),
                format!("{tx_per_s:.0}"),
                format!("{:.1}", latency.p50_us),
                format!("{:.1}", latency.p99_us),
                format!("{:.1}", latency.p999_us),
                lost.to_string(),
            ],
            Metrics::Bulk { gbit_per_s } => vec![
                m.system.clone(),
                m.cores.to_string(),
                m.size.to_string(),
                format!("{gbit_per_s:.2}"),
            ],
            Metrics::Idle {
                requested,
                bytes_per_conn,
                kernel_bytes_per_conn,
            } => vec![
                m.system.clone(),
                m.cores.to_string(),
                m.conns.to_string(),
                requested.to_string(),
                format!("{bytes_per_conn:.0}"),
                kernel_bytes_per_conn.map_or_else(|| "-".to_string(), |k| format!("{k:.0}")),
            ],
        };
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let notes: Vec<String> = outcomes.iter().filter_map(Outcome::note).collect();
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::Latency;

    fn echo(system: &str, conns: usize, tx: f64) -> Outcome {
        Outcome::Ran(Measurement {
            system: system.into(),
            cores: 1,
            conns,
            size: 64,
            seconds: 3.0,
            rounds: 1,
            metrics: Metrics::Echo {
                tx_per_s: tx,
                latency: Latency {
                    p50_us: 12.34,
                    p90_us: 20.0,
                    p99_us: 45.67,
                    p999_us: 100.0,
                    max_us: 200.0,
                },
            },
        })
    }

    #[test]
    fn echo_table() {
        let table = markdown(
            Scenario::Echo,
            &[
                echo("tokio", 50, 61234.4),
                Outcome::Skipped {
                    system: "mtcp".into(),
                    reason: "mtcp runtime not integrated yet".into(),
                },
            ],
        );
        assert_eq!(
            table,
            "| system | cores | conns | tx/s | p50 µs | p99 µs | p99.9 µs |\n\
             |---|--:|--:|--:|--:|--:|--:|\n\
             | tokio | 1 | 50 | 61234 | 12.3 | 45.7 | 100.0 |\n\
             \n\
             - mtcp: skipped: mtcp runtime not integrated yet\n"
        );
    }

    #[test]
    fn every_row_has_as_many_cells_as_the_header() {
        let outcomes = [
            Outcome::Ran(Measurement {
                system: "tokio".into(),
                cores: 1,
                conns: 8,
                size: 64,
                seconds: 1.0,
                rounds: 1,
                metrics: Metrics::Connect {
                    conns_per_s: 10.0,
                    time_wait: true,
                    latency: Latency::default(),
                    errors: 0,
                },
            }),
            Outcome::Ran(Measurement {
                system: "tokio".into(),
                cores: 1,
                conns: 1,
                size: 65536,
                seconds: 1.0,
                rounds: 1,
                metrics: Metrics::Bulk { gbit_per_s: 1.5 },
            }),
            Outcome::Ran(Measurement {
                system: "tokio".into(),
                cores: 1,
                conns: 90,
                size: 64,
                seconds: 0.0,
                rounds: 1,
                metrics: Metrics::Idle {
                    requested: 100,
                    bytes_per_conn: 400.0,
                    kernel_bytes_per_conn: Some(2500.0),
                },
            }),
            Outcome::Ran(Measurement {
                system: "mtcp".into(),
                cores: 1,
                conns: 50,
                size: 64,
                seconds: 1.0,
                rounds: 1,
                metrics: Metrics::Udp {
                    tx_per_s: 1000.0,
                    latency: Latency::default(),
                    lost: 2,
                },
            }),
        ];
        for (scenario, outcome) in [
            Scenario::Connect,
            Scenario::Bulk,
            Scenario::Idle,
            Scenario::Udp,
        ]
        .into_iter()
        .zip(outcomes)
        {
            let table = markdown(scenario, std::slice::from_ref(&outcome));
            let lines: Vec<&str> = table.lines().collect();
            assert_eq!(lines.len(), 3, "{table}");
            let cells = |l: &str| l.matches('|').count();
            assert_eq!(cells(lines[0]), cells(lines[1]), "{table}");
            assert_eq!(cells(lines[0]), cells(lines[2]), "{table}");
        }
    }

    #[test]
    fn failures_are_listed() {
        let table = markdown(
            Scenario::Echo,
            &[Outcome::Failed {
                system: "tokio".into(),
                error: "boom".into(),
            }],
        );
        assert!(table.ends_with("\n- tokio: failed: boom\n"), "{table}");
    }
}
