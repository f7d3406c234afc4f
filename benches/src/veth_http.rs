//! `veth --http`: what the HTTP benchmark over the veth needs besides
//! processes: reading `wrk --latency` output ([`parse_wrk`]), its rows as
//! JSON lines ([`HttpRow::json_line`], [`HttpRow::from_json_line`]), the
//! summary table with ratios to tokio ([`summary_markdown`]), the chart
//! ([`chart`]) and the comparison of two servers' answers
//! ([`normalize_response`]).

use std::path::Path;

use plotters::prelude::*;

/// The `scenario` field of the JSON lines.
pub const SCENARIO: &str = "veth-http";

/// What one `wrk --latency` run printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrk {
    /// Completed requests.
    pub requests: u64,
    /// The run's length as wrk measured it, in seconds.
    pub seconds: f64,
    /// `Requests/sec`.
    pub req_per_s: f64,
    /// The 50 % latency of `--latency`, µs.
    pub p50_us: f64,
    /// The 99 % latency of `--latency`, µs.
    pub p99_us: f64,
    /// Socket errors: connect + read + write + timeout (0 when wrk printed
    /// no `Socket errors` line).
    pub socket_errors: u64,
    /// `Non-2xx or 3xx responses` (0 when absent).
    pub non_2xx: u64,
}

/// A wrk duration (`12.34us`, `1.20ms`, `2.00s`, `1.00m`) in µs.
fn duration_us(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// The number after `key` up to the next non-digit, in `line`.
fn count_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Reads the output of `wrk --latency`.
///
/// # Errors
///
/// When the requests line, `Requests/sec` or the 50 % / 99 % latency lines
/// are missing or do not parse.
pub fn parse_wrk(text: &str) -> Result<Wrk, String> {
    let mut requests = None;
    let mut seconds = None;
    let mut req_per_s = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut socket_errors = 0;
    let mut non_2xx = 0;
    let mut in_distribution = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let Some((q, v)) = t.split_once('%') {
                match q.trim() {
                    "50" => p50 = duration_us(v),
                    "99" => p99 = duration_us(v),
                    _ => {}
                }
                continue;
            }
            in_distribution = false;
        }
        if let Some((n, rest)) = t.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
            seconds = rest
                .split(',')
                .next()
                .and_then(duration_us)
                .map(|us| us / 1e6);
        } else if let Some(v) = t.strip_prefix("Requests/sec:") {
            req_per_s = v.trim().parse::<f64>().ok();
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            socket_errors = ["connect", "read", "write", "timeout"]
                .iter()
                .map(|k| count_after(v, k).unwrap_or(0))
                .sum();
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse::<u64>().unwrap_or(u64::MAX);
        }
    }
    let missing = |what: &str| format!("wrk printed no {what}:\n{text}");
    Ok(Wrk {
        requests: requests.ok_or_else(|| missing("`N requests in` line"))?,
        seconds: seconds.ok_or_else(|| missing("run length"))?,
        req_per_s: req_per_s.ok_or_else(|| missing("Requests/sec"))?,
        p50_us: p50.ok_or_else(|| missing("50% latency (--latency)"))?,
        p99_us: p99.ok_or_else(|| missing("99% latency (--latency)"))?,
        socket_errors,
        non_2xx,
    })
}

/// One wrk run against one server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRow {
    /// The server (`mtcp af_packet`, `mtcp xdp`, `tokio (kernel)`).
    pub system: String,
    /// `keep-alive` or `close` (`-H 'Connection: close'`).
    pub mode: String,
    /// wrk's connections.
    pub conns: usize,
    /// Which repetition of this (mode, conns, system), from 0.
    pub round: usize,
    /// What wrk reported.
    pub wrk: Wrk,
    /// The server's CPU time (user + system) over the wrk run per request,
    /// µs.
    pub cpu_us_per_req: f64,
}

impl HttpRow {
    /// Socket errors plus non-2xx/3xx answers.
    pub fn errors(&self) -> u64 {
        self.wrk.socket_errors.saturating_add(self.wrk.non_2xx)
    }

    /// The row as one JSON object on one line.
    pub fn json_line(&self) -> String {
        serde_json::json!({
            "scenario": SCENARIO,
            "system": self.system,
            "mode": self.mode,
            "conns": self.conns,
            "round": self.round,
            "requests": self.wrk.requests,
            "seconds": self.wrk.seconds,
            "req_per_s": self.wrk.req_per_s,
            "p50_us": self.wrk.p50_us,
            "p99_us": self.wrk.p99_us,
            "socket_errors": self.wrk.socket_errors,
            "non_2xx": self.wrk.non_2xx,
            "server_cpu_us_per_req": self.cpu_us_per_req,
        })
        .to_string()
    }

    /// Reads a line of [`HttpRow::json_line`].
    ///
    /// # Errors
    ///
    /// When the line is not such an object.
    pub fn from_json_line(line: &str) -> Result<HttpRow, String> {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if v["scenario"] != SCENARIO {
            return Err(format!("not a {SCENARIO} line"));
        }
        let s = |k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("no string {k}"))
        };
        let u = |k: &str| v[k].as_u64().ok_or_else(|| format!("no count {k}"));
        let f = |k: &str| v[k].as_f64().ok_or_else(|| format!("no number {k}"));
        Ok(HttpRow {
            system: s("system")?,
            mode: s("mode")?,
            conns: u("conns")? as usize,
            round: u("round")? as usize,
            wrk: Wrk {
                requests: u("requests")?,
                seconds: f("seconds")?,
                req_per_s: f("req_per_s")?,
                p50_us: f("p50_us")?,
                p99_us: f("p99_us")?,
                socket_errors: u("socket_errors")?,
                non_2xx: u("non_2xx")?,
            },
            // serde_json writes NaN as null.
            cpu_us_per_req: v["server_cpu_us_per_req"].as_f64().unwrap_or(f64::NAN),
        })
    }
}

/// The rounds of one (mode, conns, system), averaged.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// See [`HttpRow::mode`].
    pub mode: String,
    /// See [`HttpRow::conns`].
    pub conns: usize,
    /// See [`HttpRow::system`].
    pub system: String,
    /// Rounds averaged.
    pub rounds: usize,
    /// Mean requests/s over the rounds.
    pub req_per_s: f64,
    /// Lowest and highest requests/s of a round.
    pub req_per_s_range: (f64, f64),
    /// Mean p50 latency, µs.
    pub p50_us: f64,
    /// Mean p99 latency, µs.
    pub p99_us: f64,
    /// Mean server CPU µs per request.
    pub cpu_us_per_req: f64,
    /// Errors of every round together ([`HttpRow::errors`]).
    pub errors: u64,
    /// `req_per_s` over tokio's for the same mode and conns (`None` when
    /// there is no tokio row).
    pub ratio_to_tokio: Option<f64>,
}

/// Averages the rounds of each (mode, conns, system), in first-seen order.
pub fn summarize(rows: &[HttpRow]) -> Vec<Summary> {
    let mut keys: Vec<(String, usize, String)> = Vec::new();
    for r in rows {
        let k = (r.mode.clone(), r.conns, r.system.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mean = |v: &[&HttpRow], f: &dyn Fn(&HttpRow) -> f64| {
        v.iter().map(|r| f(r)).sum::<f64>() / v.len() as f64
    };
    let mut out: Vec<Summary> = keys
        .into_iter()
        .map(|(mode, conns, system)| {
            let v: Vec<&HttpRow> = rows
                .iter()
                .filter(|r| r.mode == mode && r.conns == conns && r.system == system)
                .collect();
            let rps = |r: &HttpRow| r.wrk.req_per_s;
            Summary {
                rounds: v.len(),
                req_per_s: mean(&v, &rps),
                req_per_s_range: (
                    v.iter().map(|r| rps(r)).fold(f64::INFINITY, f64::min),
                    v.iter().map(|r| rps(r)).fold(0.0, f64::max),
                ),
                p50_us: mean(&v, &|r| r.wrk.p50_us),
                p99_us: mean(&v, &|r| r.wrk.p99_us),
                cpu_us_per_req: mean(&v, &|r| r.cpu_us_per_req),
                errors: v.iter().map(|r| r.errors()).sum(),
                ratio_to_tokio: None,
                mode,
                conns,
                system,
            }
        })
        .collect();
    let tokio: Vec<(String, usize, f64)> = out
        .iter()
        .filter(|s| s.system.starts_with("tokio"))
        .map(|s| (s.mode.clone(), s.conns, s.req_per_s))
        .collect();
    for s in &mut out {
        s.ratio_to_tokio = tokio
            .iter()
            .find(|(m, c, _)| *m == s.mode && *c == s.conns)
            .filter(|(_, _, t)| *t > 0.0)
            .map(|(_, _, t)| s.req_per_s / t);
    }
    out
}

/// The summaries as one markdown table.
pub fn summary_markdown(rows: &[HttpRow]) -> String {
    let mut out = String::from(
        "| mode | conns | server | rounds | req/s (mean) | min–max | vs tokio | p50 µs | p99 µs | server CPU µs/req | errors |\n\
         |---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for s in summarize(rows) {
        let ratio = s
            .ratio_to_tokio
            .map_or_else(|| "–".to_string(), |r| format!("{r:.2}×"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {:.0}–{:.0} | {} | {:.0} | {:.0} | {:.1} | {} |\n",
            s.mode,
            s.conns,
            s.system,
            s.rounds,
            s.req_per_s,
            s.req_per_s_range.0,
            s.req_per_s_range.1,
            ratio,
            s.p50_us,
            s.p99_us,
            s.cpu_us_per_req,
            s.errors
        ));
    }
    out
}

/// The colour of a server's bars: mtcp af_packet red, mtcp xdp orange,
/// tokio blue.
fn colour(system: &str, index: usize) -> RGBColor {
    if system.starts_with("tokio") {
        RGBColor(0x1f, 0x77, 0xb4)
    } else if system.contains("af_packet") {
        RGBColor(0xd6, 0x27, 0x28)
    } else if system.contains("xdp") {
        RGBColor(0xff, 0x7f, 0x0e)
    } else {
        let c = Palette99::pick(index + 2).to_rgba();
        RGBColor(c.0, c.1, c.2)
    }
}

fn err(e: impl std::fmt::Display) -> String {
    format!("chart: {e}")
}

/// Writes a bar chart to `path` (SVG): one group per (mode, conns), one bar
/// per server with its mean requests/s, and a dot per round.
///
/// # Errors
///
/// When `rows` is empty or the file cannot be written.
pub fn chart(rows: &[HttpRow], path: &Path) -> Result<(), String> {
    let sums = summarize(rows);
    if sums.is_empty() {
        return Err("no rows".into());
    }
    let mut groups: Vec<(String, usize)> = Vec::new();
    let mut systems: Vec<String> = Vec::new();
    for s in &sums {
        if !groups.contains(&(s.mode.clone(), s.conns)) {
            groups.push((s.mode.clone(), s.conns));
        }
        if !systems.contains(&s.system) {
            systems.push(s.system.clone());
        }
    }
    let max = rows.iter().map(|r| r.wrk.req_per_s).fold(0.0, f64::max);
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels = groups.clone();
    let mut c = ChartBuilder::on(&root)
        .caption(
            "HTTP over a veth: hyper on mtcp vs on tokio (wrk)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0f64..groups.len() as f64, 0.0f64..(max * 1.15).max(1.0))
        .map_err(err)?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 && i < labels.len() {
                format!("{}, {} conns", labels[i].0, labels[i].1)
            } else {
                String::new()
            }
        })
        .y_desc("requests/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    let width = 0.8 / systems.len() as f64;
    for (si, system) in systems.iter().enumerate() {
        let col = colour(system, si);
        let x0 = |gi: usize| gi as f64 + 0.1 + si as f64 * width;
        let bars: Vec<_> = sums
            .iter()
            .filter(|s| s.system == *system)
            .filter_map(|s| {
                let gi = groups
                    .iter()
                    .position(|g| g.0 == s.mode && g.1 == s.conns)?;
                Some(Rectangle::new(
                    [(x0(gi), 0.0), (x0(gi) + width * 0.9, s.req_per_s)],
                    col.filled(),
                ))
            })
            .collect();
        c.draw_series(bars)
            .map_err(err)?
            .label(system.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], col.filled()));
        let dots: Vec<_> = rows
            .iter()
            .filter(|r| r.system == *system)
            .filter_map(|r| {
                let gi = groups
                    .iter()
                    .position(|g| g.0 == r.mode && g.1 == r.conns)?;
                Some(Circle::new(
                    (x0(gi) + width * 0.45, r.wrk.req_per_s),
                    3,
                    BLACK.filled(),
                ))
            })
            .collect();
        c.draw_series(dots).map_err(err)?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// An HTTP/1.1 answer with its `date` header taken out (the one header
/// that differs from one answer to the next), for comparing two servers.
pub fn normalize_response(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut out: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect();
    out.push("");
    out.push(body);
    out.join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALIVE: &str = "Running 1s test @ http://10.99.0.2:8080/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   103.21us   40.02us   2.01ms   93.00%
    Req/Sec     9.50k   300.00    10.00k    70.00%
  Latency Distribution
     50%   95.00us
     75%  110.00us
     90%  130.00us
     99%    1.20ms
  9500 requests in 1.00s, 1.10MB read
Requests/sec:   9496.12
Transfer/sec:      1.10MB
";

    const ERRORS: &str = "Running 2s test @ http://10.99.0.3:8080/
  1 threads and 50 connections
  Latency Distribution
     50%    1.50ms
     75%    2.00ms
     90%    3.00ms
     99%    1.02s
  700 requests in 2.01s, 80.00KB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:    348.26
Transfer/sec:     39.80KB
";

    #[test]
    fn parses_wrk() {
        let w = parse_wrk(KEEP_ALIVE).unwrap();
        assert_eq!(w.requests, 9500);
        assert_eq!(w.seconds, 1.0);
        assert_eq!(w.req_per_s, 9496.12);
        assert_eq!(w.p50_us, 95.0);
        assert_eq!(w.p99_us, 1200.0);
        assert_eq!((w.socket_errors, w.non_2xx), (0, 0));
        let w = parse_wrk(ERRORS).unwrap();
        assert_eq!((w.requests, w.socket_errors, w.non_2xx), (700, 6, 5));
        assert_eq!(w.p50_us, 1500.0);
        assert_eq!(w.p99_us, 1.02e6);
        assert!((w.seconds - 2.01).abs() < 1e-9);
    }

    #[test]
    fn rejects_output_without_latency() {
        let text = KEEP_ALIVE.replace("Latency Distribution", "");
        assert!(parse_wrk(&text).unwrap_err().contains("50%"));
        assert!(parse_wrk("unable to connect").is_err());
    }

    fn row(system: &str, mode: &str, round: usize, rps: f64) -> HttpRow {
        HttpRow {
            system: system.into(),
            mode: mode.into(),
            conns: 8,
            round,
            wrk: Wrk {
                requests: rps as u64,
                seconds: 1.0,
                req_per_s: rps,
                p50_us: 100.0,
                p99_us: 200.0,
                socket_errors: 0,
                non_2xx: round as u64,
            },
            cpu_us_per_req: 10.0,
        }
    }

    #[test]
    fn json_round_trip() {
        let r = row("mtcp xdp", "close", 1, 1234.5);
        let line = r.json_line();
        for k in [
            "\"scenario\":\"veth-http\"",
            "\"req_per_s\"",
            "\"p50_us\"",
            "\"p99_us\"",
            "\"socket_errors\"",
            "\"non_2xx\"",
        ] {
            assert!(line.contains(k), "{k} in {line}");
        }
        assert_eq!(HttpRow::from_json_line(&line).unwrap(), r);
        assert!(HttpRow::from_json_line("{\"scenario\":\"echo\"}").is_err());
    }

    #[test]
    fn ratios_to_tokio_per_mode() {
        let rows = [
            row("mtcp xdp", "keep-alive", 0, 300.0),
            row("tokio (kernel)", "keep-alive", 0, 100.0),
            row("mtcp xdp", "keep-alive", 1, 100.0),
            row("tokio (kernel)", "keep-alive", 1, 100.0),
            row("mtcp xdp", "close", 0, 50.0),
        ];
        let s = summarize(&rows);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].req_per_s, 200.0);
        assert_eq!(s[0].req_per_s_range, (100.0, 300.0));
        assert_eq!(s[0].ratio_to_tokio, Some(2.0));
        assert_eq!(s[0].errors, 1);
        assert_eq!(s[1].ratio_to_tokio, Some(1.0));
        assert_eq!(s[2].ratio_to_tokio, None);
        let md = summary_markdown(&rows);
        assert!(md.contains("| keep-alive | 8 | mtcp xdp | 2 | 200 | 100–300 | 2.00× |"));
        let dir = std::env::temp_dir().join(format!("veth-http-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.svg");
        chart(&rows, &p).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(svg.contains("<svg") && svg.contains("mtcp xdp") && svg.contains("close, 8"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(chart(&[], &p).is_err());
    }

    #[test]
    fn answers_compare_without_date() {
        let a = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\ndate: Wed, 02 Dec 2026 19:00:00 GMT\r\n\r\nHello, world!";
        let b = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\ndate: Thu, 03 Dec 2026 01:02:03 GMT\r\n\r\nHello, world!";
        let c = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nHello, world?";
        assert_eq!(normalize_response(a), normalize_response(b));
        assert_ne!(normalize_response(a), normalize_response(c));
        assert!(normalize_response(a).ends_with("\r\n\r\nHello, world!"));
    }
}
