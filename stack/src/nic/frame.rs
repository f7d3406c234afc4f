//! Owned frame buffers and the per-core pool they come from.
//!
//! A [`Frame`] is a fixed-capacity buffer ([`FRAME_CAPACITY`] bytes, on the
//! heap) plus a length. A [`FramePool`] allocates all of its frames up front;
//! after construction, taking and returning frames never touches the
//! allocator. Frames move by value between the pool, the device and the
//! stack, so a buffer has exactly one owner at any time.

use core::fmt;

/// Bytes in every frame buffer: a full 1514-byte Ethernet frame plus room for
/// a VLAN tag and headroom, rounded to a power of two.
pub const FRAME_CAPACITY: usize = 2048;

/// An owned, fixed-capacity frame buffer with a length.
///
/// The bytes past `len` are unspecified (whatever the previous user left);
/// [`Frame::buffer_mut`] exposes the whole capacity so a device or an emitter
/// can write first and [`Frame::set_len`] after.
pub struct Frame {
    buf: Box<[u8; FRAME_CAPACITY]>,
    len: usize,
}

impl Frame {
    /// A new, empty frame. This allocates: on the data path take frames from
    /// a [`FramePool`] instead.
    pub fn new() -> Frame {
        Frame {
            buf: Box::new([0u8; FRAME_CAPACITY]),
            len: 0,
        }
    }

    /// The frame's bytes, `len` of them.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The frame's bytes, `len` of them, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// The whole buffer, `capacity()` bytes, regardless of `len`.
    #[inline]
    pub fn buffer_mut(&mut self) -> &mut [u8; FRAME_CAPACITY] {
        &mut self.buf
    }

    /// The whole buffer, `capacity()` bytes, regardless of `len`.
    #[inline]
    pub fn buffer(&self) -> &[u8; FRAME_CAPACITY] {
        &self.buf
    }

    /// The number of valid bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the frame holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the number of valid bytes.
    ///
    /// # Panics
    /// Panics when `len > capacity()`: that is a bug in the caller, never
    /// a property of received data.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= FRAME_CAPACITY,
            "frame length {len} exceeds capacity {FRAME_CAPACITY}"
        );
        self.len = len;
    }

    /// The buffer's capacity, [`FRAME_CAPACITY`].
    #[inline]
    pub const fn capacity(&self) -> usize {
        FRAME_CAPACITY
    }

    /// Replaces the contents with `data`.
    ///
    /// # Errors
    /// [`NicError::FrameTooLarge`](super::NicError::FrameTooLarge) when
    /// `data` does not fit; the frame is left unchanged.
    #[inline]
    pub fn copy_from(&mut self, data: &[u8]) -> Result<(), super::NicError> {
        let dst = self
            .buf
            .get_mut(..data.len())
            .ok_or(super::NicError::FrameTooLarge)?;
        dst.copy_from_slice(data);
        self.len = data.len();
        Ok(())
    }
}

impl Default for Frame {
    fn default() -> Frame {
        Frame::new()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame").field("len", &self.len).finish()
    }
}

/// A per-core pool of preallocated frames.
///
/// All frames are allocated by [`FramePool::new`]; `alloc` and `free` only
/// move boxes in and out of a preallocated free list. The pool is owned by
/// one core and is not shared.
pub struct FramePool {
    free: Vec<Frame>,
    capacity: usize,
    alloc_failures: u64,
}

impl FramePool {
    /// A pool holding `capacity` frames, all allocated now.
    pub fn new(capacity: usize) -> FramePool {
        let mut free = Vec::with_capacity(capacity);
        free.extend((0..capacity).map(|_| Frame::new()));
        FramePool {
            free,
            capacity,
            alloc_failures: 0,
        }
    }

    /// Takes a frame (with length 0), or `None` when the pool is empty; the
    /// failure is counted.
    #[inline]
    pub fn alloc(&mut self) -> Option<Frame> {
        match self.free.pop() {
            Some(mut f) => {
                f.len = 0;
                Some(f)
            }
            None => {
                self.alloc_failures += 1;
                None
            }
        }
    }

    /// Returns a frame to the pool.
    ///
    /// A frame beyond the pool's capacity (one that came from elsewhere) is
    /// released to the allocator instead, so the free list never grows.
    #[inline]
    pub fn free(&mut self, frame: Frame) {
        if self.free.len() < self.capacity {
            self.free.push(frame);
        }
    }

    /// Frames ready to be taken.
    #[inline]
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// The number of frames the pool was built with.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many times `alloc` found the pool empty.
    #[inline]
    pub fn alloc_failures(&self) -> u64 {
        self.alloc_failures
    }
}

impl fmt::Debug for FramePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramePool")
            .field("available", &self.free.len())
            .field("capacity", &self.capacity)
            .field("alloc_failures", &self.alloc_failures)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_and_views() {
        let mut f = Frame::new();
        assert!(f.is_empty());
        assert_eq!(f.capacity(), FRAME_CAPACITY);
        f.buffer_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
        f.set_len(4);
        assert_eq!(f.as_slice(), &[1, 2, 3, 4]);
        f.as_mut_slice()[0] = 9;
        assert_eq!(f.as_slice(), &[9, 2, 3, 4]);
        assert!(f.copy_from(&[0u8; FRAME_CAPACITY + 1]).is_err());
        assert_eq!(f.len(), 4);
        f.copy_from(&[7; 100]).unwrap();
        assert_eq!(f.len(), 100);
    }

    #[test]
    #[should_panic(expected = "exceeds capacity")]
    fn set_len_past_capacity_panics() {
        Frame::new().set_len(FRAME_CAPACITY + 1);
    }

    #[test]
    fn pool_alloc_free_and_failures() {
        let mut pool = FramePool::new(3);
        assert_eq!(pool.capacity(), 3);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        let mut c = pool.alloc().unwrap();
        assert_eq!(pool.available(), 0);
        assert!(pool.alloc().is_none());
        assert!(pool.alloc().is_none());
        assert_eq!(pool.alloc_failures(), 2);
        c.set_len(10);
        pool.free(c);
        // A frame from the pool always comes back empty.
        assert_eq!(pool.alloc().unwrap().len(), 0);
        pool.free(a);
        pool.free(b);
        // A foreign frame does not grow the pool.
        pool.free(Frame::new());
        pool.free(Frame::new());
        assert_eq!(pool.available(), 3);
    }

    #[test]
    fn pool_reuses_buffers_without_allocating() {
        let mut pool = FramePool::new(2);
        let f = pool.alloc().unwrap();
        let p = f.buffer().as_ptr();
        pool.free(f);
        let g = pool.alloc().unwrap();
        assert_eq!(g.buffer().as_ptr(), p);
        pool.free(g);
    }
}
