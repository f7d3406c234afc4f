//! With the `link` feature: finds the system DPDK with pkg-config, compiles
//! the C shim and generates the bindings with bindgen (libclang, loaded at
//! run time).
//!
//! The raw `pkg-config --cflags libdpdk` flags go to both clang and cc
//! unchanged: they carry `-include rte_config.h` and `-march=corei7`, which
//! the headers need (without them the SIMD paths of rte_memcpy and the
//! configuration macros are missing).
//!
//! Without `link` (a plain `cargo build --workspace`) it does nothing, so a
//! machine without DPDK builds the workspace.

fn main() {
    #[cfg(feature = "link")]
    link::main();
}

#[cfg(feature = "link")]
mod link {
    use std::env;
    use std::path::PathBuf;
    use std::process::{exit, Command};

    const NOT_FOUND: &str = "mtcp-dpdk-sys: DPDK not found via pkg-config (libdpdk). \
    Install it: apt-get install -y libdpdk-dev pkg-config libclang-dev";

    fn pkg_config(args: &[&str]) -> Option<String> {
        let out = Command::new("pkg-config").args(args).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()
    }

    fn fail(msg: &str) -> ! {
        eprintln!("{msg}");
        exit(1)
    }

    pub(crate) fn main() {
        println!("cargo:rerun-if-changed=build.rs");
        println!("cargo:rerun-if-changed=shim/mtcp_dpdk.h");
        println!("cargo:rerun-if-changed=shim/mtcp_dpdk.c");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");

        let (Some(cflags), Some(libs), Some(version)) = (
            pkg_config(&["--cflags", "libdpdk"]),
            pkg_config(&["--libs", "libdpdk"]),
            pkg_config(&["--modversion", "libdpdk"]),
        ) else {
            fail(NOT_FOUND)
        };
        let cflags: Vec<&str> = cflags.split_whitespace().collect();
        let version = version.trim();
        println!("cargo:version={version}");
        println!("cargo:rustc-env=MTCP_DPDK_VERSION={version}");

        // Dynamic linking against the libraries pkg-config names. The poll mode
        // drivers are not linked: EAL loads them from its plugin directory.
        for flag in libs.split_whitespace() {
            if let Some(dir) = flag.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            } else if let Some(lib) = flag.strip_prefix("-l") {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
            // `-Wl,--as-needed` and the like: rustc already links as needed.
        }

        let shim =
            PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("shim");

        let mut cc = cc::Build::new();
        cc.file(shim.join("mtcp_dpdk.c"))
            .include(&shim)
            .warnings(false);
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("mtcp_dpdk_shim");

        let bindings = bindgen::Builder::default()
            .header(shim.join("mtcp_dpdk.h").to_string_lossy())
            .clang_args(cflags.iter().copied())
            .clang_arg(format!("-I{}", shim.display()))
            .allowlist_function("rte_.*|mtcp_.*")
            .allowlist_type("rte_.*")
            .allowlist_var("RTE_.*|MTCP_.*")
            // Packed structs holding aligned members: Rust refuses them.
            .opaque_type("rte_l2tpv2_combined_msg_hdr")
            .opaque_type("rte_gtp_psc_generic_hdr")
            .derive_default(true)
            .derive_debug(true)
            .impl_debug(false)
            .prepend_enum_name(false)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .generate()
            .unwrap_or_else(|e| fail(&format!("mtcp-dpdk-sys: bindgen failed: {e}")));
        let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("bindings.rs");
        bindings.write_to_file(&out).unwrap_or_else(|e| {
            fail(&format!(
                "mtcp-dpdk-sys: cannot write {}: {e}",
                out.display()
            ))
        });
    }
}
