//! The drop-in promise: a tokio program ported by replacing `tokio` with
//! `mtcp` compiles and behaves the same. `tokio_src/program.rs` is compiled
//! as written (against tokio, on the kernel's loopback) and as ported by the
//! build script (against mtcp, on the user-level stack's loopback); both
//! must print the same transcript. `tokio_src/chat.rs` does the same for a
//! chat server (broadcast, `JoinSet`, `select!`, `BufReader::lines`), and
//! `tokio_src/udp.rs` for `UdpSocket` (tokio's `echo-udp` and `udp-client`
//! shapes, truncation, peeking, options, a refused connected socket).

mod original {
    include!("tokio_src/program.rs");
}

mod ported {
    include!(concat!(env!("OUT_DIR"), "/program.rs"));
}

mod chat_original {
    include!("tokio_src/chat.rs");
}

mod chat_ported {
    include!(concat!(env!("OUT_DIR"), "/chat.rs"));
}

#[test]
fn tokio_program_ported_by_renaming_behaves_the_same() {
    let expected = original::run();
    let got = ported::run();
    assert!(expected.len() >= 8, "{expected:#?}");
    assert_eq!(got, expected);
}

#[test]
fn tokio_chat_server_ported_by_renaming_behaves_the_same() {
    let expected = chat_original::run();
    let got = chat_ported::run();
    // lookup, 3 welcomes, 6 relayed lines, the quiet select, 3 ends, 3
    // server lines, peek.
    assert_eq!(expected.len(), 18, "{expected:#?}");
    assert!(
        expected.iter().all(|l| !l.contains("unexpected")),
        "{expected:#?}"
    );
    assert_eq!(got, expected);
}

mod udp_original {
    include!("tokio_src/udp.rs");
}

mod udp_ported {
    include!(concat!(env!("OUT_DIR"), "/udp.rs"));
}

#[test]
fn tokio_udp_program_ported_by_renaming_behaves_the_same() {
    let expected = udp_original::run();
    let got = udp_ported::run();
    eprintln!("{expected:#?}");
    assert_eq!(expected.len(), 15, "{expected:#?}");
    for line in [
        "short recv 4 [48, 49, 50, 51]",
        "empty: WouldBlock",
        "closed port: Ok(Err(ConnectionRefused))",
    ] {
        assert!(expected.iter().any(|l| l == line), "{line}: {expected:#?}");
    }
    assert_eq!(got, expected);
}
