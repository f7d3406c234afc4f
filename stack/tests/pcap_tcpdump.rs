//! Writes hand-built frames through a `PcapQueue` and checks that tcpdump
//! reads the file back as the frames we meant (with correct checksums).
//!
//! tcpdump must be installed; without it the test fails, unless
//! `MTCP_ALLOW_NO_TCPDUMP=1`.

use std::process::Command;

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

fn tcpdump(args: &[&str], file: &std::path::Path) -> Option<String> {
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
        Err(e) => {
            if std::env::var("MTCP_ALLOW_NO_TCPDUMP").as_deref() == Ok("1") {
                eprintln!("tcpdump not runnable ({e}); skipped because MTCP_ALLOW_NO_TCPDUMP=1");
                None
            } else {
                panic!(
                    "tcpdump is needed by this test and could not be run ({e}); install it \
                     (apt-get install tcpdump) or set MTCP_ALLOW_NO_TCPDUMP=1 to skip"
                );
            }
        }
    }
}

#[test]
fn tcpdump_reads_what_pcap_queue_wrote() {
    let dir = std::env::temp_dir().join(format!("mtcp-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("capture.pcap");

    let writer = PcapWriter::create(&path).unwrap().shared();
    let (a, b) = MemoryNic::pair(1, 16);
    let mut a = PcapQueue::new(a.split().remove(0), writer.clone());
    let mut b = b.split();
    let mut pool = FramePool::new(32);
    let mut frames: Vec<Frame> = [arp_request(), icmp_echo(), tcp_syn()]
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
    std::fs::remove_dir_all(&dir).ok();
}
