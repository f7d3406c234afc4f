//! The per-core chunk pool and the socket buffers built on it.
//!
//! One big byte arena is allocated at start-up and cut into fixed-size chunks
//! (2 KiB by default) named by `u32` ids. Free chunks form an intrusive list
//! through the `next` array; the same array links the chunks of a socket
//! buffer into a chain. A [`SendBuffer`] or [`RecvBuffer`] is a handful of
//! integers in the TCB (head chunk, chunk count, lengths; the chain's tail,
//! start offset and cursor are kept in the pool at its head chunk): it takes
//! chunks lazily when data is queued and gives them back as soon as they are
//! drained, so an idle connection holds no chunk at all.
//!
//! Pool exhaustion is an ordinary outcome ([`PoolExhausted`]): the caller
//! shrinks the receive window or answers `WouldBlock` to a write.
//!
//! Fair sharing (what Linux's `tcp_mem` does for the whole kernel):
//!
//! * A **reserve** of `capacity / 16` chunks is kept for buffers that hold
//!   fewer than [`RESERVE_HOLDER`] chunks: the first bytes of a new
//!   connection's request, a small write, an echo's answer. A buffer that
//!   already holds more cannot take the last reserve chunks, so slow
//!   readers filling the pool never starve everyone else.
//! * **Pressure**: once fewer than a quarter of the chunks are free (until a
//!   third are free again) the pool is under pressure ([`PoolView`]): a
//!   receive window may then only grow for a buffer holding fewer than
//!   [`PRESSURE_WINDOW_CHUNKS`] chunks. The right edge already advertised
//!   is never retracted; the largest holders just stop being offered more.

use core::cell::Cell;
use core::fmt;

/// "No chunk" in a chain or in the free list.
pub(crate) const NIL: u32 = u32::MAX;

/// Buffers holding fewer chunks than this may use the pool's reserve.
pub(crate) const RESERVE_HOLDER: usize = 2;

/// Under pressure, a receive window grows only while its buffer holds
/// fewer chunks than this (Linux clamps to 4 MSS under `tcp_mem`
/// pressure).
pub(crate) const PRESSURE_WINDOW_CHUNKS: usize = 4;

/// What the receive-window computation needs to know of the pool, taken
/// once per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolView {
    free: usize,
    reserve: usize,
    chunk_size: usize,
    pressure: bool,
}

impl PoolView {
    /// The bytes a receive buffer holding `held` chunks may be offered
    /// beyond what it holds: the free chunks (less the reserve for a large
    /// holder), and under pressure nothing past
    /// [`PRESSURE_WINDOW_CHUNKS`] in all.
    pub(crate) fn window_bytes(&self, held: usize) -> usize {
        let chunks = if held < RESERVE_HOLDER {
            self.free
        } else {
            self.free.saturating_sub(self.reserve)
        };
        let chunks = if self.pressure {
            chunks.min(PRESSURE_WINDOW_CHUNKS.saturating_sub(held))
        } else {
            chunks
        };
        chunks * self.chunk_size
    }
}

/// The pool has no free chunk left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolExhausted;

impl fmt::Display for PoolExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer pool exhausted")
    }
}

/// A per-core pool of fixed-size byte chunks in one preallocated arena.
pub(crate) struct ChunkPool {
    arena: Vec<u8>,
    next: Vec<u32>,
    /// Per chunk: the state of the chain it heads (valid at head chunks).
    meta: Vec<Cell<ChainMeta>>,
    free_head: u32,
    free: usize,
    chunk_size: usize,
    reserve: usize,
    pressure: bool,
    pressure_entered: u64,
    reserve_refused: u64,
}

impl fmt::Debug for ChunkPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkPool")
            .field("chunk_size", &self.chunk_size)
            .field("capacity", &self.capacity())
            .field("free", &self.free)
            .finish()
    }
}

impl ChunkPool {
    /// A pool of `count` chunks of `chunk_size` bytes each.
    ///
    /// # Panics
    /// Panics when `chunk_size` is zero or `count` does not fit a `u32` id
    /// (configuration is validated before this is called).
    pub(crate) fn new(chunk_size: usize, count: usize) -> ChunkPool {
        assert!(chunk_size > 0, "chunk size must be positive");
        assert!(count < NIL as usize, "too many chunks");
        let next = (0..count)
            .map(|i| if i + 1 < count { i as u32 + 1 } else { NIL })
            .collect();
        ChunkPool {
            arena: vec![0; chunk_size * count],
            next,
            meta: vec![Cell::new(ChainMeta::EMPTY); count],
            free_head: if count > 0 { 0 } else { NIL },
            free: count,
            chunk_size,
            reserve: count / 16,
            pressure: false,
            pressure_entered: 0,
            reserve_refused: 0,
        }
    }

    /// Chunks kept for buffers holding fewer than [`RESERVE_HOLDER`].
    #[cfg(test)]
    pub(crate) fn reserve(&self) -> usize {
        self.reserve
    }

    /// True while fewer than a quarter of the chunks are free (until a
    /// third are free again).
    pub(crate) fn under_pressure(&self) -> bool {
        self.pressure
    }

    /// Times the pool went under pressure.
    pub(crate) fn pressure_entered(&self) -> u64 {
        self.pressure_entered
    }

    /// Chunk requests of large holders refused to keep the reserve.
    pub(crate) fn reserve_refused(&self) -> u64 {
        self.reserve_refused
    }

    /// True when a buffer holding `held` chunks may take one more.
    pub(crate) fn can_alloc(&self, held: usize) -> bool {
        self.free > 0 && (held < RESERVE_HOLDER || self.free > self.reserve)
    }

    /// The pool as the receive-window computation sees it.
    pub(crate) fn view(&self) -> PoolView {
        PoolView {
            free: self.free,
            reserve: self.reserve,
            chunk_size: self.chunk_size,
            pressure: self.pressure,
        }
    }

    fn update_pressure(&mut self) {
        let cap = self.capacity();
        if !self.pressure && self.free * 4 < cap {
            self.pressure = true;
            self.pressure_entered += 1;
        } else if self.pressure && self.free * 3 >= cap {
            self.pressure = false;
        }
    }

    /// Takes a chunk for a buffer that holds `held` chunks: a large holder
    /// may not take the reserve.
    fn alloc_for(&mut self, held: usize) -> Result<u32, PoolExhausted> {
        if self.free > 0 && !self.can_alloc(held) {
            self.reserve_refused += 1;
            return Err(PoolExhausted);
        }
        self.alloc()
    }

    /// Bytes per chunk.
    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Total number of chunks.
    pub(crate) fn capacity(&self) -> usize {
        self.next.len()
    }

    /// Chunks currently free.
    #[cfg(test)]
    pub(crate) fn free_chunks(&self) -> usize {
        self.free
    }

    /// Chunks currently held by buffers.
    pub(crate) fn in_use(&self) -> usize {
        self.capacity() - self.free
    }

    fn alloc(&mut self) -> Result<u32, PoolExhausted> {
        let c = self.free_head;
        if c == NIL {
            return Err(PoolExhausted);
        }
        self.free_head = self.next[c as usize];
        self.next[c as usize] = NIL;
        self.free -= 1;
        self.update_pressure();
        Ok(c)
    }

    fn release(&mut self, c: u32) {
        self.next[c as usize] = self.free_head;
        self.free_head = c;
        self.free += 1;
        self.update_pressure();
    }

    fn chunk(&self, c: u32) -> &[u8] {
        let s = c as usize * self.chunk_size;
        &self.arena[s..s + self.chunk_size]
    }

    fn chunk_mut(&mut self, c: u32) -> &mut [u8] {
        let s = c as usize * self.chunk_size;
        &mut self.arena[s..s + self.chunk_size]
    }
}

/// What a chain keeps beyond its head and chunk count: the tail chunk, the
/// offset of logical byte 0 in the head chunk, and the cursor (the last
/// chunk reached and its position in the chain), so that sequential access
/// — the next segment to send, the next in-order write — does not walk the
/// chain from its head every time.
///
/// It lives in the pool, in the entry of the chain's head chunk, and moves
/// when the head chunk is given back: a chain without chunks (every idle
/// connection's two buffers) has none, and the TCB holds only the 8-byte
/// [`Chain`] handle.
#[derive(Debug, Clone, Copy)]
struct ChainMeta {
    tail: u32,
    start: u32,
    cursor: (u32, u32),
}

impl ChainMeta {
    const EMPTY: ChainMeta = ChainMeta {
        tail: NIL,
        start: 0,
        cursor: (NIL, 0),
    };
}

/// A chain of chunks holding a byte stream that starts `start` bytes into
/// the head chunk. Logical offset 0 is the first byte of the stream. The
/// rest of its state is the [`ChainMeta`] at its head chunk.
#[derive(Debug, Clone)]
struct Chain {
    head: u32,
    chunks: u32,
}

impl Chain {
    const fn empty() -> Chain {
        Chain {
            head: NIL,
            chunks: 0,
        }
    }

    /// The chain's state beyond the handle (empty for a chain without
    /// chunks).
    #[inline]
    fn meta(&self, pool: &ChunkPool) -> ChainMeta {
        if self.head == NIL {
            ChainMeta::EMPTY
        } else {
            pool.meta[self.head as usize].get()
        }
    }

    /// The offset of logical byte 0 in the head chunk.
    #[inline]
    fn start(&self, pool: &ChunkPool) -> usize {
        self.meta(pool).start as usize
    }

    /// The chunk holding logical offset `off` and the offset within it (NIL
    /// past the tail). The chain's state is read once; a position past the
    /// head chunk is reached from the cursor when it is not beyond it, and
    /// becomes the cursor.
    #[inline]
    fn locate(&self, pool: &ChunkPool, off: usize) -> (u32, usize) {
        if self.head == NIL {
            return (NIL, 0);
        }
        let cs = pool.chunk_size;
        let cell = &pool.meta[self.head as usize];
        let mut m = cell.get();
        let pos = off + m.start as usize;
        let (k, pos) = ((pos / cs) as u32, pos % cs);
        if k == 0 {
            return (self.head, pos);
        }
        let (cc, ci) = m.cursor;
        let (mut c, mut i) = if cc != NIL && ci <= k {
            (cc, ci)
        } else {
            (self.head, 0)
        };
        while i < k && c != NIL {
            c = pool.next[c as usize];
            i += 1;
        }
        if c != NIL {
            m.cursor = (c, i);
            cell.set(m);
        }
        (c, pos)
    }

    /// Grows the chain towards `end` bytes addressable from logical offset
    /// 0 (to the end of the tail chunk) as far as the pool allows; returns
    /// the room reached.
    fn grow(&mut self, pool: &mut ChunkPool, end: usize) -> usize {
        // Growing at the tail leaves the head's start where it is.
        let start = self.start(pool);
        let mut room = (self.chunks as usize * pool.chunk_size).saturating_sub(start);
        while room < end {
            let Ok(c) = pool.alloc_for(self.chunks as usize) else {
                break;
            };
            if self.head == NIL {
                self.head = c;
                pool.meta[c as usize].set(ChainMeta {
                    tail: c,
                    ..ChainMeta::EMPTY
                });
            } else {
                let cell = &pool.meta[self.head as usize];
                let mut m = cell.get();
                pool.next[m.tail as usize] = c;
                m.tail = c;
                cell.set(m);
            }
            self.chunks += 1;
            room += pool.chunk_size;
        }
        room
    }

    /// Grows the chain until `end` bytes from offset 0 are addressable.
    fn reserve(&mut self, pool: &mut ChunkPool, end: usize) -> Result<(), PoolExhausted> {
        if self.grow(pool, end) >= end {
            Ok(())
        } else {
            Err(PoolExhausted)
        }
    }

    /// Calls `f(chunk, offset_in_chunk, len)` for the pieces of `[off, off+len)`.
    fn walk(&self, pool: &ChunkPool, off: usize, len: usize, mut f: impl FnMut(u32, usize, usize)) {
        let cs = pool.chunk_size;
        let (mut c, mut pos) = self.locate(pool, off);
        let mut left = len;
        while left > 0 && c != NIL {
            let n = left.min(cs - pos);
            f(c, pos, n);
            left -= n;
            pos = 0;
            c = pool.next[c as usize];
        }
    }

    fn copy_in(&self, pool: &mut ChunkPool, off: usize, data: &[u8]) {
        // An index-based loop, because `walk` would borrow the pool.
        let mut done = 0;
        let cs = pool.chunk_size;
        let (mut c, mut pos) = self.locate(pool, off);
        while done < data.len() && c != NIL {
            let n = (data.len() - done).min(cs - pos);
            pool.chunk_mut(c)[pos..pos + n].copy_from_slice(&data[done..done + n]);
            done += n;
            pos = 0;
            c = pool.next[c as usize];
        }
    }

    fn copy_out(&self, pool: &ChunkPool, off: usize, buf: &mut [u8]) {
        let mut done = 0;
        self.walk(pool, off, buf.len(), |c, pos, n| {
            buf[done..done + n].copy_from_slice(&pool.chunk(c)[pos..pos + n]);
            done += n;
        });
    }

    /// Drops `n` bytes from the front, releasing chunks left empty; the
    /// chain's state moves to the new head chunk.
    fn advance(&mut self, pool: &mut ChunkPool, n: usize) {
        let cs = pool.chunk_size;
        let mut m = self.meta(pool);
        let mut pos = m.start as usize + n;
        let mut dropped = 0;
        while pos >= cs && self.head != NIL {
            let c = self.head;
            self.head = pool.next[c as usize];
            pool.release(c);
            self.chunks -= 1;
            pos -= cs;
            dropped += 1;
        }
        if self.head == NIL {
            *self = Chain::empty();
            return;
        }
        let (cc, ci) = m.cursor;
        m.cursor = if cc != NIL && ci >= dropped {
            (cc, ci - dropped)
        } else {
            (NIL, 0)
        };
        m.start = pos as u32;
        pool.meta[self.head as usize].set(m);
    }

    fn clear(&mut self, pool: &mut ChunkPool) {
        let mut c = self.head;
        while c != NIL {
            let n = pool.next[c as usize];
            pool.release(c);
            c = n;
        }
        *self = Chain::empty();
    }
}

/// The send buffer of one connection: bytes written by the user and not yet
/// acknowledged. Offset 0 is SND.UNA (of data; SYN and FIN are not stored).
#[derive(Debug, Clone)]
pub(crate) struct SendBuffer {
    chain: Chain,
    /// Bytes queued: at most the send limit, a `u32`.
    len: u32,
}

impl Default for SendBuffer {
    fn default() -> SendBuffer {
        SendBuffer::new()
    }
}

impl SendBuffer {
    /// An empty buffer holding no chunk.
    pub(crate) const fn new() -> SendBuffer {
        SendBuffer {
            chain: Chain::empty(),
            len: 0,
        }
    }

    /// Bytes queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Chunks held.
    pub(crate) fn chunks(&self) -> usize {
        self.chain.chunks as usize
    }

    /// Appends as much of `data` as the pool allows; returns the count.
    ///
    /// # Errors
    /// [`PoolExhausted`] when not a single byte could be queued.
    pub(crate) fn append(
        &mut self,
        pool: &mut ChunkPool,
        data: &[u8],
    ) -> Result<usize, PoolExhausted> {
        if data.is_empty() {
            return Ok(0);
        }
        let len = self.len();
        // A u32 of bytes at most (the caller keeps below the send limit).
        let want = len + data.len().min((u32::MAX as usize) - len);
        let n = self.chain.grow(pool, want).min(want) - len;
        if n == 0 {
            return Err(PoolExhausted);
        }
        self.chain.copy_in(pool, len, &data[..n]);
        self.len = (len + n) as u32;
        Ok(n)
    }

    /// Copies bytes from `offset` into `buf`; returns how many were copied.
    pub(crate) fn read_at(&self, pool: &ChunkPool, offset: usize, buf: &mut [u8]) -> usize {
        let len = self.len();
        if offset >= len {
            return 0;
        }
        let n = buf.len().min(len - offset);
        self.chain.copy_out(pool, offset, &mut buf[..n]);
        n
    }

    /// Drops `n` acknowledged bytes from the front (clamped to the length).
    pub(crate) fn consume(&mut self, pool: &mut ChunkPool, n: usize) {
        let n = n.min(self.len());
        self.len -= n as u32;
        if self.len == 0 {
            self.chain.clear(pool);
        } else {
            self.chain.advance(pool, n);
        }
    }

    /// Gives every chunk back.
    pub(crate) fn clear(&mut self, pool: &mut ChunkPool) {
        self.chain.clear(pool);
        self.len = 0;
    }
}

/// The receive buffer of one connection. Offset 0 is the next byte the user
/// reads; `[0, len)` is contiguous, readable data; bytes may also be written
/// beyond `len` (out-of-order data, bounded by the advertised window), whose
/// validity the caller tracks with the reassembly `Assembler`.
#[derive(Debug, Clone)]
pub(crate) struct RecvBuffer {
    chain: Chain,
    /// Readable bytes; with `high`, at most the receive limit plus the
    /// window, so `u32`s hold both.
    len: u32,
    /// End of the highest byte ever written, relative to offset 0.
    high: u32,
}

impl Default for RecvBuffer {
    fn default() -> RecvBuffer {
        RecvBuffer::new()
    }
}

impl RecvBuffer {
    /// An empty buffer holding no chunk.
    pub(crate) const fn new() -> RecvBuffer {
        RecvBuffer {
            chain: Chain::empty(),
            len: 0,
            high: 0,
        }
    }

    /// Contiguous bytes ready to be read.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// True when nothing is readable.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Chunks held.
    pub(crate) fn chunks(&self) -> usize {
        self.chain.chunks as usize
    }

    /// Chunks that hold only bytes beyond the contiguous end (out of order).
    pub(crate) fn ooo_chunks(&self, pool: &ChunkPool) -> usize {
        let cs = pool.chunk_size;
        let used = (self.chain.start(pool) + self.len()).div_ceil(cs);
        self.chunks().saturating_sub(used)
    }

    /// Writes `data` at `offset` (which may be beyond `len`).
    ///
    /// # Errors
    /// [`PoolExhausted`] when the chunks to hold it cannot be taken; chunks
    /// taken on the way are kept (they hold nothing yet and are reused).
    pub(crate) fn write_at(
        &mut self,
        pool: &mut ChunkPool,
        offset: usize,
        data: &[u8],
    ) -> Result<(), PoolExhausted> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len();
        let Ok(end32) = u32::try_from(end) else {
            // Past any window: no chunk could be taken for it either.
            return Err(PoolExhausted);
        };
        self.chain.reserve(pool, end)?;
        self.chain.copy_in(pool, offset, data);
        self.high = self.high.max(end32);
        Ok(())
    }

    /// Marks `n` more bytes (already written) as contiguous and readable.
    pub(crate) fn commit(&mut self, n: usize) {
        self.len = u32::try_from(self.len() + n).unwrap_or(u32::MAX);
        self.high = self.high.max(self.len);
    }

    /// Copies up to `buf.len()` readable bytes out without consuming them.
    pub(crate) fn peek(&self, pool: &ChunkPool, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len());
        if n > 0 {
            self.chain.copy_out(pool, 0, &mut buf[..n]);
        }
        n
    }

    /// Copies up to `buf.len()` readable bytes out and consumes them.
    pub(crate) fn read(&mut self, pool: &mut ChunkPool, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len());
        if n == 0 {
            return 0;
        }
        self.chain.copy_out(pool, 0, &mut buf[..n]);
        self.len -= n as u32;
        self.high -= n as u32;
        if self.high == 0 {
            self.chain.clear(pool);
        } else {
            self.chain.advance(pool, n);
        }
        n
    }

    /// Drops up to `n` readable bytes without copying them; returns the count.
    pub(crate) fn discard(&mut self, pool: &mut ChunkPool, n: usize) -> usize {
        let n = n.min(self.len());
        if n == 0 {
            return 0;
        }
        self.len -= n as u32;
        self.high -= n as u32;
        if self.high == 0 {
            self.chain.clear(pool);
        } else {
            self.chain.advance(pool, n);
        }
        n
    }

    /// Gives every chunk back and forgets all data.
    pub(crate) fn clear(&mut self, pool: &mut ChunkPool) {
        self.chain.clear(pool);
        self.len = 0;
        self.high = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn an_empty_buffer_is_a_handful_of_words() {
        // docs/benchmarks.md counts 12 and 16 bytes in the TCB: the rest of
        // a chain's state lives at its head chunk.
        assert_eq!(core::mem::size_of::<SendBuffer>(), 12);
        assert_eq!(core::mem::size_of::<RecvBuffer>(), 16);
    }

    #[test]
    fn a_chain_keeps_its_state_as_its_head_chunk_is_given_back() {
        let mut p = ChunkPool::new(16, 8);
        let mut sb = SendBuffer::new();
        let data = pattern(100, 9);
        assert_eq!(sb.append(&mut p, &data).unwrap(), 100);
        // Consume in steps that cross chunk boundaries; each step moves the
        // head (and the chain's state) to a later chunk.
        let mut off = 0;
        for step in [5, 11, 16, 1, 30] {
            sb.consume(&mut p, step);
            off += step;
            let mut out = vec![0; 100 - off];
            assert_eq!(sb.read_at(&p, 0, &mut out), 100 - off);
            assert_eq!(out, &data[off..], "after {off}");
            assert_eq!(sb.chunks(), (off % 16 + 100 - off).div_ceil(16));
        }
        // Appending after the head moved links at the tail.
        assert_eq!(sb.append(&mut p, &data[..20]).unwrap(), 20);
        let mut out = vec![0; 20];
        assert_eq!(sb.read_at(&p, 100 - off, &mut out), 20);
        assert_eq!(out, &data[..20]);
        sb.clear(&mut p);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn pool_alloc_release_counts() {
        let mut p = ChunkPool::new(64, 3);
        assert_eq!(p.free_chunks(), 3);
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        let c = p.alloc().unwrap();
        assert_eq!(p.alloc(), Err(PoolExhausted));
        assert_eq!(p.in_use(), 3);
        p.release(b);
        p.release(a);
        p.release(c);
        assert_eq!(p.free_chunks(), 3);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn send_append_peek_consume_across_chunks() {
        let mut p = ChunkPool::new(16, 10);
        let mut sb = SendBuffer::new();
        assert_eq!(sb.chunks(), 0);
        let data = pattern(100, 3);
        assert_eq!(sb.append(&mut p, &data[..37]).unwrap(), 37);
        assert_eq!(sb.append(&mut p, &data[37..]).unwrap(), 63);
        assert_eq!(sb.len(), 100);
        assert_eq!(sb.chunks(), 7);
        let mut out = [0u8; 30];
        assert_eq!(sb.read_at(&p, 10, &mut out), 30);
        assert_eq!(&out[..], &data[10..40]);
        assert_eq!(sb.read_at(&p, 90, &mut out), 10);
        assert_eq!(&out[..10], &data[90..]);
        sb.consume(&mut p, 33);
        assert_eq!(sb.chunks(), 5);
        assert_eq!(sb.read_at(&p, 0, &mut out), 30);
        assert_eq!(&out[..], &data[33..63]);
        sb.consume(&mut p, 67);
        assert!(sb.is_empty());
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn send_append_partial_when_pool_runs_out() {
        let mut p = ChunkPool::new(16, 2);
        let mut sb = SendBuffer::new();
        assert_eq!(sb.append(&mut p, &pattern(40, 1)).unwrap(), 32);
        assert_eq!(sb.append(&mut p, b"x"), Err(PoolExhausted));
        sb.consume(&mut p, 16);
        assert_eq!(sb.append(&mut p, &pattern(40, 1)).unwrap(), 16);
        sb.clear(&mut p);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn recv_in_order_and_out_of_order() {
        let mut p = ChunkPool::new(16, 10);
        let mut rb = RecvBuffer::new();
        let data = pattern(80, 9);
        // Out of order first: bytes 40..80.
        rb.write_at(&mut p, 40, &data[40..]).unwrap();
        assert_eq!(rb.len(), 0);
        assert_eq!(rb.ooo_chunks(&p), 5);
        rb.write_at(&mut p, 0, &data[..40]).unwrap();
        rb.commit(80);
        assert_eq!(rb.ooo_chunks(&p), 0);
        let mut out = vec![0u8; 50];
        assert_eq!(rb.read(&mut p, &mut out), 50);
        assert_eq!(&out[..], &data[..50]);
        assert_eq!(rb.read(&mut p, &mut out), 30);
        assert_eq!(&out[..30], &data[50..]);
        assert_eq!(rb.chunks(), 0);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn recv_keeps_ooo_chunks_after_front_drained() {
        let mut p = ChunkPool::new(16, 10);
        let mut rb = RecvBuffer::new();
        rb.write_at(&mut p, 0, &[1; 10]).unwrap();
        rb.commit(10);
        rb.write_at(&mut p, 40, &[2; 8]).unwrap();
        let mut out = [0u8; 10];
        assert_eq!(rb.read(&mut p, &mut out), 10);
        assert!(rb.chunks() > 0);
        rb.write_at(&mut p, 0, &[3; 30]).unwrap();
        rb.commit(38);
        let mut all = [0u8; 38];
        assert_eq!(rb.read(&mut p, &mut all), 38);
        assert_eq!(&all[30..], &[2; 8]);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn random_ops_match_a_model() {
        let mut rng = crate::rand::Rng::new(5);
        let mut p = ChunkPool::new(64, 64);
        let mut sb = SendBuffer::new();
        let mut model: std::collections::VecDeque<u8> = Default::default();
        let mut next = 0u8;
        for _ in 0..20_000 {
            match rng.range(0, 3) {
                0 => {
                    let n = rng.range(0, 300) as usize;
                    let data: Vec<u8> = (0..n)
                        .map(|_| {
                            next = next.wrapping_add(1);
                            next
                        })
                        .collect();
                    let took = sb.append(&mut p, &data).unwrap_or(0);
                    model.extend(&data[..took]);
                    next = next.wrapping_sub((n - took) as u8);
                }
                1 => {
                    let n = rng.range(0, 200) as usize;
                    sb.consume(&mut p, n);
                    for _ in 0..n.min(model.len()) {
                        model.pop_front();
                    }
                }
                _ => {
                    let off = rng.range(0, model.len() as u64 + 1) as usize;
                    let mut buf = vec![0u8; rng.range(0, 200) as usize];
                    let n = sb.read_at(&p, off, &mut buf);
                    let want: Vec<u8> = model.iter().skip(off).take(buf.len()).copied().collect();
                    assert_eq!(&buf[..n], &want[..]);
                }
            }
            assert_eq!(sb.len(), model.len());
        }
        sb.clear(&mut p);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn reserve_is_kept_for_small_holders() {
        // 64 chunks: a reserve of 4.
        let mut p = ChunkPool::new(16, 64);
        assert_eq!(p.reserve(), 4);
        let mut big = SendBuffer::new();
        // A large holder fills the pool down to the reserve, no further.
        assert_eq!(big.append(&mut p, &[1; 64 * 16]).unwrap(), 60 * 16);
        assert_eq!(p.free_chunks(), 4);
        assert_eq!(big.append(&mut p, &[1; 16]), Err(PoolExhausted));
        assert!(p.reserve_refused() > 0);
        // Small holders (a new request, a small answer) still get chunks.
        let mut rb = RecvBuffer::new();
        rb.write_at(&mut p, 0, &[2; 32]).unwrap();
        rb.commit(32);
        let mut sb = SendBuffer::new();
        assert_eq!(sb.append(&mut p, &[3; 20]).unwrap(), 20);
        assert_eq!(p.free_chunks(), 0);
        big.clear(&mut p);
        rb.clear(&mut p);
        sb.clear(&mut p);
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn pressure_has_hysteresis_and_limits_window_growth() {
        let mut p = ChunkPool::new(16, 64);
        let mut sb = SendBuffer::new();
        sb.append(&mut p, &[0; 48 * 16]).unwrap();
        assert!(!p.under_pressure());
        assert_eq!(p.view().window_bytes(0), 16 * 16);
        assert_eq!(p.view().window_bytes(10), 12 * 16);
        sb.append(&mut p, &[0; 16]).unwrap();
        // 15 of 64 free: under pressure.
        assert!(p.under_pressure());
        assert_eq!(p.pressure_entered(), 1);
        assert_eq!(p.view().window_bytes(0), PRESSURE_WINDOW_CHUNKS * 16);
        assert_eq!(p.view().window_bytes(3), 16);
        assert_eq!(p.view().window_bytes(PRESSURE_WINDOW_CHUNKS), 0);
        // Still under pressure until a third is free.
        sb.consume(&mut p, 16 * 6);
        assert_eq!(p.free_chunks(), 21);
        assert!(p.under_pressure());
        sb.consume(&mut p, 16);
        assert!(!p.under_pressure());
        assert_eq!(p.pressure_entered(), 1);
        sb.clear(&mut p);
    }

    #[test]
    fn recv_write_fails_cleanly_on_exhaustion() {
        let mut p = ChunkPool::new(16, 2);
        let mut rb = RecvBuffer::new();
        assert_eq!(rb.write_at(&mut p, 0, &[0; 40]), Err(PoolExhausted));
        rb.clear(&mut p);
        assert_eq!(p.in_use(), 0);
    }
}
