//! The few `bpf(2)` commands AF_XDP needs, without libbpf: an XSKMAP, a
//! six-instruction XDP program that redirects every frame to the socket of
//! its RX queue, and a BPF link that attaches it to an interface (and
//! detaches it when the link descriptor closes).
//!
//! The program, in eBPF assembly:
//!
//! ```text
//!   r2 = *(u32 *)(r1 + 16)      ; ctx->rx_queue_index
//!   r1 = map_fd xsks            ; ld_imm64, src = BPF_PSEUDO_MAP_FD
//!   r3 = 2                      ; flags: XDP_PASS when the slot is empty
//!   call bpf_redirect_map       ; helper 51
//!   exit                        ; r0 = XDP_REDIRECT or XDP_PASS
//! ```
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use super::sys::{errno_to_error, owned_fd};
use super::NicError;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;
/// `struct xdp_md`: offset of `rx_queue_index`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the stack after the skb exists.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// A `union bpf_attr`, zeroed, with fields written at their offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, at: usize, v: u32) -> &mut Attr {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, at: usize, v: u64) -> &mut Attr {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> libc::c_long {
    // SAFETY: `attr` is a valid, zero-padded `union bpf_attr` of the size
    // passed; the pointers written into it (by the callers) point at live
    // buffers for the duration of the call.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            core::mem::size_of::<Attr>(),
        )
    }
}

fn fd_result(r: libc::c_long) -> Result<OwnedFd, NicError> {
    owned_fd(if r < 0 { -1 } else { r as libc::c_int })
}

/// Creates an XSKMAP with `entries` slots (one per RX queue).
pub(crate) fn xskmap_create(entries: u32) -> Result<OwnedFd, NicError> {
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP)
        .u32(4, 4)
        .u32(8, 4)
        .u32(12, entries.max(1));
    a.0[28..36].copy_from_slice(b"mtcp_xsk");
    fd_result(bpf(BPF_MAP_CREATE, &mut a))
}

/// Stores socket `xsk` in slot `key` of the XSKMAP `map`.
pub(crate) fn xskmap_set(map: &OwnedFd, key: u32, xsk: &OwnedFd) -> Result<(), NicError> {
    let k = key;
    let v = xsk.as_raw_fd() as u32;
    let mut a = Attr::new();
    a.u32(0, map.as_raw_fd() as u32)
        .u64(8, &k as *const u32 as u64)
        .u64(16, &v as *const u32 as u64)
        .u64(24, 0);
    if bpf(BPF_MAP_UPDATE_ELEM, &mut a) < 0 {
        return Err(super::sys::last_error());
    }
    Ok(())
}

/// Encodes one `struct bpf_insn`.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (dst & 0x0f) | (src << 4);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    u64::from_le_bytes(b)
}

/// The redirect program's instructions for XSKMAP descriptor `map_fd`.
fn redirect_program(map_fd: i32) -> [u64; 6] {
    const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
    const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
    const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
    const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
    [
        insn(LDX_MEM_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        insn(LD_IMM64, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        insn(MOV64_K, 3, 0, 0, XDP_PASS),
        insn(CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(EXIT, 0, 0, 0, 0),
    ]
}

/// Loads the redirect program for `map`. On a verifier rejection the log
/// goes to `log::warn!`.
pub(crate) fn load_redirect_program(map: &OwnedFd) -> Result<OwnedFd, NicError> {
    let prog = redirect_program(map.as_raw_fd());
    let license = b"GPL\0";
    let mut log = vec![0u8; 4096];
    let mut a = Attr::new();
    a.u32(0, BPF_PROG_TYPE_XDP)
        .u32(4, prog.len() as u32)
        .u64(8, prog.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .u32(24, 1)
        .u32(28, log.len() as u32)
        .u64(32, log.as_mut_ptr() as u64)
        .u32(68, BPF_XDP);
    a.0[48..57].copy_from_slice(b"mtcp_xdp\0");
    let r = bpf(BPF_PROG_LOAD, &mut a);
    if r < 0 {
        let e = super::sys::errno();
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        log::warn!(
            "bpf(BPF_PROG_LOAD) failed: {}; verifier log: {}",
            std::io::Error::from_raw_os_error(e),
            String::from_utf8_lossy(&log[..end]).trim()
        );
        return Err(errno_to_error(e));
    }
    fd_result(r)
}

/// Attaches `prog` to interface `ifindex` in the mode `flags` picks
/// ([`XDP_FLAGS_DRV_MODE`] or [`XDP_FLAGS_SKB_MODE`]). The program stays
/// attached while the returned link descriptor is open.
///
/// # Errors
/// [`NicError::Busy`] when another XDP program is attached (`EBUSY`/
/// `EEXIST`), [`NicError::Unsupported`] when the driver lacks the mode.
pub(crate) fn link_xdp(prog: &OwnedFd, ifindex: u32, flags: u32) -> Result<OwnedFd, NicError> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32)
        .u32(4, ifindex)
        .u32(8, BPF_XDP)
        .u32(12, flags);
    let r = bpf(BPF_LINK_CREATE, &mut a);
    if r < 0 {
        return Err(match super::sys::errno() {
            libc::EEXIST | libc::EBUSY => NicError::Busy,
            libc::EOPNOTSUPP => NicError::Unsupported,
            e => errno_to_error(e),
        });
    }
    fd_result(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_encoding() {
        // r2 = *(u32 *)(r1 + 16): code 0x61, dst 2, src 1, off 16.
        assert_eq!(
            insn(0x61, 2, 1, 16, 0).to_le_bytes(),
            [0x61, 0x12, 16, 0, 0, 0, 0, 0]
        );
        let p = redirect_program(7);
        assert_eq!(p[1].to_le_bytes(), [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        assert_eq!(p[4].to_le_bytes(), [0x85, 0, 0, 0, 51, 0, 0, 0]);
        assert_eq!(p[5].to_le_bytes()[0], 0x95);
    }
}
