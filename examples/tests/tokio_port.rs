//! The drop-in promise: a tokio program ported by replacing `tokio` with
//! `mtcp` compiles and behaves the same. `tokio_src/program.rs` is compiled
//! as written (against tokio, on the kernel's loopback) and as ported by the
//! build script (against mtcp, on the user-level stack's loopback); both
//! must print the same transcript.

mod original {
    include!("tokio_src/program.rs");
}

mod ported {
    include!(concat!(env!("OUT_DIR"), "/program.rs"));
}

#[test]
fn tokio_program_ported_by_renaming_behaves_the_same() {
    let expected = original::run();
    let got = ported::run();
    assert!(expected.len() >= 8, "{expected:#?}");
    assert_eq!(got, expected);
}
