//! The result of one run of one system, its JSON line and the median of rounds.
//!
//! The JSON line keeps the field names of the contract in `DESIGN.md`
//! exactly, in that order, numbers as JSON numbers; extra fields follow:
//!
//! ```json
//! {"scenario":"echo","system":"tokio","cores":1,"conns":50,"tx_per_s":61234.5,"p50_us":790.5,"p99_us":1200.1,...}
//! ```

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::scenario::Scenario;

/// Latency percentiles in microseconds, read from an hdrhistogram.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value recorded.
    pub max_us: f64,
}

impl Latency {
    /// Reads the percentiles of a histogram of nanoseconds.
    pub fn from_nanos(hist: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        Latency {
            p50_us: us(hist.value_at_quantile(0.50)),
            p90_us: us(hist.value_at_quantile(0.90)),
            p99_us: us(hist.value_at_quantile(0.99)),
            p999_us: us(hist.value_at_quantile(0.999)),
            max_us: us(hist.max()),
        }
    }

    fn median(all: &[Latency]) -> Latency {
        Latency {
            p50_us: median(all.iter().map(|l| l.p50_us)),
            p90_us: median(all.iter().map(|l| l.p90_us)),
            p99_us: median(all.iter().map(|l| l.p99_us)),
            p999_us: median(all.iter().map(|l| l.p999_us)),
            max_us: median(all.iter().map(|l| l.max_us)),
        }
    }
}

/// A new histogram for latencies in nanoseconds (1 ns to 100 s, 3 digits).
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// What a scenario measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Metrics {
    /// `echo`.
    Echo {
        /// Transactions (request + response) per second.
        tx_per_s: f64,
        /// Per-transaction latency.
        latency: Latency,
    },
    /// `connect`.
    Connect {
        /// Completed connect/request/response/close cycles per second.
        conns_per_s: f64,
        /// Whether closed connections went through TIME-WAIT.
        time_wait: bool,
        /// Latency of a whole cycle, connect to close.
        latency: Latency,
        /// Failed cycles (connect refused, reset, ...).
        errors: u64,
    },
    /// `bulk`.
    Bulk {
        /// Payload throughput, gigabits (10^9 bits) per second.
        gbit_per_s: f64,
    },
    /// `udp`.
    Udp {
        /// Transactions (datagram + echo) per second.
        tx_per_s: f64,
        /// Per-transaction latency (answered datagrams only).
        latency: Latency,
        /// Requests of the window that got no echo in time.
        lost: u64,
    },
    /// `idle`.
    Idle {
        /// Connections asked for (the established count is
        /// [`Measurement::conns`]).
        requested: usize,
        /// Server memory per established connection, in bytes.
        bytes_per_conn: f64,
        /// Kernel memory per connection and side, where the system keeps
        /// socket state in the kernel and it could be measured.
        kernel_bytes_per_conn: Option<f64>,
    },
}

/// The result of one system in one scenario (one run, or the median of rounds).
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The system's name (`mtcp`, `tokio`).
    pub system: String,
    /// Cores per side.
    pub cores: usize,
    /// Connections (established connections for `idle`).
    pub conns: usize,
    /// Request/response or write size in bytes.
    pub size: usize,
    /// The measured time in seconds, warm-up excluded.
    pub seconds: f64,
    /// How many rounds this is the median of.
    pub rounds: usize,
    /// The scenario's numbers.
    pub metrics: Metrics,
}

impl Measurement {
    /// The scenario these numbers belong to.
    pub fn scenario(&self) -> Scenario {
        match self.metrics {
            Metrics::Echo { .. } => Scenario::Echo,
            Metrics::Connect { .. } => Scenario::Connect,
            Metrics::Bulk { .. } => Scenario::Bulk,
            Metrics::Idle { .. } => Scenario::Idle,
            Metrics::Udp { .. } => Scenario::Udp,
        }
    }

    /// The latency percentiles, for the scenarios that have them.
    pub fn latency(&self) -> Option<&Latency> {
        match &self.metrics {
            Metrics::Echo { latency, .. }
            | Metrics::Connect { latency, .. }
            | Metrics::Udp { latency, .. } => Some(latency),
            _ => None,
        }
    }

    /// The one JSON line of the contract (no trailing newline).
    pub fn to_json_line(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        push_str_field(&mut out, "scenario", self.scenario().name());
        push_str_field(&mut out, "system", &self.system);
        push_num_field(&mut out, "cores", self.cores as f64);
        push_num_field(&mut out, "conns", self.conns as f64);
        match &self.metrics {
            Metrics::Echo { tx_per_s, latency } => {
                push_num_field(&mut out, "tx_per_s", *tx_per_s);
                push_latency(&mut out, latency);
            }
            Metrics::Connect {
                conns_per_s,
                time_wait,
                latency,
                errors,
            } => {
                push_num_field(&mut out, "conns_per_s", *conns_per_s);
                push_raw_field(
                    &mut out,
                    "time_wait",
                    if *time_wait { "true" } else { "false" },
                );
                push_latency(&mut out, latency);
                push_num_field(&mut out, "errors", *errors as f64);
            }
            Metrics::Udp {
                tx_per_s,
                latency,
                lost,
            } => {
                push_num_field(&mut out, "tx_per_s", *tx_per_s);
                push_latency(&mut out, latency);
                push_num_field(&mut out, "lost", *lost as f64);
            }
            Metrics::Bulk { gbit_per_s } => push_num_field(&mut out, "gbit_per_s", *gbit_per_s),
            Metrics::Idle {
                requested,
                bytes_per_conn,
                kernel_bytes_per_conn,
            } => {
                push_num_field(&mut out, "bytes_per_conn", *bytes_per_conn);
                push_num_field(&mut out, "requested", *requested as f64);
                if let Some(k) = kernel_bytes_per_conn {
                    push_num_field(&mut out, "kernel_bytes_per_conn", *k);
                }
            }
        }
        push_num_field(&mut out, "size", self.size as f64);
        push_num_field(&mut out, "seconds", self.seconds);
        push_num_field(&mut out, "rounds", self.rounds as f64);
        out.push('}');
        out
    }

    /// Parses a line written by [`Measurement::to_json_line`] (extra fields
    /// are ignored; the contract's fields are required).
    ///
    /// # Errors
    ///
    /// A message naming the missing or mistyped field.
    pub fn from_json_line(line: &str) -> Result<Measurement, String> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| "not a JSON object".to_string())?;
        let num = |k: &str| -> Result<f64, String> {
            obj.get(k)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| format!("field `{k}` missing or not a number"))
        };
        let num_or = |k: &str, d: f64| obj.get(k).and_then(serde_json::Value::as_f64).unwrap_or(d);
        let count = |k: &str| -> Result<usize, String> {
            obj.get(k)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("field `{k}` missing or not a count"))
        };
        let text = |k: &str| -> Result<&str, String> {
            obj.get(k)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("field `{k}` missing or not a string"))
        };
        let scenario_name = text("scenario")?;
        let scenario = Scenario::from_name(scenario_name)
            .ok_or_else(|| format!("unknown scenario `{scenario_name}`"))?;
        let latency = || -> Result<Latency, String> {
            Ok(Latency {
                p50_us: num("p50_us")?,
                p90_us: num_or("p90_us", f64::NAN),
                p99_us: num("p99_us")?,
                p999_us: num_or("p999_us", f64::NAN),
                max_us: num_or("max_us", f64::NAN),
            })
        };
        let metrics = match scenario {
            Scenario::Echo => Metrics::Echo {
                tx_per_s: num("tx_per_s")?,
                latency: latency()?,
            },
            Scenario::Connect => Metrics::Connect {
                conns_per_s: num("conns_per_s")?,
                time_wait: obj
                    .get("time_wait")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
                latency: latency()?,
                errors: num_or("errors", 0.0) as u64,
            },
            Scenario::Bulk => Metrics::Bulk {
                gbit_per_s: num("gbit_per_s")?,
            },
            Scenario::Udp => Metrics::Udp {
                tx_per_s: num("tx_per_s")?,
                latency: latency()?,
                lost: obj
                    .get("lost")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| "field `lost` missing or not a count".to_string())?,
            },
            Scenario::Idle => Metrics::Idle {
                requested: obj
                    .get("requested")
                    .and_then(serde_json::Value::as_u64)
                    .map_or(Ok(0), usize::try_from)
                    .map_err(|_| "field `requested` too large".to_string())?,
                bytes_per_conn: num("bytes_per_conn")?,
                kernel_bytes_per_conn: obj
                    .get("kernel_bytes_per_conn")
                    .and_then(serde_json::Value::as_f64),
            },
        };
        Ok(Measurement {
            system: text("system")?.to_string(),
            cores: count("cores")?,
            conns: count("conns")?,
            size: obj
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0) as usize,
            seconds: num_or("seconds", 0.0),
            rounds: obj
                .get("rounds")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(1) as usize,
            metrics,
        })
    }

    /// The field-by-field median of several runs of the same system and
    /// scenario; `None` for an empty slice or runs that do not match.
    /// `time_wait` is true only when every run honoured TIME-WAIT.
    pub fn median(runs: &[Measurement]) -> Option<Measurement> {
        let first = runs.first()?;
        if runs
            .iter()
            .any(|r| r.system != first.system || r.scenario() != first.scenario())
        {
            return None;
        }
        let med = |f: &dyn Fn(&Measurement) -> f64| median(runs.iter().map(f));
        let metrics = match &first.metrics {
            Metrics::Echo { .. } => {
                let mut tx = Vec::new();
                let mut lat = Vec::new();
                for r in runs {
                    if let Metrics::Echo { tx_per_s, latency } = &r.metrics {
                        tx.push(*tx_per_s);
                        lat.push(*latency);
                    }
                }
                Metrics::Echo {
                    tx_per_s: median(tx.into_iter()),
                    latency: Latency::median(&lat),
                }
            }
            Metrics::Connect { .. } => {
                let (mut cps, mut lat, mut errs) = (Vec::new(), Vec::new(), Vec::new());
                let mut all_tw = true;
                for r in runs {
                    if let Metrics::Connect {
                        conns_per_s,
                        time_wait,
                        latency,
                        errors,
                    } = &r.metrics
                    {
                        cps.push(*conns_per_s);
                        lat.push(*latency);
                        errs.push(*errors as f64);
                        all_tw &= *time_wait;
                    }
                }
                Metrics::Connect {
                    conns_per_s: median(cps.into_iter()),
                    time_wait: all_tw,
                    latency: Latency::median(&lat),
                    errors: median(errs.into_iter()) as u64,
                }
            }
            Metrics::Udp { .. } => {
                let (mut tx, mut lat, mut lost) = (Vec::new(), Vec::new(), Vec::new());
                for r in runs {
                    if let Metrics::Udp {
                        tx_per_s,
                        latency,
                        lost: l,
                    } = &r.metrics
                    {
                        tx.push(*tx_per_s);
                        lat.push(*latency);
                        lost.push(*l as f64);
                    }
                }
                Metrics::Udp {
                    tx_per_s: median(tx.into_iter()),
                    latency: Latency::median(&lat),
                    lost: median(lost.into_iter()) as u64,
                }
            }
            Metrics::Bulk { .. } => Metrics::Bulk {
                gbit_per_s: med(&|r| match r.metrics {
                    Metrics::Bulk { gbit_per_s } => gbit_per_s,
                    _ => f64::NAN,
                }),
            },
            Metrics::Idle { requested, .. } => {
                let kernel: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| match r.metrics {
                        Metrics::Idle {
                            kernel_bytes_per_conn,
                            ..
                        } => kernel_bytes_per_conn,
                        _ => None,
                    })
                    .collect();
                Metrics::Idle {
                    requested: *requested,
                    bytes_per_conn: med(&|r| match r.metrics {
                        Metrics::Idle { bytes_per_conn, .. } => bytes_per_conn,
                        _ => f64::NAN,
                    }),
                    kernel_bytes_per_conn: (kernel.len() == runs.len())
                        .then(|| median(kernel.into_iter())),
                }
            }
        };
        Some(Measurement {
            system: first.system.clone(),
            cores: first.cores,
            conns: med(&|r| r.conns as f64) as usize,
            size: first.size,
            seconds: med(&|r| r.seconds),
            rounds: runs.len(),
            metrics,
        })
    }
}

/// The median of some numbers (the mean of the middle two for an even count);
/// NaN for none.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Formats a number for JSON: integers without a fraction, others with at
/// most three decimals; NaN and infinities (never produced by a finished
/// run) become `null`, as JSON has no spelling for them.
pub fn json_number(x: f64) -> String {
    if !x.is_finite() {
        return "null".to_string();
    }
    let rounded = (x * 1000.0).round() / 1000.0;
    if rounded == rounded.trunc() && rounded.abs() < 1e15 {
        return format!("{}", rounded as i64);
    }
    let s = format!("{rounded:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn push_key(out: &mut String, key: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    let _ = write!(out, "\"{key}\":");
}

fn push_num_field(out: &mut String, key: &str, value: f64) {
    push_key(out, key);
    out.push_str(&json_number(value));
}

fn push_raw_field(out: &mut String, key: &str, raw: &str) {
    push_key(out, key);
    out.push_str(raw);
}

fn push_str_field(out: &mut String, key: &str, value: &str) {
    push_key(out, key);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_latency(out: &mut String, l: &Latency) {
    push_num_field(out, "p50_us", l.p50_us);
    push_num_field(out, "p99_us", l.p99_us);
    push_num_field(out, "p90_us", l.p90_us);
    push_num_field(out, "p999_us", l.p999_us);
    push_num_field(out, "max_us", l.max_us);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metrics: Metrics) -> Measurement {
        Measurement {
            system: "tokio".into(),
            cores: 1,
            conns: 50,
            size: 64,
            seconds: 5.0,
            rounds: 1,
            metrics,
        }
    }

    fn lat(p50: f64, p99: f64) -> Latency {
        Latency {
            p50_us: p50,
            p90_us: p50 + 1.0,
            p99_us: p99,
            p999_us: p99 + 1.0,
            max_us: p99 + 2.0,
        }
    }

    #[test]
    fn echo_line_starts_with_the_contract_fields_in_order() {
        let m = sample(Metrics::Echo {
            tx_per_s: 61234.5,
            latency: lat(790.5, 1200.0),
        });
        let line = m.to_json_line();
        assert!(
            line.starts_with(
                r#"{"scenario":"echo","system":"tokio","cores":1,"conns":50,"tx_per_s":61234.5,"p50_us":790.5,"p99_us":1200,"#
            ),
            "{line}"
        );
        assert!(
            line.ends_with(r#""size":64,"seconds":5,"rounds":1}"#),
            "{line}"
        );
    }

    #[test]
    fn connect_bulk_idle_lines() {
        let c = sample(Metrics::Connect {
            conns_per_s: 1000.25,
            time_wait: true,
            latency: lat(10.0, 20.0),
            errors: 0,
        })
        .to_json_line();
        assert!(
            c.starts_with(
                r#"{"scenario":"connect","system":"tokio","cores":1,"conns":50,"conns_per_s":1000.25,"time_wait":true,"p50_us":10,"p99_us":20,"#
            ),
            "{c}"
        );
        let b = sample(Metrics::Bulk {
            gbit_per_s: 12.3456,
        })
        .to_json_line();
        assert!(b.contains(r#""gbit_per_s":12.346,"#), "{b}");
        let i = sample(Metrics::Idle {
            requested: 100,
            bytes_per_conn: 512.0,
            kernel_bytes_per_conn: None,
        })
        .to_json_line();
        assert!(
            i.contains(r#""conns":50,"bytes_per_conn":512,"requested":100,"#),
            "{i}"
        );
        assert!(!i.contains("kernel"));
        let u = sample(Metrics::Udp {
            tx_per_s: 500.0,
            latency: lat(10.0, 20.0),
            lost: 3,
        })
        .to_json_line();
        assert!(
            u.starts_with(
                r#"{"scenario":"udp","system":"tokio","cores":1,"conns":50,"tx_per_s":500,"p50_us":10,"p99_us":20,"#
            ),
            "{u}"
        );
        assert!(u.contains(r#""lost":3,"size":64,"#), "{u}");
    }

    #[test]
    fn lines_round_trip() {
        for metrics in [
            Metrics::Echo {
                tx_per_s: 5.5,
                latency: lat(1.5, 2.5),
            },
            Metrics::Connect {
                conns_per_s: 7.0,
                time_wait: false,
                latency: lat(3.0, 4.0),
                errors: 2,
            },
            Metrics::Bulk { gbit_per_s: 9.125 },
            Metrics::Udp {
                tx_per_s: 8.5,
                latency: lat(5.0, 6.0),
                lost: 1,
            },
            Metrics::Idle {
                requested: 10,
                bytes_per_conn: 300.5,
                kernel_bytes_per_conn: Some(2000.0),
            },
        ] {
            let m = sample(metrics);
            assert_eq!(Measurement::from_json_line(&m.to_json_line()), Ok(m));
        }
    }

    #[test]
    fn parse_rejects_missing_contract_fields() {
        assert!(Measurement::from_json_line(
            r#"{"scenario":"echo","system":"x","cores":1,"conns":1,"tx_per_s":1,"p50_us":1}"#
        )
        .unwrap_err()
        .contains("p99_us"));
        assert!(Measurement::from_json_line(r#"{"scenario":"echo","system":"x","cores":"1","conns":1,"tx_per_s":1,"p50_us":1,"p99_us":1}"#)
            .unwrap_err()
            .contains("cores"));
        assert!(Measurement::from_json_line("[1]").is_err());
        assert!(Measurement::from_json_line("{").is_err());
    }

    #[test]
    fn json_numbers() {
        assert_eq!(json_number(0.0), "0");
        assert_eq!(json_number(50.0), "50");
        assert_eq!(json_number(1.23456), "1.235");
        assert_eq!(json_number(0.1), "0.1");
        assert_eq!(json_number(-2.5), "-2.5");
        assert_eq!(json_number(f64::NAN), "null");
        assert_eq!(json_number(f64::INFINITY), "null");
    }

    #[test]
    fn strings_are_escaped() {
        let mut m = sample(Metrics::Bulk { gbit_per_s: 1.0 });
        m.system = "a\"b\\c\n".into();
        let line = m.to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["system"], "a\"b\\c\n");
    }

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
        let runs: Vec<Measurement> = [(100.0, true), (300.0, true), (200.0, false)]
            .into_iter()
            .map(|(c, tw)| {
                sample(Metrics::Connect {
                    conns_per_s: c,
                    time_wait: tw,
                    latency: lat(c / 10.0, c / 5.0),
                    errors: 0,
                })
            })
            .collect();
        let m = Measurement::median(&runs).unwrap();
        assert_eq!(m.rounds, 3);
        match m.metrics {
            Metrics::Connect {
                conns_per_s,
                time_wait,
                latency,
                ..
            } => {
                assert_eq!(conns_per_s, 200.0);
                assert!(!time_wait);
                assert_eq!(latency.p50_us, 20.0);
                assert_eq!(latency.p99_us, 40.0);
            }
            other => panic!("{other:?}"),
        }
        let mut other = runs[0].clone();
        other.system = "mtcp".into();
        assert_eq!(Measurement::median(&[runs[0].clone(), other]), None);
        assert_eq!(Measurement::median(&[]), None);
    }

    #[test]
    fn latency_from_histogram() {
        let mut h = latency_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let l = Latency::from_nanos(&h);
        assert!((l.p50_us - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99_us - 990.0).abs() < 1.5, "{l:?}");
        assert!(l.p50_us <= l.p90_us && l.p90_us <= l.p99_us && l.p99_us <= l.p999_us);
        assert!((l.max_us - 1000.0).abs() < 1.0);
    }
}
