//! `MTCP_STATS`: one line of a core's counters on stderr every interval.
//!
//! ```text
//! mtcp stats core 0: rx 1200 tx 1180 drops no_socket=3 sockets 12 time_wait 4 chunks 40/16384 frames 4000/4096
//! ```
//!
//! `rx`/`tx` are frames since the core started, `drops` lists the non-zero
//! reasons only (`drops 0` when there are none), `sockets` counts TCBs in
//! use (listeners and TIME-WAIT included), `chunks` the buffer pool in use
//! over its size, `frames` the free frames over the frame pool's size. The
//! line goes straight to stderr, not through the logger, so it shows with
//! any `RUST_LOG`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use mtcp_stack::stack::Stack;
use mtcp_stack::stats::DropReason;
use mtcp_stack::time::Instant as StackInstant;

/// Prints one core's line when its interval has passed.
#[derive(Debug)]
pub(crate) struct StatsPrinter {
    core: usize,
    every_us: u64,
    /// The next instant a line is due.
    due: StackInstant,
    /// The line, reused.
    line: String,
}

impl StatsPrinter {
    /// A printer for core `core`; the first line comes one interval after
    /// the core starts.
    pub(crate) fn new(core: usize, every: Duration) -> StatsPrinter {
        let every_us = (every.as_micros() as u64).max(1);
        StatsPrinter {
            core,
            every_us,
            due: StackInstant::from_micros(every_us),
            line: String::with_capacity(256),
        }
    }

    /// When the next line is due (a deadline for the core's park).
    pub(crate) fn next_due(&self) -> StackInstant {
        self.due
    }

    /// Prints the line if it is due at `now`. Returns whether it did.
    pub(crate) fn maybe_print(&mut self, now: StackInstant, stack: &Stack) -> bool {
        if now < self.due {
            return false;
        }
        // The next interval from now: a core that slept through several
        // prints one line, not a burst.
        self.due = StackInstant::from_micros(now.total_micros() + self.every_us);
        self.line.clear();
        format_line(&mut self.line, self.core, stack);
        self.line.push('\n');
        // One write, so lines of different cores do not interleave.
        let _ = std::io::stderr().write_all(self.line.as_bytes());
        true
    }
}

/// The line for `stack`, without the newline.
pub(crate) fn format_line(out: &mut String, core: usize, stack: &Stack) {
    let frames = stack.stats();
    let tcp = stack.tcp();
    let _ = write!(
        out,
        "mtcp stats core {core}: rx {} tx {} drops",
        frames.rx_frames, frames.tx_frames
    );
    let mut any = false;
    for reason in DropReason::ALL {
        let n = frames.drops(reason);
        if n != 0 {
            any = true;
            let _ = write!(out, " {}={n}", reason.name());
        }
    }
    if !any {
        out.push_str(" 0");
    }
    let _ = write!(
        out,
        " sockets {} time_wait {} chunks {}/{} frames {}/{}",
        tcp.sockets_in_use(),
        tcp.time_wait_sockets(),
        tcp.chunks_in_use(),
        tcp.config().chunk_count,
        stack.frames_available(),
        stack.frames_capacity(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtcp_stack::nic::memory::MemoryNic;
    use mtcp_stack::stack::StackConfig;

    fn stack() -> Stack {
        let (a, _b) = MemoryNic::pair(1, 64);
        let q = a.split_boxed().pop().unwrap();
        Stack::new(StackConfig::default(), q).unwrap()
    }

    #[test]
    fn an_idle_core_prints_zero_drops() {
        let s = stack();
        let mut line = String::new();
        format_line(&mut line, 3, &s);
        assert!(
            line.starts_with(
                "mtcp stats core 3: rx 0 tx 0 drops 0 sockets 0 time_wait 0 chunks 0/"
            ),
            "{line}"
        );
        assert!(line.contains(" frames "), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn prints_once_per_interval() {
        let s = stack();
        let mut p = StatsPrinter::new(0, Duration::from_millis(100));
        assert_eq!(p.next_due(), StackInstant::from_millis(100));
        assert!(!p.maybe_print(StackInstant::from_millis(99), &s));
        assert!(p.maybe_print(StackInstant::from_millis(350), &s));
        // Due one interval after the late print, not at 200 ms.
        assert_eq!(p.next_due(), StackInstant::from_millis(450));
        assert!(!p.maybe_print(StackInstant::from_millis(449), &s));
    }
}
