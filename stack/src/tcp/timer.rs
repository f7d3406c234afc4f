//! Timers: a millisecond wheel for the fine-grained timers and a coarse FIFO
//! for TIME-WAIT.
//!
//! The wheel ([`TimerWheel`]) has 4096 one-millisecond slots. Each socket has
//! at most one entry, at the earliest of its deadlines (retransmission,
//! delayed ACK, persist, keepalive, SYN retries); the entry lives in an
//! intrusive doubly linked list per slot, threaded through arrays indexed by
//! the socket's slab index, so arming never allocates. Entries further than
//! the wheel's span wait in their slot until their own expiry comes round
//! (the stored expiry is the rounds count). Cancellation is lazy: the real
//! deadlines are a connection's [`Timers`], changed only through
//! `Timers::set`, which moves the entry earlier when needed and leaves it
//! where it is when a deadline stops, even the last one; when an entry
//! fires, the stack checks the deadlines and re-arms the socket for the
//! rest (`Timers::rearm`), or not at all when none is left.
//!
//! TIME-WAIT entries all share one timeout, so [`CoarseList`] keeps them in a
//! FIFO that stays sorted by appending, checked once per second.

use super::types::SocketId;
use crate::time::Instant;
use std::collections::VecDeque;

/// Number of slots in the wheel.
pub(crate) const WHEEL_SLOTS: usize = 4096;
const NIL: u32 = u32::MAX;

/// A hashed timer wheel of one-millisecond slots.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    heads: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    expires: Vec<u64>,
    armed: Vec<bool>,
    /// Last millisecond processed.
    current: u64,
    count: usize,
}

fn ms_ceil(t: Instant) -> u64 {
    t.total_micros().div_ceil(1000)
}

impl TimerWheel {
    /// A wheel for socket indices `0..capacity`, starting at `now`.
    pub(crate) fn new(capacity: usize, now: Instant) -> TimerWheel {
        TimerWheel {
            heads: vec![NIL; WHEEL_SLOTS],
            // Stored XOR NIL, so that "no link" is 0 and the arrays are
            // allocated zeroed: pages are committed only for sockets used.
            next: vec![0; capacity],
            prev: vec![0; capacity],
            expires: vec![0; capacity],
            armed: vec![false; capacity],
            current: now.total_millis(),
            count: 0,
        }
    }

    /// Entries armed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// True when nothing is armed.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// When `index` is armed, its expiry (millisecond resolution).
    #[cfg(test)]
    pub(crate) fn armed_at(&self, index: u32) -> Option<Instant> {
        let i = index as usize;
        self.armed[i].then(|| Instant::from_millis(self.expires[i]))
    }

    #[inline]
    fn next_of(&self, i: usize) -> u32 {
        self.next[i] ^ NIL
    }

    #[inline]
    fn set_next(&mut self, i: usize, v: u32) {
        self.next[i] = v ^ NIL;
    }

    #[inline]
    fn set_prev(&mut self, i: usize, v: u32) {
        self.prev[i] = v ^ NIL;
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i] ^ NIL, self.next_of(i));
        if p == NIL {
            let slot = (self.expires[i] as usize) % WHEEL_SLOTS;
            self.heads[slot] = n;
        } else {
            self.set_next(p as usize, n);
        }
        if n != NIL {
            self.set_prev(n as usize, p);
        }
        self.armed[i] = false;
        self.count -= 1;
    }

    fn link(&mut self, i: usize, ms: u64) {
        let slot = (ms as usize) % WHEEL_SLOTS;
        self.expires[i] = ms;
        self.set_prev(i, NIL);
        self.set_next(i, self.heads[slot]);
        if self.heads[slot] != NIL {
            self.set_prev(self.heads[slot] as usize, i as u32);
        }
        self.heads[slot] = i as u32;
        self.armed[i] = true;
        self.count += 1;
    }

    /// Makes `index` fire no later than `at`. An entry already due earlier is
    /// left alone (lazy: the stack re-arms later deadlines when it fires).
    ///
    /// Inlined for that common case (the entry already fires in time: a
    /// connection sending again within its RTO); moving or adding the entry
    /// is [`TimerWheel::relink`].
    #[inline]
    pub(crate) fn arm(&mut self, index: u32, at: Instant) {
        let i = index as usize;
        let ms = ms_ceil(at).max(self.current + 1);
        if self.armed[i] && self.expires[i] <= ms {
            return;
        }
        self.relink(i, ms);
    }

    /// Puts entry `i` in the slot of `ms`, taking it out of its own first.
    #[inline(never)]
    fn relink(&mut self, i: usize, ms: u64) {
        if self.armed[i] {
            self.unlink(i);
        }
        self.link(i, ms);
    }

    /// Removes the entry of `index`, if any (used when a socket is freed).
    pub(crate) fn cancel(&mut self, index: u32) {
        if self.armed[index as usize] {
            self.unlink(index as usize);
        }
    }

    /// Moves the wheel to `now`, pushing every index whose entry is due to
    /// `out`. Work is bounded by the slots passed (at most one full turn)
    /// plus the entries in them.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<u32>) {
        let now_ms = now.total_millis();
        if now_ms <= self.current {
            return;
        }
        let span = (now_ms - self.current).min(WHEEL_SLOTS as u64);
        for k in 1..=span {
            let slot = ((self.current + k) as usize) % WHEEL_SLOTS;
            let mut e = self.heads[slot];
            while e != NIL {
                let i = e as usize;
                e = self.next_of(i);
                if self.expires[i] <= now_ms {
                    self.unlink(i);
                    out.push(i as u32);
                }
            }
        }
        self.current = now_ms;
    }

    /// The earliest armed expiry, found by scanning forward from the current
    /// slot (an entry more than one turn away may make this early, which is
    /// harmless: the caller wakes, nothing fires).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.count == 0 {
            return None;
        }
        for k in 1..=WHEEL_SLOTS as u64 {
            let slot = ((self.current + k) as usize) % WHEEL_SLOTS;
            let mut e = self.heads[slot];
            let mut best = u64::MAX;
            while e != NIL {
                best = best.min(self.expires[e as usize]);
                e = self.next_of(e as usize);
            }
            if best != u64::MAX {
                return Some(Instant::from_millis(best.min(self.current + k)));
            }
        }
        None
    }
}

/// One of a connection's fine-grained timers (each on the wheel through
/// the connection's single entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Retransmission (also SYN / SYN-ACK retries).
    Rto,
    /// Delayed ACK.
    DelayedAck,
    /// Persist (zero-window probe).
    Persist,
    /// Keepalive (also the orphaned FIN-WAIT-2 timeout).
    Keepalive,
}

/// Per-connection timers: the real deadlines (the wheel holds one entry at
/// the earliest of them, or before it) and retry counters.
///
/// A deadline changes only through `Timers::set`, which keeps the wheel
/// consistent (through the [`WheelUpdate`] the stack applies): an armed
/// deadline is never later than the socket's wheel entry. A socket with no
/// deadline left may keep its entry until it fires once (lazy
/// cancellation); a freed one has none (`Timers::stop_all`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    /// The four deadlines in µs, indexed by `Timer as usize`; [`NEVER`]
    /// when stopped (8 bytes each, where an `Option<Instant>` takes 16).
    deadlines: [u64; 4],
    /// Consecutive retransmissions without progress.
    pub retries: u8,
    /// Persist backoff exponent.
    pub persist_shift: u8,
    /// Keepalive probes sent without answer.
    pub ka_probes: u8,
    /// Last time a segment arrived (for keepalive idle). Whether one
    /// answered the last zero-window probe is a flag bit
    /// (`TcbFlags::PROBE_ANSWERED`), where the probe's instant took 8
    /// bytes.
    pub last_rx: Instant,
    /// Last time data was sent (restart after idle, RFC 5681 §4.1).
    pub last_tx: Instant,
    /// When an out-of-window pure ACK was last answered, in whole
    /// milliseconds of the stack's clock kept to 32 bits: see
    /// [`Timers::oow_ack_allowed`].
    oow_acked_ms: u32,
}

/// Out-of-window pure ACKs are answered at most once in this many
/// milliseconds per connection (as Linux's `tcp_invalid_ratelimit`).
pub(crate) const OOW_ACK_INTERVAL_MS: u32 = 500;

/// `now` in whole milliseconds, kept to 32 bits (wraps every 49.7 days).
#[inline]
fn ms32(now: Instant) -> u32 {
    now.total_millis() as u32
}

/// A stopped deadline: u64::MAX µs, far beyond any real instant, so the
/// earliest deadline is one minimum over the four words.
const NEVER: u64 = u64::MAX;

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            deadlines: [NEVER; 4],
            retries: 0,
            persist_shift: 0,
            ka_probes: 0,
            last_rx: Instant::ZERO,
            last_tx: Instant::ZERO,
            oow_acked_ms: 0,
        }
    }
}

impl Timers {
    /// A connection's clocks start at `now`: heard from now, and an
    /// out-of-window pure ACK may be answered at once.
    pub(crate) fn start(&mut self, now: Instant) {
        self.last_rx = now;
        self.oow_acked_ms = ms32(now).wrapping_sub(OOW_ACK_INTERVAL_MS + 1);
    }

    /// Whether an out-of-window pure ACK may be answered at `now` (at
    /// least [`OOW_ACK_INTERVAL_MS`] since the last one answered); when it
    /// may, `now` becomes the last one. The elapsed time is a wrapping
    /// 32-bit difference of milliseconds: exact for gaps under 49.7 days,
    /// and a gap of a whole multiple of that (to within half a second)
    /// costs one unanswered ACK of a rate limit, never a stuck one.
    pub(crate) fn oow_ack_allowed(&mut self, now: Instant) -> bool {
        let ms = ms32(now);
        if ms.wrapping_sub(self.oow_acked_ms) <= OOW_ACK_INTERVAL_MS {
            return false;
        }
        self.oow_acked_ms = ms;
        true
    }
}

/// A deadline as stored: an armed one stays below [`NEVER`] (an instant
/// saturated at u64::MAX µs, e.g. `now + Duration::MAX`, is armed at the
/// latest representable moment, as before, not read as stopped).
#[inline]
fn stored(at: Option<Instant>) -> u64 {
    at.map_or(NEVER, |t| t.total_micros().min(NEVER - 1))
}

/// A stored deadline, when armed.
#[inline]
fn armed(us: u64) -> Option<Instant> {
    (us != NEVER).then(|| Instant::from_micros(us))
}

impl Timers {
    /// The deadline of `which`, when armed.
    #[inline]
    pub(crate) fn deadline(&self, which: Timer) -> Option<Instant> {
        armed(self.deadlines[which as usize])
    }

    /// Arms (`Some`) or stops (`None`) timer `which`, and records what the
    /// socket's wheel entry must do in `wheel` (applied by the stack after
    /// the connection returns, see [`WheelUpdate`]): the one place where a
    /// connection's deadline changes. Arming moves the entry earlier when
    /// needed (never later: a later deadline is found when the entry fires,
    /// see `Timers::rearm`). Stopping leaves the entry, even for the last
    /// armed timer: it fires once, finds nothing due and is not put back.
    /// A connection that sends and is acknowledged again and again (every
    /// request-response exchange) so keeps one entry for a whole RTO or
    /// delayed-ACK period instead of linking and unlinking it per segment.
    #[inline]
    pub(crate) fn set(&mut self, which: Timer, at: Option<Instant>, wheel: &mut WheelUpdate) {
        self.deadlines[which as usize] = stored(at);
        if let Some(at) = at {
            wheel.arm(at);
        }
    }

    /// [`Timers::set`], applied to the wheel entry of the socket at `index`
    /// at once (for the stack's own code: socket calls, lifecycle, input).
    #[inline]
    pub(crate) fn set_on(
        &mut self,
        which: Timer,
        at: Option<Instant>,
        wheel: &mut TimerWheel,
        index: u32,
    ) {
        let mut up = WheelUpdate::default();
        self.set(which, at, &mut up);
        up.apply(wheel, index);
    }

    /// Stops every timer and removes the wheel entry (the connection ended).
    pub(crate) fn stop_all(&mut self, wheel: &mut TimerWheel, index: u32) {
        self.deadlines = [NEVER; 4];
        wheel.cancel(index);
    }

    /// Puts the socket back on the wheel at its earliest deadline, after
    /// its entry fired (and left the wheel); with no deadline left it
    /// stays off.
    pub(crate) fn rearm(&self, wheel: &mut WheelUpdate) {
        if let Some(at) = self.earliest() {
            wheel.arm(at);
        }
    }

    /// The earliest armed deadline.
    #[inline]
    pub(crate) fn earliest(&self) -> Option<Instant> {
        let [a, b, c, d] = self.deadlines;
        armed(a.min(b).min(c.min(d)))
    }
}

/// What one connection call did to its socket's wheel entry, applied by
/// the stack when the call returns ([`WheelUpdate::apply`]). It folds the
/// call's [`TimerWheel::arm`]s into one, with the same result: arming only
/// moves an entry earlier, so arms fold into their minimum. A connection
/// call never removes the entry (cancellation is lazy, see [`Timers::set`];
/// a freed socket's entry goes through [`Timers::stop_all`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WheelUpdate {
    arm: Option<Instant>,
}

impl WheelUpdate {
    /// The entry must fire no later than `at`.
    #[inline]
    pub(crate) fn arm(&mut self, at: Instant) {
        self.arm = Some(self.arm.map_or(at, |a| a.min(at)));
    }

    /// True when the entry stays as it is.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.arm.is_none()
    }

    /// Applies the update to the entry of the socket at `index`.
    #[inline]
    pub(crate) fn apply(self, wheel: &mut TimerWheel, index: u32) {
        if let Some(at) = self.arm {
            wheel.arm(index, at);
        }
    }
}

/// A FIFO of (socket, expiry) for timers that all share one timeout
/// (TIME-WAIT): appending keeps it sorted. Stale entries (the socket was
/// freed or its deadline moved) are recognised by the caller.
#[derive(Debug)]
pub(crate) struct CoarseList {
    queue: VecDeque<(SocketId, Instant)>,
}

impl CoarseList {
    /// A list with room for `capacity` entries before it grows.
    pub(crate) fn new(capacity: usize) -> CoarseList {
        CoarseList {
            queue: VecDeque::with_capacity(capacity),
        }
    }

    /// Appends an entry; `at` must not be before the last entry's expiry.
    pub(crate) fn push(&mut self, id: SocketId, at: Instant) {
        debug_assert!(self.queue.back().is_none_or(|&(_, t)| t <= at));
        self.queue.push_back((id, at));
    }

    /// Pops every entry due at `now` into `out`.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<(SocketId, Instant)>) {
        while let Some(&(id, at)) = self.queue.front() {
            if at > now {
                break;
            }
            self.queue.pop_front();
            out.push((id, at));
        }
    }

    /// The expiry of the first entry.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|&(_, t)| t)
    }

    /// Entries queued (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_deadline_at_the_end_of_time_stays_armed() {
        let mut t = Timers::default();
        let mut up = WheelUpdate::default();
        let end = Instant::from_micros(u64::MAX);
        t.set(Timer::Keepalive, Some(end), &mut up);
        assert!(t.deadline(Timer::Keepalive).is_some());
        assert!(t.earliest().is_some());
    }

    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn fires_in_order_of_expiry() {
        let mut w = TimerWheel::new(8, ms(0));
        w.arm(1, ms(10));
        w.arm(2, ms(5));
        w.arm(3, ms(5000)); // beyond one turn
        let mut out = Vec::new();
        w.expire(ms(4), &mut out);
        assert!(out.is_empty());
        w.expire(ms(5), &mut out);
        assert_eq!(out, vec![2]);
        out.clear();
        w.expire(ms(4200), &mut out);
        assert_eq!(out, vec![1]);
        out.clear();
        assert_eq!(w.len(), 1);
        w.expire(ms(5000), &mut out);
        assert_eq!(out, vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn arm_earlier_moves_later_is_lazy() {
        let mut w = TimerWheel::new(4, ms(0));
        w.arm(0, ms(100));
        w.arm(0, ms(50));
        assert_eq!(w.armed_at(0), Some(ms(50)));
        w.arm(0, ms(200));
        assert_eq!(w.armed_at(0), Some(ms(50)));
        assert_eq!(w.len(), 1);
        let mut out = Vec::new();
        w.expire(ms(60), &mut out);
        assert_eq!(out, vec![0]);
    }

    #[test]
    fn cancel_and_next_deadline() {
        let mut w = TimerWheel::new(4, ms(0));
        assert_eq!(w.next_deadline(), None);
        w.arm(0, ms(30));
        w.arm(1, ms(20));
        w.arm(2, ms(20));
        assert_eq!(w.next_deadline(), Some(ms(20)));
        w.cancel(1);
        w.cancel(2);
        assert_eq!(w.next_deadline(), Some(ms(30)));
        w.cancel(0);
        assert!(w.is_empty());
        // A deadline in the past fires on the next millisecond.
        let mut w = TimerWheel::new(1, ms(100));
        w.arm(0, ms(3));
        let mut out = Vec::new();
        w.expire(ms(101), &mut out);
        assert_eq!(out, vec![0]);
    }

    #[test]
    fn coarse_list_fifo() {
        let mut c = CoarseList::new(4);
        c.push(SocketId::new(1, 0), ms(100));
        c.push(SocketId::new(2, 0), ms(200));
        let mut out = Vec::new();
        c.expire(ms(150), &mut out);
        assert_eq!(out, vec![(SocketId::new(1, 0), ms(100))]);
        assert_eq!(c.next_deadline(), Some(ms(200)));
    }

    #[test]
    fn earliest_timer() {
        let mut w = TimerWheel::new(1, Instant::ZERO);
        let mut t = Timers::default();
        t.set_on(Timer::Rto, Some(Instant::from_millis(30)), &mut w, 0);
        t.set_on(Timer::DelayedAck, Some(Instant::from_millis(10)), &mut w, 0);
        assert_eq!(t.earliest(), Some(Instant::from_millis(10)));
        assert_eq!(Timers::default().earliest(), None);
        assert_eq!(w.armed_at(0), Some(Instant::from_millis(10)));
        // Stopping a timer, even the last one, leaves the (early) entry.
        t.set_on(Timer::DelayedAck, None, &mut w, 0);
        assert_eq!(w.armed_at(0), Some(Instant::from_millis(10)));
        t.set_on(Timer::Rto, None, &mut w, 0);
        assert_eq!(w.armed_at(0), Some(Instant::from_millis(10)));
        assert_eq!(t.earliest(), None);
        // It fires once, finds nothing due and is not put back.
        let mut out = Vec::new();
        w.expire(Instant::from_millis(10), &mut out);
        assert_eq!(out, vec![0]);
        let mut up = WheelUpdate::default();
        t.rearm(&mut up);
        up.apply(&mut w, 0);
        assert_eq!(w.armed_at(0), None);
        assert!(w.is_empty());
        // Stopping everything (the connection ended) removes it at once.
        t.set_on(Timer::Rto, Some(Instant::from_millis(30)), &mut w, 0);
        t.stop_all(&mut w, 0);
        assert_eq!(w.armed_at(0), None);
    }
}
