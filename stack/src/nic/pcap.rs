//! Packet capture: a classic pcap file writer and a queue wrapper that
//! records every frame received and sent.
//!
//! The format is the original libpcap one (magic `a1b2c3d4`, version 2.4,
//! link type Ethernet, microsecond timestamps), readable by tcpdump and
//! Wireshark. Timestamps come from the wall clock, read once per burst.
//!
//! Several queues (cores) may write one file: they share a
//! [`SharedPcapWriter`] behind a mutex, taken once per burst. Capture is a
//! debugging aid (`MTCP_PCAP`), not something to leave on for benchmarks.

use core::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{DeviceInfo, Frame, FramePool, NicQueue, QueueCounters};
use crate::time::Duration;

/// The classic pcap magic number (microsecond timestamps).
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length written in the header: frames are never cut.
pub const SNAPLEN: u32 = 65_535;

/// Writes a pcap stream.
pub struct PcapWriter {
    out: BufWriter<Box<dyn Write + Send>>,
    frames: u64,
    /// The first write error; later writes are skipped.
    error: Option<io::ErrorKind>,
}

/// A writer shared by several queues.
pub type SharedPcapWriter = Arc<Mutex<PcapWriter>>;

impl PcapWriter {
    /// Starts a pcap stream on `out`, writing the file header now.
    ///
    /// # Errors
    /// The error of writing the header.
    pub fn new(out: Box<dyn Write + Send>) -> io::Result<PcapWriter> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone = 0, sigfigs = 0
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            frames: 0,
            error: None,
        })
    }

    /// Creates (or truncates) the file at `path` and starts a pcap stream.
    ///
    /// # Errors
    /// The error of creating the file or writing the header.
    pub fn create(path: impl AsRef<Path>) -> io::Result<PcapWriter> {
        PcapWriter::new(Box::new(File::create(path)?))
    }

    /// Wraps the writer for sharing between queues.
    pub fn shared(self) -> SharedPcapWriter {
        Arc::new(Mutex::new(self))
    }

    /// Writes one record with timestamp `ts` (time since the Unix epoch).
    /// Frames longer than [`SNAPLEN`] are cut to it. After a write error,
    /// writes are skipped; [`PcapWriter::flush`] reports the error.
    pub fn write_frame(&mut self, ts: Duration, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let caplen = data.len().min(SNAPLEN as usize);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&(ts.as_secs() as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&ts.subsec_micros().to_le_bytes());
        rec[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        let r = self
            .out
            .write_all(&rec)
            .and_then(|()| self.out.write_all(&data[..caplen]));
        match r {
            Ok(()) => self.frames += 1,
            Err(e) => self.error = Some(e.kind()),
        }
    }

    /// Records written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Pushes buffered records to the underlying writer.
    ///
    /// # Errors
    /// The first error met by an earlier write, or the flush's own.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(kind) = self.error {
            return Err(io::Error::new(kind, "an earlier pcap write failed"));
        }
        self.out.flush()
    }
}

impl fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("frames", &self.frames)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The wall-clock time, as pcap timestamps it.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A [`NicQueue`] wrapper that records every frame received and sent.
///
/// Received frames are written as `rx_burst` returns them; frames to send
/// when `tx_burst` first offers them to the inner queue (a frame the device
/// does not take stays at the front of the caller's vector, as the
/// [`NicQueue`] contract says, and is not written again). The writer is
/// flushed by [`PcapQueue::flush`] and when the queue is dropped.
#[derive(Debug)]
pub struct PcapQueue<Q: NicQueue> {
    inner: Q,
    writer: SharedPcapWriter,
    /// Frames at the front of the caller's TX vector that were recorded but
    /// not taken by the last `tx_burst`.
    offered_unsent: usize,
}

impl<Q: NicQueue> PcapQueue<Q> {
    /// Wraps `inner`, writing to `writer` (which other queues may share).
    pub fn new(inner: Q, writer: SharedPcapWriter) -> PcapQueue<Q> {
        PcapQueue {
            inner,
            writer,
            offered_unsent: 0,
        }
    }

    /// Flushes the shared writer.
    ///
    /// # Errors
    /// The writer's first error.
    pub fn flush(&self) -> io::Result<()> {
        match self.writer.lock() {
            Ok(mut w) => w.flush(),
            Err(_) => Err(io::Error::other("pcap writer poisoned")),
        }
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The wrapped queue, writable.
    pub fn inner_mut(&mut self) -> &mut Q {
        &mut self.inner
    }

    fn record<'a>(&self, frames: impl Iterator<Item = &'a Frame>) {
        let ts = wall_clock();
        if let Ok(mut w) = self.writer.lock() {
            for f in frames {
                w.write_frame(ts, f.as_slice());
            }
        }
    }
}

impl<Q: NicQueue> Drop for PcapQueue<Q> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<Q: NicQueue> NicQueue for PcapQueue<Q> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn rx_burst(&mut self, pool: &mut FramePool, out: &mut Vec<Frame>, max: usize) -> usize {
        let start = out.len();
        let n = self.inner.rx_burst(pool, out, max);
        if n > 0 {
            self.record(out[start..].iter());
        }
        n
    }

    fn tx_burst(&mut self, frames: &mut Vec<Frame>, pool: &mut FramePool) -> usize {
        // Frames are recorded when first offered: the inner queue gives sent
        // buffers back to the pool, so they cannot be read afterwards. Frames
        // it does not take stay at the front of `frames` and are skipped
        // next time.
        let skip = self.offered_unsent.min(frames.len());
        if frames.len() > skip {
            self.record(frames[skip..].iter());
        }
        let total = frames.len();
        let n = self.inner.tx_burst(frames, pool);
        self.offered_unsent = total - n.min(total);
        n
    }

    fn rx_pending(&self) -> bool {
        self.inner.rx_pending()
    }

    fn rx_backlog(&mut self) -> Option<usize> {
        self.inner.rx_backlog()
    }

    fn wait_rx(&self, timeout: Duration) {
        self.inner.wait_rx(timeout)
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.inner.raw_fd()
    }

    fn counters(&self) -> QueueCounters {
        self.inner.counters()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nic::memory::MemoryNic;

    /// A `Write` into a vector the test can still read.
    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Parses a classic pcap stream into (seconds, micros, bytes) records.
    fn parse(b: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
        let u32le = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        assert_eq!(u32le(0), PCAP_MAGIC);
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        assert_eq!(u32le(16), SNAPLEN);
        assert_eq!(u32le(20), LINKTYPE_ETHERNET);
        let mut at = 24;
        let mut out = Vec::new();
        while at < b.len() {
            let (sec, usec, cap, len) = (u32le(at), u32le(at + 4), u32le(at + 8), u32le(at + 12));
            assert_eq!(cap, len);
            assert!(usec < 1_000_000);
            at += 16;
            out.push((sec, usec, b[at..at + cap as usize].to_vec()));
            at += cap as usize;
        }
        out
    }

    #[test]
    fn header_and_records_are_classic_pcap() {
        let buf = SharedBuf::default();
        let mut w = PcapWriter::new(Box::new(buf.clone())).unwrap();
        w.write_frame(Duration::new(1_700_000_000, 123_456_789), &[1, 2, 3]);
        w.write_frame(Duration::new(5, 0), &[]);
        w.flush().unwrap();
        assert_eq!(w.frames(), 2);
        let recs = parse(&buf.0.lock().unwrap());
        assert_eq!(
            recs,
            vec![(1_700_000_000, 123_456, vec![1, 2, 3]), (5, 0, vec![])]
        );
    }

    #[test]
    fn write_errors_surface_on_flush() {
        let Ok(mut w) = PcapWriter::create("/dev/full") else {
            // No /dev/full here: the header write itself failed, also fine.
            return;
        };
        for _ in 0..100 {
            w.write_frame(Duration::ZERO, &[0u8; 1500]);
        }
        assert!(w.flush().is_err());
        assert!(w.flush().is_err(), "the error sticks");
    }

    #[test]
    fn queue_records_rx_and_tx_to_one_shared_file() {
        let buf = SharedBuf::default();
        let writer = PcapWriter::new(Box::new(buf.clone())).unwrap().shared();
        let (a, b) = MemoryNic::pair(1, 16);
        let mut a = PcapQueue::new(a.split().remove(0), Arc::clone(&writer));
        let mut b = PcapQueue::new(b.split().remove(0), Arc::clone(&writer));
        let mut pool = FramePool::new(16);
        let mut frames: Vec<Frame> = (0..3u8)
            .map(|i| {
                let mut f = pool.alloc().unwrap();
                f.copy_from(&[i; 60]).unwrap();
                f
            })
            .collect();
        let before = wall_clock().as_secs() as u32;
        assert_eq!(a.tx_burst(&mut frames, &mut pool), 3);
        let mut out = Vec::new();
        assert_eq!(b.rx_burst(&mut pool, &mut out, 8), 3);
        a.flush().unwrap();
        let recs = parse(&buf.0.lock().unwrap());
        assert_eq!(recs.len(), 6);
        for (i, (sec, _, data)) in recs.iter().enumerate() {
            assert!(*sec >= before && *sec <= before + 60);
            assert_eq!(data, &vec![(i % 3) as u8; 60]);
        }
        assert_eq!(writer.lock().unwrap().frames(), 6);
    }
}
