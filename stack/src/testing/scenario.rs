//! A small packetdrill-like script format, and its runner, for TCP
//! regression tests.
//!
//! One [`TcpStack`] plays "us" at 192.168.0.1; the script plays the remote
//! peer at 192.0.2.1, port 40000. Each line is `TIME ACTION`, where TIME is
//! absolute seconds (`0.100`) or relative to the previous line (`+0.040`),
//! and ACTION is one of:
//!
//! ```text
//! < FLAGS START:END(LEN) [ack N] [win N] [<OPTIONS>]   inject a segment
//! > FLAGS START:END(LEN) [ack N] [win N] [<OPTIONS>]   expect a segment
//! listen PORT [BACKLOG]      accept                   connect PORT
//! write N [= EAGAIN|EPIPE]   read N [= EAGAIN|ECONNRESET|...]   (read 0 = EOF)
//! shutdown  close  abort  nodelay  keepalive
//! state NAME                 error NAME                stat NAME VALUE
//! config KEY VALUE           (before the first timed line)
//! ```
//!
//! FLAGS are packetdrill's letters (`S`, `F`, `R`, `P`, `.` for ACK, e.g.
//! `S.`, `F.`, `P.`). Sequence numbers are relative, as in packetdrill:
//! the peer's are offset by a base ISN, ours by the ISN of our first SYN;
//! ACK numbers and SACK blocks the other way round. OPTIONS are
//! `mss N`, `wscale N`, `sackOK`, `nop` (ignored), `TS val V ecr E` (`*`
//! matches anything), `sack L:R ...`, or `...` (any options; for an
//! expected segment without `<...>` the options must be empty). `win` is
//! checked only when given. Payload bytes are a pattern of the relative
//! sequence number, so `read` checks content too.
//!
//! Virtual time runs every timer that falls between two lines; an expected
//! segment must have been emitted within the tolerance (`config
//! tolerance_ms`, default 10) of its line's time. A mismatch fails with the
//! line number and both segments; so does a segment emitted that no line
//! expected.

use crate::tcp::{SocketId, TcpConfig, TcpError, TcpStack};
use crate::time::{Duration, Instant};
use crate::wire::ipv4::Ipv4Address;
use crate::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpRepr};
use crate::wire::SeqNumber;
use core::fmt;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

/// Our address in scripts.
pub const LOCAL_IP: Ipv4Address = Ipv4Address::new(192, 168, 0, 1);
/// The scripted peer's address.
pub const REMOTE_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
/// The scripted peer's port.
pub const REMOTE_PORT: u16 = 40000;
/// The peer's ISN: script sequence numbers are relative to it.
pub const REMOTE_ISN: u32 = 0x1000_0000;

/// Why a scenario failed: the line (1-based) and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// 1-based line number.
    pub line: usize,
    /// What happened.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A timestamp field: a value or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsField {
    Any,
    Is(u32),
}

/// A segment as written in a script.
#[derive(Debug, Clone)]
struct ScriptSeg {
    flags: TcpFlags,
    start: u32,
    len: usize,
    ack: Option<u32>,
    win: Option<u16>,
    any_options: bool,
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_ok: bool,
    ts: Option<(TsField, TsField)>,
    sack: Vec<(u32, u32)>,
}

/// A segment the stack emitted, copied out.
#[derive(Debug, Clone)]
struct Emitted {
    at: Instant,
    flags: TcpFlags,
    seq: SeqNumber,
    ack: SeqNumber,
    window: u16,
    options: TcpOptions,
    payload: Vec<u8>,
    dst_port: u16,
    src_port: u16,
}

fn pattern_byte(rel_seq: u32) -> u8 {
    (rel_seq % 251) as u8
}

fn flags_str(f: TcpFlags) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::URG, 'U'),
        (TcpFlags::ACK, '.'),
    ] {
        if f.contains(bit) {
            s.push(c);
        }
    }
    s
}

fn parse_flags(tok: &str) -> Option<TcpFlags> {
    let mut f = TcpFlags::NONE;
    for c in tok.chars() {
        f |= match c {
            'S' => TcpFlags::SYN,
            'F' => TcpFlags::FIN,
            'R' => TcpFlags::RST,
            'P' => TcpFlags::PSH,
            'U' => TcpFlags::URG,
            '.' => TcpFlags::ACK,
            'E' => TcpFlags::ECE,
            'W' => TcpFlags::CWR,
            _ => return None,
        };
    }
    Some(f)
}

fn parse_range(tok: &str) -> Option<(u32, u32)> {
    let (a, b) = tok.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn parse_segment(text: &str) -> Result<ScriptSeg, String> {
    let (head, opts) = match text.find('<') {
        Some(i) => {
            let end = text.rfind('>').filter(|&e| e > i).ok_or("unclosed '<'")?;
            (&text[..i], Some(&text[i + 1..end]))
        }
        None => (text, None),
    };
    let mut toks = head.split_whitespace();
    let flags = toks
        .next()
        .and_then(parse_flags)
        .ok_or("bad or missing flags")?;
    let range = toks.next().ok_or("missing START:END(LEN)")?;
    let (se, len) = range.split_once('(').ok_or("expected START:END(LEN)")?;
    let len: usize = len
        .trim_end_matches(')')
        .parse()
        .map_err(|_| "bad LEN".to_string())?;
    let (start, end) = parse_range(se).ok_or("bad START:END")?;
    if end.wrapping_sub(start) as usize != len {
        return Err(format!("{start}:{end} does not span {len} bytes"));
    }
    let mut seg = ScriptSeg {
        flags,
        start,
        len,
        ack: None,
        win: None,
        any_options: false,
        mss: None,
        wscale: None,
        sack_ok: false,
        ts: None,
        sack: Vec::new(),
    };
    while let Some(t) = toks.next() {
        let v = toks.next().ok_or_else(|| format!("'{t}' needs a value"))?;
        match t {
            "ack" => seg.ack = Some(v.parse().map_err(|_| "bad ack")?),
            "win" => seg.win = Some(v.parse().map_err(|_| "bad win")?),
            _ => return Err(format!("unknown field '{t}'")),
        }
    }
    if let Some(opts) = opts {
        for o in opts.split(',') {
            let w: Vec<&str> = o.split_whitespace().collect();
            match w.as_slice() {
                ["..."] => seg.any_options = true,
                ["nop"] | ["eol"] | [] => {}
                ["sackOK"] => seg.sack_ok = true,
                ["mss", v] => seg.mss = Some(v.parse().map_err(|_| "bad mss")?),
                ["wscale", v] => seg.wscale = Some(v.parse().map_err(|_| "bad wscale")?),
                ["TS", "val", v, "ecr", e] => {
                    let f = |x: &str| -> Result<TsField, String> {
                        if x == "*" {
                            Ok(TsField::Any)
                        } else {
                            x.parse()
                                .map(TsField::Is)
                                .map_err(|_| format!("bad TS '{x}'"))
                        }
                    };
                    seg.ts = Some((f(v)?, f(e)?));
                }
                ["sack", blocks @ ..] => {
                    for b in blocks {
                        seg.sack.push(parse_range(b).ok_or("bad sack block")?);
                    }
                }
                _ => return Err(format!("unknown option '{o}'")),
            }
        }
    }
    Ok(seg)
}

/// Runs scenario scripts against a fresh [`TcpStack`].
#[derive(Debug)]
pub struct Scenario {
    stack: Option<TcpStack>,
    cfg: TcpConfig,
    tolerance: Duration,
    now: Instant,
    last_time: Instant,
    our_isn: Option<u32>,
    listener: Option<SocketId>,
    sock: Option<SocketId>,
    local_port: u16,
    out: VecDeque<Emitted>,
    read_pos: u32,
    write_pos: u32,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario::new()
    }
}

impl Scenario {
    /// A runner with the default configuration (changed by `config` lines).
    pub fn new() -> Scenario {
        Scenario {
            stack: None,
            cfg: TcpConfig {
                max_connections: 64,
                chunk_count: 1024,
                ..TcpConfig::default()
            },
            tolerance: Duration::from_millis(10),
            now: Instant::ZERO,
            last_time: Instant::ZERO,
            our_isn: None,
            listener: None,
            sock: None,
            local_port: 8080,
            out: VecDeque::new(),
            read_pos: 1,
            write_pos: 1,
        }
    }

    /// The stack, once the first timed line has created it.
    pub fn stack(&self) -> Option<&TcpStack> {
        self.stack.as_ref()
    }

    /// Runs `script`.
    ///
    /// # Errors
    /// The first line that fails, with a message naming both segments on a
    /// mismatch.
    pub fn run(&mut self, script: &str) -> Result<(), ScenarioError> {
        let mut last_line = 0;
        for (i, raw) in script.lines().enumerate() {
            let line = i + 1;
            last_line = line;
            let text = raw.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            self.line(text)
                .map_err(|message| ScenarioError { line, message })?;
        }
        // Anything emitted and not expected is a failure.
        if let Some(e) = self.out.front() {
            return Err(ScenarioError {
                line: last_line,
                message: format!("unexpected segment at end: {}", self.show(e)),
            });
        }
        Ok(())
    }

    fn stack_mut(&mut self) -> Result<&mut TcpStack, String> {
        if self.stack.is_none() {
            let s = TcpStack::new(self.cfg.clone(), &[LOCAL_IP]).map_err(|e| e.to_string())?;
            self.stack = Some(s);
        }
        Ok(self.stack.as_mut().expect("created above"))
    }

    fn config(&mut self, key: &str, value: &str) -> Result<(), String> {
        if self.stack.is_some() {
            return Err("config after the stack started".into());
        }
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad value '{value}'"))
        };
        let flag = || match value {
            "true" | "on" | "1" => Ok(true),
            "false" | "off" | "0" => Ok(false),
            _ => Err(format!("bad boolean '{value}'")),
        };
        let c = &mut self.cfg;
        match key {
            "timestamps" => c.timestamps = flag()?,
            "sack" => c.sack = flag()?,
            "window_scaling" => c.window_scaling = flag()?,
            "syn_cookies" => c.syn_cookies = flag()?,
            "time_wait_reuse" => c.time_wait_reuse = flag()?,
            "keepalive_default" => c.keepalive_default = flag()?,
            "syn_backlog" => c.syn_backlog = num()? as usize,
            "recv_buffer" => c.recv_buffer = num()? as usize,
            "send_buffer" => c.send_buffer = num()? as usize,
            "mtu" => c.mtu = num()? as usize,
            "msl_ms" => c.msl = Duration::from_millis(num()?),
            "delayed_ack_ms" => c.delayed_ack = Duration::from_millis(num()?),
            "rto_min_ms" => c.rto_min = Duration::from_millis(num()?),
            "rto_initial_ms" => c.rto_initial = Duration::from_millis(num()?),
            "rto_max_ms" => c.rto_max = Duration::from_millis(num()?),
            "syn_retries" => c.syn_retries = num()? as u8,
            "data_retries" => c.data_retries = num()? as u8,
            "orphan_retries" => c.orphan_retries = num()? as u8,
            "fin_timeout_ms" => c.fin_timeout = Duration::from_millis(num()?),
            "challenge_ack_limit" => c.challenge_ack_limit = num()? as u32,
            "keepalive_idle_ms" => c.keepalive.idle = Duration::from_millis(num()?),
            "keepalive_interval_ms" => c.keepalive.interval = Duration::from_millis(num()?),
            "keepalive_count" => c.keepalive.count = num()? as u8,
            "congestion" => {
                c.congestion = match value {
                    "newreno" => crate::tcp::CongestionKind::NewReno,
                    "cubic" => crate::tcp::CongestionKind::Cubic,
                    _ => return Err(format!("unknown congestion '{value}'")),
                }
            }
            "tolerance_ms" => self.tolerance = Duration::from_millis(num()?),
            "seed" => c.seed = num()?,
            _ => return Err(format!("unknown config '{key}'")),
        }
        Ok(())
    }

    fn line(&mut self, text: &str) -> Result<(), String> {
        if let Some(rest) = text.strip_prefix("config ") {
            let mut w = rest.split_whitespace();
            let (k, v) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            return self.config(k, v);
        }
        let (time, action) = text
            .split_once(char::is_whitespace)
            .ok_or("missing action")?;
        let at = self.parse_time(time)?;
        if at < self.last_time {
            return Err("time goes backwards".into());
        }
        self.last_time = at;
        self.stack_mut()?;
        self.advance(at)?;
        let action = action.trim();
        if let Some(seg) = action.strip_prefix("< ") {
            let seg = parse_segment(seg)?;
            self.inject(&seg)?;
            self.flush();
        } else if let Some(seg) = action.strip_prefix("> ") {
            let seg = parse_segment(seg)?;
            self.expect(&seg, action)?;
        } else {
            self.app(action)?;
            self.flush();
        }
        Ok(())
    }

    fn parse_time(&self, tok: &str) -> Result<Instant, String> {
        let (rel, num) = match tok.strip_prefix('+') {
            Some(n) => (true, n),
            None => (false, tok),
        };
        let secs: f64 = num.parse().map_err(|_| format!("bad time '{tok}'"))?;
        if !(0.0..1e6).contains(&secs) {
            return Err(format!("bad time '{tok}'"));
        }
        let d = Duration::from_micros((secs * 1e6).round() as u64);
        Ok(if rel {
            self.last_time + d
        } else {
            Instant::ZERO + d
        })
    }

    /// Runs every timer up to `target`, collecting output.
    fn advance(&mut self, target: Instant) -> Result<(), String> {
        for _ in 0..1_000_000 {
            let s = self.stack.as_ref().ok_or("no stack")?;
            let Some(d) = s.next_deadline() else { break };
            let t = if d <= self.now {
                self.now + Duration::from_millis(1)
            } else {
                d
            };
            if t > target {
                break;
            }
            self.now = t;
            self.stack.as_mut().ok_or("no stack")?.poll_timers(t);
            self.flush();
        }
        self.now = target;
        self.stack.as_mut().ok_or("no stack")?.poll_timers(target);
        self.flush();
        Ok(())
    }

    fn flush(&mut self) {
        let now = self.now;
        let Some(s) = self.stack.as_mut() else { return };
        let out = &mut self.out;
        let isn = &mut self.our_isn;
        s.dispatch(now, usize::MAX, &mut |_, _, r: &TcpRepr| {
            if r.flags.syn() && isn.is_none() {
                *isn = Some(r.seq.0);
            }
            out.push_back(Emitted {
                at: now,
                flags: r.flags,
                seq: r.seq,
                ack: r.ack,
                window: r.window,
                options: r.options,
                payload: r.payload.to_vec(),
                dst_port: r.dst_port,
                src_port: r.src_port,
            });
            true
        });
    }

    fn isn(&self) -> u32 {
        self.our_isn.unwrap_or(0)
    }

    fn inject(&mut self, seg: &ScriptSeg) -> Result<(), String> {
        let payload: Vec<u8> = (0..seg.len)
            .map(|i| pattern_byte(seg.start.wrapping_add(i as u32)))
            .collect();
        let mut options = TcpOptions {
            mss: seg.mss,
            window_scale: seg.wscale,
            sack_permitted: seg.sack_ok,
            ..TcpOptions::default()
        };
        if let Some((v, e)) = seg.ts {
            let val = |f| match f {
                TsField::Is(x) => x,
                TsField::Any => 0,
            };
            options.timestamp = Some((val(v), val(e)));
        }
        let isn = self.isn();
        for &(l, r) in &seg.sack {
            options.push_sack(SackBlock {
                left: SeqNumber(isn.wrapping_add(l)),
                right: SeqNumber(isn.wrapping_add(r)),
            });
        }
        let repr = TcpRepr {
            src_port: REMOTE_PORT,
            dst_port: self.local_port,
            seq: SeqNumber(REMOTE_ISN.wrapping_add(seg.start)),
            ack: SeqNumber(seg.ack.map_or(0, |a| isn.wrapping_add(a))),
            flags: seg.flags,
            window: seg.win.unwrap_or(65535),
            urgent: 0,
            options,
            payload: &payload,
        };
        let now = self.now;
        self.stack
            .as_mut()
            .ok_or("no stack")?
            .input(now, REMOTE_IP, LOCAL_IP, &repr);
        Ok(())
    }

    fn show(&self, e: &Emitted) -> String {
        let isn = self.isn();
        let start = e.seq.0.wrapping_sub(isn);
        let mut s = format!(
            "{:.3} > {} {}:{}({})",
            e.at.total_micros() as f64 / 1e6,
            flags_str(e.flags),
            start,
            start.wrapping_add(e.payload.len() as u32),
            e.payload.len()
        );
        if e.flags.ack() {
            s += &format!(" ack {}", e.ack.0.wrapping_sub(REMOTE_ISN));
        }
        s += &format!(" win {}", e.window);
        let o = &e.options;
        let mut opts = Vec::new();
        if let Some(m) = o.mss {
            opts.push(format!("mss {m}"));
        }
        if o.sack_permitted {
            opts.push("sackOK".into());
        }
        if let Some((v, ecr)) = o.timestamp {
            opts.push(format!("TS val {v} ecr {ecr}"));
        }
        if let Some(w) = o.window_scale {
            opts.push(format!("wscale {w}"));
        }
        if o.sack_len > 0 {
            let b: Vec<String> = o
                .sack()
                .iter()
                .map(|b| {
                    format!(
                        "{}:{}",
                        b.left.0.wrapping_sub(REMOTE_ISN),
                        b.right.0.wrapping_sub(REMOTE_ISN)
                    )
                })
                .collect();
            opts.push(format!("sack {}", b.join(" ")));
        }
        if !opts.is_empty() {
            s += &format!(" <{}>", opts.join(","));
        }
        s
    }

    fn expect(&mut self, want: &ScriptSeg, text: &str) -> Result<(), String> {
        let Some(got) = self.out.pop_front() else {
            return Err(format!("expected {text}, but nothing was sent"));
        };
        if want.flags.syn() {
            // Each SYN we send starts a new sequence space.
            self.our_isn = Some(got.seq.0);
        }
        let shown = self.show(&got);
        let fail = |why: &str| Err(format!("{why}\n  expected: {text}\n  got:      {shown}"));
        let early = self.now.saturating_duration_since(got.at);
        let late = got.at.saturating_duration_since(self.now);
        if early > self.tolerance || late > self.tolerance {
            return fail("sent at the wrong time");
        }
        if got.dst_port != REMOTE_PORT || got.src_port != self.local_port {
            return fail("wrong ports");
        }
        if got.flags != want.flags {
            return fail("flags differ");
        }
        let isn = self.isn();
        if got.seq.0 != isn.wrapping_add(want.start) || got.payload.len() != want.len {
            return fail("sequence or length differs");
        }
        for (i, &b) in got.payload.iter().enumerate() {
            if b != pattern_byte(want.start.wrapping_add(i as u32)) {
                return fail("payload bytes differ");
            }
        }
        if let Some(a) = want.ack {
            if !got.flags.ack() || got.ack.0 != REMOTE_ISN.wrapping_add(a) {
                return fail("ack differs");
            }
        }
        if let Some(w) = want.win {
            if got.window != w {
                return fail("window differs");
            }
        }
        if !want.any_options {
            let o = &got.options;
            if o.mss != want.mss
                || o.window_scale != want.wscale
                || o.sack_permitted != want.sack_ok
            {
                return fail("options differ");
            }
            match (want.ts, o.timestamp) {
                (None, None) => {}
                (Some((v, e)), Some((gv, ge))) => {
                    let ok = |f: TsField, g: u32| f == TsField::Any || f == TsField::Is(g);
                    if !ok(v, gv) || !ok(e, ge) {
                        return fail("timestamps differ");
                    }
                }
                _ => return fail("timestamp option differs"),
            }
            let got_sack: Vec<(u32, u32)> = o
                .sack()
                .iter()
                .map(|b| {
                    (
                        b.left.0.wrapping_sub(REMOTE_ISN),
                        b.right.0.wrapping_sub(REMOTE_ISN),
                    )
                })
                .collect();
            if got_sack != want.sack {
                return fail("SACK blocks differ");
            }
        }
        Ok(())
    }

    fn sock(&self) -> Result<SocketId, String> {
        self.sock
            .ok_or_else(|| "no socket (accept or connect first)".into())
    }

    fn app(&mut self, action: &str) -> Result<(), String> {
        let (cmd, expect_err) = match action.split_once('=') {
            Some((c, e)) => (c.trim(), Some(e.trim())),
            None => (action, None),
        };
        let w: Vec<&str> = cmd.split_whitespace().collect();
        let now = self.now;
        let check = |r: Result<(), TcpError>| -> Result<(), String> {
            match (r, expect_err) {
                (Ok(()), None) => Ok(()),
                (Err(e), Some(name)) if err_name(e) == name => Ok(()),
                (Ok(()), Some(name)) => Err(format!("expected {name}, call succeeded")),
                (Err(e), _) => Err(format!("call failed: {} ({e})", err_name(e))),
            }
        };
        match w.as_slice() {
            ["listen", port, rest @ ..] => {
                let port: u16 = port.parse().map_err(|_| "bad port")?;
                let backlog = rest.first().and_then(|b| b.parse().ok()).unwrap_or(16);
                self.local_port = port;
                let s = self.stack_mut()?;
                let r = s.listen(SocketAddrV4::new(Ipv4Address::UNSPECIFIED, port), backlog);
                if let Ok(id) = r {
                    self.listener = Some(id);
                }
                check(r.map(|_| ()))
            }
            ["accept"] => {
                let l = self.listener.ok_or("no listener")?;
                let r = self.stack_mut()?.accept(l);
                if let Ok(id) = r {
                    self.sock = Some(id);
                    self.read_pos = 1;
                    self.write_pos = 1;
                }
                check(r.map(|_| ()))
            }
            ["connect", port] => {
                let port: u16 = port.parse().map_err(|_| "bad port")?;
                self.local_port = port;
                self.our_isn = None;
                let r = self.stack_mut()?.connect(
                    now,
                    SocketAddrV4::new(REMOTE_IP, REMOTE_PORT),
                    Some(SocketAddrV4::new(LOCAL_IP, port)),
                );
                if let Ok(id) = r {
                    self.sock = Some(id);
                    self.read_pos = 1;
                    self.write_pos = 1;
                }
                check(r.map(|_| ()))
            }
            ["write", n] => {
                let n: usize = n.parse().map_err(|_| "bad count")?;
                let id = self.sock()?;
                let data: Vec<u8> = (0..n)
                    .map(|i| pattern_byte(self.write_pos.wrapping_add(i as u32)))
                    .collect();
                let r = self.stack_mut()?.send(id, &data);
                match r {
                    Ok(m) if m == n => {
                        self.write_pos = self.write_pos.wrapping_add(n as u32);
                        check(Ok(()))
                    }
                    Ok(m) => Err(format!("write took {m} of {n} bytes")),
                    Err(e) => check(Err(e)),
                }
            }
            ["read", n] => {
                let n: usize = n.parse().map_err(|_| "bad count")?;
                let id = self.sock()?;
                let mut buf = vec![0u8; n.max(1)];
                let r = self.stack_mut()?.recv(id, &mut buf);
                match r {
                    Ok(m) if m == n => {
                        for (i, &b) in buf[..m].iter().enumerate() {
                            if b != pattern_byte(self.read_pos.wrapping_add(i as u32)) {
                                return Err(format!("read byte {i} differs"));
                            }
                        }
                        self.read_pos = self.read_pos.wrapping_add(m as u32);
                        check(Ok(()))
                    }
                    Ok(m) => Err(format!("read returned {m}, expected {n}")),
                    Err(e) => check(Err(e)),
                }
            }
            ["shutdown"] => {
                let id = self.sock()?;
                let r = self.stack_mut()?.shutdown_write(id);
                check(r)
            }
            ["close"] => {
                let id = self.sock()?;
                let r = self.stack_mut()?.close(id);
                check(r)
            }
            ["close_listener"] => {
                let id = self.listener.ok_or("no listener")?;
                let r = self.stack_mut()?.close(id);
                check(r)
            }
            ["abort"] => {
                let id = self.sock()?;
                let r = self.stack_mut()?.abort(id);
                check(r)
            }
            ["nodelay"] => {
                let id = self.sock()?;
                let r = self.stack_mut()?.set_nodelay(id, true);
                check(r)
            }
            ["keepalive"] => {
                let id = self.sock()?;
                let r = self.stack_mut()?.set_keepalive(id, true);
                check(r)
            }
            ["state", name] => {
                let id = self.sock()?;
                let local_port = self.local_port;
                let stack = self.stack_mut()?;
                let st = match stack.state(id) {
                    Ok(s) => s.to_string(),
                    // TIME-WAIT is held as a compact entry, not a socket
                    // (`tcp/time_wait.rs`): the script's 4-tuple names it.
                    Err(TcpError::InvalidSocket)
                        if stack
                            .time_wait_entry((LOCAL_IP, local_port), (REMOTE_IP, REMOTE_PORT))
                            .is_some() =>
                    {
                        "TIME-WAIT".to_string()
                    }
                    Err(TcpError::InvalidSocket) => "FREED".to_string(),
                    Err(e) => return Err(e.to_string()),
                };
                if st == *name {
                    Ok(())
                } else {
                    Err(format!("state is {st}, expected {name}"))
                }
            }
            ["error", name] => {
                let id = self.sock()?;
                let e = self
                    .stack_mut()?
                    .take_error(id)
                    .map_err(|e| e.to_string())?;
                let got = e.map_or("none", err_name);
                if got == *name {
                    Ok(())
                } else {
                    Err(format!("error is {got}, expected {name}"))
                }
            }
            ["stat", name, value] => {
                let want: u64 = value.parse().map_err(|_| "bad stat value")?;
                let s = self.stack_mut()?;
                let text = s.stats().to_string();
                let key = format!("tcp.{name} ");
                let got = text
                    .lines()
                    .find_map(|l| l.strip_prefix(&key))
                    .ok_or_else(|| format!("unknown stat '{name}'"))?;
                if got == want.to_string() {
                    Ok(())
                } else {
                    Err(format!("stat {name} is {got}, expected {want}"))
                }
            }
            ["sockets", value] => {
                let want: usize = value.parse().map_err(|_| "bad count")?;
                let got = self.stack_mut()?.sockets_in_use();
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got} sockets in use, expected {want}"))
                }
            }
            _ => Err(format!("unknown action '{action}'")),
        }
    }
}

fn err_name(e: TcpError) -> &'static str {
    match e {
        TcpError::WouldBlock => "EAGAIN",
        TcpError::ConnectionRefused => "ECONNREFUSED",
        TcpError::ConnectionReset => "ECONNRESET",
        TcpError::TimedOut => "ETIMEDOUT",
        TcpError::AddrInUse => "EADDRINUSE",
        TcpError::AddrNotAvailable => "EADDRNOTAVAIL",
        TcpError::BrokenPipe => "EPIPE",
        TcpError::NotConnected => "ENOTCONN",
        TcpError::InvalidInput => "EINVAL",
        TcpError::NoResources => "ENOBUFS",
        TcpError::InvalidSocket => "EBADF",
        TcpError::HostUnreachable => "EHOSTUNREACH",
        TcpError::NetworkUnreachable => "ENETUNREACH",
    }
}

/// Runs `script` on a fresh runner.
///
/// # Errors
/// See [`Scenario::run`].
pub fn run_script(script: &str) -> Result<(), ScenarioError> {
    Scenario::new().run(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segments() {
        let s =
            parse_segment("S. 0:0(0) ack 1 win 100 <mss 1460,sackOK,TS val * ecr 5,nop,wscale 7>")
                .unwrap();
        assert_eq!(s.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(s.ack, Some(1));
        assert_eq!(s.win, Some(100));
        assert_eq!(s.mss, Some(1460));
        assert_eq!(s.wscale, Some(7));
        assert!(s.sack_ok);
        assert_eq!(s.ts, Some((TsField::Any, TsField::Is(5))));
        let s = parse_segment("P. 1:101(100) ack 1 <sack 200:300 400:500>").unwrap();
        assert_eq!(s.len, 100);
        assert_eq!(s.sack, vec![(200, 300), (400, 500)]);
        assert!(parse_segment("P. 1:101(99)").is_err());
        assert!(parse_segment("X 1:1(0)").is_err());
        assert!(parse_segment(". 1:1(0) <bogus 1>").is_err());
    }

    #[test]
    fn mismatch_names_line_and_both_segments() {
        let err = run_script(
            "0 listen 8080\n\
             0 < S 0:0(0) win 65535\n\
             0 > S. 0:0(0) ack 2 <...>\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("expected: > S. 0:0(0) ack 2"), "{err}");
        assert!(err.message.contains("got:"), "{err}");
        assert!(err.message.contains("ack 1"), "{err}");
    }

    #[test]
    fn unexpected_segment_fails() {
        let err = run_script("0 listen 8080\n0 < S 0:0(0) win 65535\n").unwrap_err();
        assert!(err.message.contains("unexpected"), "{err}");
    }
}
