//! Writes hand-built frames through a `PcapQueue` and reads the file back:
//! always with the `pcap-file` parser (header, link type, every frame's
//! bytes and length, the IPv4/ICMP/TCP checksums), and with `tcpdump -r`
//! where tcpdump is installed. Without tcpdump that part prints `SKIP`,
//! unless `MTCP_REQUIRE_NETNS=1` (CI), which makes it fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

use mtcp_stack::nic::memory::MemoryNic;
use mtcp_stack::nic::pcap::{PcapQueue, PcapWriter};
use mtcp_stack::nic::{Frame, FramePool, NicQueue};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];

/// The Internet checksum (RFC 1071) of `data`, starting from `sum`.
fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn arp_request() -> Vec<u8> {
    let mut f = ethernet([0xff; 6], 0x0806);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&IP_A);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&IP_B);
    f
}

fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, protocol, 0, 0]);
    h.extend_from_slice(&IP_A);
    h.extend_from_slice(&IP_B);
    let c = checksum(0, &h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn icmp_echo() -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0, 1, 0, 1];
    m.extend_from_slice(b"mtcp-ping-data!!");
    let c = checksum(0, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = ethernet(MAC_B, 0x0800);
    f.extend(ipv4(1, &m));
    f
}

fn tcp_syn() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&40000u16.to_be_bytes());
    t.extend_from_slice(&80u16.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[6 << 4, 0x02]); // 24-byte header, SYN
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    t.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&IP_A);
    pseudo.extend_from_slice(&IP_B);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&t);
    let c = checksum(0, &pseudo);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    let mut f = ethernet(MAC_B, 0x0800);
    f.extend(ipv4(6, &t));
    f
}

/// The test's scratch directory, removed when the test ends (also when it
/// fails).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn required() -> bool {
    mtcp_testkit::netns::required()
}

/// `tcpdump ARGS -r FILE`'s output; `None` (after a `SKIP` line) when
/// tcpdump is not installed and CI does not require it.
fn tcpdump(args: &[&str], file: &Path) -> Option<String> {
    match Command::new("tcpdump")
        .args(args)
        .arg("-r")
        .arg(file)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "tcpdump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(e) if required() => {
            panic!(
                "MTCP_REQUIRE_NETNS=1 but tcpdump could not be run ({e}); apt-get install tcpdump"
            )
        }
        Err(e) => {
            eprintln!(
                "SKIP tcpdump_reads_what_pcap_queue_wrote (the tcpdump part): tcpdump could not be \
                 run ({e}); the pcap-file checks ran (MTCP_REQUIRE_NETNS=1 makes this fail)"
            );
            None
        }
    }
}

/// Checks the IPv4 header checksum and the ICMP or TCP checksum of an
/// Ethernet frame carrying IPv4 (a checksum over data that includes its
/// checksum field sums to zero).
fn assert_checksums_correct(frame: &[u8]) {
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    assert_eq!(checksum(0, &ip[..ihl]), 0, "IPv4 header checksum");
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let payload = &ip[ihl..total];
    match ip[9] {
        1 => assert_eq!(checksum(0, payload), 0, "ICMP checksum"),
        6 => {
            let mut pseudo = ip[12..20].to_vec();
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            pseudo.extend_from_slice(payload);
            assert_eq!(checksum(0, &pseudo), 0, "TCP checksum");
        }
        p => panic!("unexpected IP protocol {p}"),
    }
}

/// Parses the file with `pcap-file`: Ethernet link type, then exactly
/// `want` frames, byte for byte, with whole lengths and non-decreasing
/// timestamps.
fn check_with_parser(path: &Path, want: &[Vec<u8>]) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = PcapReader::new(file).expect("a pcap file header");
    let header = reader.header();
    assert_eq!(header.datalink, DataLink::ETHERNET);
    assert_eq!((header.version_major, header.version_minor), (2, 4));
    let mut got = Vec::new();
    let mut last = std::time::Duration::ZERO;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a well-formed pcap record");
        assert!(packet.timestamp >= last, "timestamps go backwards");
        last = packet.timestamp;
        assert_eq!(
            packet.orig_len as usize,
            packet.data.len(),
            "truncated record"
        );
        got.push(packet.data.into_owned());
    }
    assert_eq!(got.len(), want.len(), "records in the file");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "record {i}");
        if u16::from_be_bytes([g[12], g[13]]) == 0x0800 {
            assert_checksums_correct(g);
        }
    }
}

#[test]
fn tcpdump_reads_what_pcap_queue_wrote() {
    let dir = TempDir(std::env::temp_dir().join(format!("mtcp-pcap-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("capture.pcap");

    let writer = PcapWriter::create(&path).unwrap().shared();
    let (a, b) = MemoryNic::pair(1, 16);
    let mut a = PcapQueue::new(a.split().remove(0), writer.clone());
    let mut b = b.split();
    let mut pool = FramePool::new(32);
    let sent = [arp_request(), icmp_echo(), tcp_syn()];
    let mut frames: Vec<Frame> = sent
        .iter()
        .map(|bytes| {
            let mut f = pool.alloc().unwrap();
            f.copy_from(bytes).unwrap();
            f
        })
        .collect();
    assert_eq!(a.tx_burst(&mut frames, &mut pool), 3);
    // Echo everything the peer's queues got straight back.
    for q in b.iter_mut() {
        let mut got = Vec::new();
        q.rx_burst(&mut pool, &mut got, 32);
        q.tx_burst(&mut got, &mut pool);
    }
    let mut back = Vec::new();
    assert_eq!(a.rx_burst(&mut pool, &mut back, 32), 3);
    drop(a); // flushes
    assert_eq!(writer.lock().unwrap().frames(), 6);

    // Sent, then what came back, in the same order.
    let want: Vec<Vec<u8>> = sent.iter().chain(sent.iter()).cloned().collect();
    check_with_parser(&path, &want);

    let Some(plain) = tcpdump(&["-nn", "-t"], &path) else {
        return;
    };
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 6, "{plain}");
    let expect = [
        "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28",
        "IP 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 24",
        "IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000, win 65535, options [mss 1460], length 0",
    ];
    for (i, want) in expect.iter().enumerate() {
        assert_eq!(lines[i], *want, "{plain}");
    }
    // What came back, in the same order.
    assert_eq!(lines[3..], expect[..], "{plain}");

    // Verbose mode verifies the checksums.
    let verbose = tcpdump(&["-nn", "-t", "-vv"], &path).unwrap_or_default();
    assert!(!verbose.contains("bad cksum"), "{verbose}");
    assert!(!verbose.contains("wrong"), "{verbose}");
    assert!(
        verbose.contains("cksum 0x") && verbose.contains("(correct)"),
        "{verbose}"
    );
}
