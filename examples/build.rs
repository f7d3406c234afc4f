//! Writes the tokio programs of `tests/tokio_src/` ported to mtcp by the
//! promised recipe: every `tokio` replaced by `mtcp`. The test
//! `tests/tokio_port.rs` compiles and runs both versions.

use std::path::Path;

fn main() {
    let src_dir = Path::new("tests/tokio_src");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    println!("cargo:rerun-if-changed=tests/tokio_src");
    let entries = std::fs::read_dir(src_dir).expect("tests/tokio_src");
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            println!("cargo:rerun-if-changed={}", path.display());
            let text = std::fs::read_to_string(&path).expect("read tokio program");
            let ported = text.replace("tokio", "mtcp");
            let name = path.file_name().expect("file name");
            std::fs::write(Path::new(&out_dir).join(name), ported).expect("write ported program");
        }
    }
}
