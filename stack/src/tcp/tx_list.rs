//! The transmit priority lists of mTCP: `control_list` (SYN, SYN-ACK, FIN,
//! RST), `ack_list` (pure ACKs, window updates) and `send_list` (data).
//!
//! Each list is a FIFO of socket ids preallocated to the socket count; an id
//! sits in a list at most once, guarded by an `on_*_list` bit kept on the TCB
//! (see [`ListFlags`]). `dispatch` drains the lists in that order within a
//! per-tick budget; output is pulled from the TCBs queued, not pushed per
//! write.

use super::types::SocketId;
use std::collections::VecDeque;

/// The `on_*_list` bits of a TCB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ListFlags(pub u8);

impl ListFlags {
    /// On the control list.
    pub(crate) const ON_CONTROL_LIST: u8 = 1;
    /// On the ACK list.
    pub(crate) const ON_ACK_LIST: u8 = 2;
    /// On the send (data) list.
    pub(crate) const ON_SEND_LIST: u8 = 4;

    /// True when `bit` is set.
    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxKind {
    /// SYN, SYN-ACK, FIN, RST.
    Control,
    /// Pure ACKs and window updates.
    Ack,
    /// Data.
    Send,
}

impl TxKind {
    /// The TCB bit guarding this list.
    pub(crate) fn bit(self) -> u8 {
        match self {
            TxKind::Control => ListFlags::ON_CONTROL_LIST,
            TxKind::Ack => ListFlags::ON_ACK_LIST,
            TxKind::Send => ListFlags::ON_SEND_LIST,
        }
    }
}

/// The room a list (and the event queue) starts with. It grows, doubling,
/// to the most sockets ever queued on it at once (at most every socket,
/// each being queued once) and never shrinks, so a steady load allocates
/// nothing; sized for every socket from the start, each list of a stack
/// holding a million idle connections kept, and touched as its ring
/// wrapped during the handshakes, 8 bytes per connection.
pub(crate) const START_ROOM: usize = 1024;

/// One FIFO of socket ids.
#[derive(Debug)]
pub(crate) struct TxList {
    queue: VecDeque<SocketId>,
    bit: u8,
}

impl TxList {
    /// A list guarded by `bit`, for up to `capacity` ids (room for
    /// [`START_ROOM`] of them at first).
    pub(crate) fn new(bit: u8, capacity: usize) -> TxList {
        TxList {
            queue: VecDeque::with_capacity(capacity.min(START_ROOM)),
            bit,
        }
    }

    /// Queues `id` unless `flags` says it is already queued.
    /// Returns true when it was added.
    pub(crate) fn push(&mut self, id: SocketId, flags: &mut ListFlags) -> bool {
        if flags.has(self.bit) {
            return false;
        }
        flags.0 |= self.bit;
        self.queue.push_back(id);
        true
    }

    /// Puts `id` back at the front (output stopped for lack of frames).
    pub(crate) fn push_front(&mut self, id: SocketId, flags: &mut ListFlags) {
        if !flags.has(self.bit) {
            flags.0 |= self.bit;
            self.queue.push_front(id);
        }
    }

    /// The next id; the caller clears the bit on that TCB (when the id is
    /// still valid).
    pub(crate) fn pop(&mut self) -> Option<SocketId> {
        self.queue.pop_front()
    }

    /// Clears this list's bit in `flags`.
    #[cfg(test)]
    pub(crate) fn clear_flag(&self, flags: &mut ListFlags) {
        flags.0 &= !self.bit;
    }

    /// Ids queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// The three lists.
#[derive(Debug)]
pub(crate) struct TxLists {
    /// `control_list`.
    pub control: TxList,
    /// `ack_list`.
    pub ack: TxList,
    /// `send_list`.
    pub send: TxList,
}

impl TxLists {
    /// Lists sized for `capacity` sockets.
    pub(crate) fn new(capacity: usize) -> TxLists {
        TxLists {
            control: TxList::new(ListFlags::ON_CONTROL_LIST, capacity),
            ack: TxList::new(ListFlags::ON_ACK_LIST, capacity),
            send: TxList::new(ListFlags::ON_SEND_LIST, capacity),
        }
    }

    /// Queues `id` on each list of `bits` ([`TxKind::bit`] bits) it is not
    /// on yet, in priority order, setting their bits in `flags`.
    #[inline]
    pub(crate) fn join(&mut self, id: SocketId, flags: &mut ListFlags, bits: u8) {
        let new = bits & !flags.0;
        if new == 0 {
            return;
        }
        flags.0 |= new;
        if new & ListFlags::ON_CONTROL_LIST != 0 {
            self.control.queue.push_back(id);
        }
        if new & ListFlags::ON_ACK_LIST != 0 {
            self.ack.queue.push_back(id);
        }
        if new & ListFlags::ON_SEND_LIST != 0 {
            self.send.queue.push_back(id);
        }
    }

    /// The list of `kind`.
    pub(crate) fn get(&mut self, kind: TxKind) -> &mut TxList {
        match kind {
            TxKind::Control => &mut self.control,
            TxKind::Ack => &mut self.ack,
            TxKind::Send => &mut self.send,
        }
    }

    /// True when all lists are empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.control.is_empty() && self.ack.is_empty() && self.send.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_queued_once_per_list() {
        let mut lists = TxLists::new(4);
        let mut f = ListFlags::default();
        let id = SocketId::new(3, 1);
        assert!(lists.ack.push(id, &mut f));
        assert!(!lists.ack.push(id, &mut f));
        assert!(lists.send.push(id, &mut f));
        assert!(lists.control.push(id, &mut f));
        assert_eq!(lists.ack.len(), 1);
        assert_eq!(lists.ack.pop(), Some(id));
        lists.ack.clear_flag(&mut f);
        assert!(!f.has(ListFlags::ON_ACK_LIST));
        assert!(f.has(ListFlags::ON_SEND_LIST));
        assert!(lists.ack.push(id, &mut f));
        lists.get(TxKind::Ack).pop();
        lists.ack.clear_flag(&mut f);
        lists.ack.push_front(id, &mut f);
        assert_eq!(lists.ack.pop(), Some(id));
        assert!(!lists.is_empty());
    }

    #[test]
    fn a_list_starts_small_and_grows_to_its_peak() {
        let mut list = TxList::new(ListFlags::ON_SEND_LIST, 1_000_000);
        assert!(list.queue.capacity() < 2 * START_ROOM);
        let n = 3 * START_ROOM as u32;
        let mut flags = vec![ListFlags::default(); n as usize];
        for (i, f) in flags.iter_mut().enumerate() {
            assert!(list.push(SocketId::new(i as u32, 1), f));
        }
        let peak = list.queue.capacity();
        assert!(peak >= n as usize);
        for i in 0..n {
            assert_eq!(list.pop(), Some(SocketId::new(i, 1)));
        }
        // Emptied, it keeps its room: the next burst allocates nothing.
        assert!(list.is_empty());
        assert_eq!(list.queue.capacity(), peak);
    }

    #[test]
    fn join_queues_on_the_lists_not_joined_yet() {
        let mut lists = TxLists::new(4);
        let mut f = ListFlags::default();
        let (a, b) = (SocketId::new(1, 1), SocketId::new(2, 1));
        assert!(lists.send.push(a, &mut f));
        let all = ListFlags::ON_CONTROL_LIST | ListFlags::ON_ACK_LIST | ListFlags::ON_SEND_LIST;
        lists.join(a, &mut f, all);
        assert_eq!(f.0, all);
        assert_eq!(
            (lists.control.len(), lists.ack.len(), lists.send.len()),
            (1, 1, 1)
        );
        lists.join(a, &mut f, ListFlags::ON_ACK_LIST);
        assert_eq!(lists.ack.len(), 1);
        let mut g = ListFlags::default();
        lists.join(b, &mut g, ListFlags::ON_ACK_LIST);
        assert_eq!(g.0, ListFlags::ON_ACK_LIST);
        assert_eq!((lists.ack.pop(), lists.ack.pop()), (Some(a), Some(b)));
        assert_eq!(lists.send.len(), 1);
    }
}
