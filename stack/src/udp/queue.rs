//! A socket's receive queue: whole datagrams in arrival order, bounded in
//! count and in bytes, both allocated when the socket is bound. A datagram
//! that does not fit is refused (the caller counts it), the queue never
//! grows.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

#[derive(Debug, Clone, Copy)]
struct Meta {
    from: SocketAddrV4,
    len: usize,
}

/// Datagrams waiting for the application.
#[derive(Debug)]
pub(crate) struct RecvQueue {
    meta: VecDeque<Meta>,
    bytes: VecDeque<u8>,
    max_datagrams: usize,
    max_bytes: usize,
}

impl RecvQueue {
    pub(crate) fn new(max_datagrams: usize, max_bytes: usize) -> RecvQueue {
        RecvQueue {
            meta: VecDeque::with_capacity(max_datagrams),
            bytes: VecDeque::with_capacity(max_bytes),
            max_datagrams,
            max_bytes,
        }
    }

    /// Appends a datagram; false (nothing stored) when it does not fit.
    pub(crate) fn push(&mut self, from: SocketAddrV4, data: &[u8]) -> bool {
        if self.meta.len() >= self.max_datagrams || self.bytes.len() + data.len() > self.max_bytes {
            return false;
        }
        // Within the capacity reserved at bind: no allocation.
        self.bytes.extend(data.iter().copied());
        self.meta.push_back(Meta {
            from,
            len: data.len(),
        });
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Datagrams queued.
    pub(crate) fn len(&self) -> usize {
        self.meta.len()
    }

    /// Copies the oldest datagram into `buf` (truncated to its length) and
    /// removes it unless `peek`. Returns the bytes copied, the datagram's
    /// whole length and its source.
    pub(crate) fn pop(
        &mut self,
        buf: &mut [u8],
        peek: bool,
    ) -> Option<(usize, usize, SocketAddrV4)> {
        let m = *self.meta.front()?;
        let n = m.len.min(buf.len());
        let (a, b) = self.bytes.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        if !peek {
            self.meta.pop_front();
            self.bytes.drain(..m.len);
        }
        Some((n, m.len, m.from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddrV4 {
        SocketAddrV4::new([10, 0, 0, 2].into(), p)
    }

    #[test]
    fn keeps_boundaries_and_truncates() {
        let mut q = RecvQueue::new(4, 64);
        assert!(q.push(addr(1), b"hello"));
        assert!(q.push(addr(2), b"world!"));
        let mut buf = [0u8; 3];
        assert_eq!(q.pop(&mut buf, true), Some((3, 5, addr(1))));
        assert_eq!(q.pop(&mut buf, false), Some((3, 5, addr(1))));
        assert_eq!(&buf, b"hel");
        let mut big = [0u8; 16];
        assert_eq!(q.pop(&mut big, false), Some((6, 6, addr(2))));
        assert_eq!(&big[..6], b"world!");
        assert!(q.pop(&mut big, false).is_none());
    }

    #[test]
    fn full_by_count_or_bytes_refuses_without_growing() {
        let mut q = RecvQueue::new(2, 10);
        assert!(q.push(addr(1), b"12345"));
        assert!(!q.push(addr(1), b"123456"));
        assert!(q.push(addr(1), b""));
        assert!(!q.push(addr(1), b"1"));
        assert_eq!(q.len(), 2);
        assert!(q.bytes.capacity() >= 10);
        let cap = (q.bytes.capacity(), q.meta.capacity());
        // Wrapping around the ring keeps the reserved capacity.
        for i in 0..100u8 {
            let mut b = [0u8; 8];
            q.pop(&mut b, false);
            assert!(q.push(addr(1), &[i; 4]));
        }
        assert_eq!((q.bytes.capacity(), q.meta.capacity()), cap);
    }
}
