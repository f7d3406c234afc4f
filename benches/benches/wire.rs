//! Micro-benchmarks of `mtcp_stack::wire`: parsing a whole TCP frame and
//! emitting a segment with options.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtcp_stack::wire::checksum;
use mtcp_stack::wire::ethernet::{EtherType, EthernetAddress, EthernetRepr};
use mtcp_stack::wire::frame::{emit_tcp_frame, parse_tcp_frame};
use mtcp_stack::wire::ipv4::{IpProtocol, Ipv4Address, Ipv4Repr};
use mtcp_stack::wire::tcp::{SackBlock, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
use mtcp_stack::wire::SeqNumber;
use std::hint::black_box;

const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

fn headers() -> (EthernetRepr, Ipv4Repr) {
    (
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Ipv4,
            vlan: None,
        },
        Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            protocol: IpProtocol::Tcp,
            payload_len: 0,
            ttl: 64,
            ident: 1,
            dont_frag: true,
            dscp_ecn: 0,
        },
    )
}

fn segment(payload: &[u8]) -> TcpRepr<'_> {
    let mut options = TcpOptions {
        timestamp: Some((0x1234_5678, 0x9abc_def0)),
        ..TcpOptions::default()
    };
    options.push_sack(SackBlock {
        left: SeqNumber(1000),
        right: SeqNumber(2000),
    });
    TcpRepr {
        src_port: 49152,
        dst_port: 80,
        seq: SeqNumber(1),
        ack: SeqNumber(2),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 65535,
        urgent: 0,
        options,
        payload,
    }
}

fn bench_wire(c: &mut Criterion) {
    let payload = [0x5au8; 64];
    let (eth, ip) = headers();
    let tcp = segment(&payload);
    let mut frame = [0u8; 1514];
    let n = emit_tcp_frame(&mut frame, &eth, &ip, &tcp, true).expect("fits");

    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_tcp_frame_64B", |b| {
        b.iter(|| parse_tcp_frame(black_box(&frame[..n]), true).map(|(_, _, t)| t.seq))
    });
    g.bench_function("emit_tcp_frame_64B", |b| {
        let mut out = [0u8; 1514];
        b.iter(|| emit_tcp_frame(&mut out, &eth, &ip, black_box(&tcp), true))
    });
    g.bench_function("emit_tcp_segment_options", |b| {
        let mut out = [0u8; 256];
        let len = tcp.buffer_len();
        b.iter(|| {
            let r = black_box(&tcp);
            r.emit(
                &mut TcpPacket::new_unchecked(&mut out[..len]),
                SRC,
                DST,
                true,
            );
            out[16]
        })
    });
    g.finish();

    let mut g = c.benchmark_group("checksum");
    let data = [0xa5u8; 1460];
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("data_1460B", |b| {
        b.iter(|| checksum::data(black_box(&data)))
    });
    g.finish();
}

criterion_group!(benches, bench_wire);
criterion_main!(benches);
