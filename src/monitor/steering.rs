//! The steering program of a session's passive ports: for each new data connection it picks
//! the real listener (index 0 of the port's `SO_REUSEPORT` group) when the connection comes
//! from the client's address, and the monitor's trap (index 1) otherwise (see
//! `crate::monitor::passive`).
//!
//! A session's client address never changes, so the program is built and loaded (as eBPF,
//! verified and compiled by the kernel) once, at the session's first passive port, and every
//! later port's group takes a reference to it. Where eBPF can't be loaded (no `CAP_BPF` or
//! `CAP_SYS_ADMIN`, an old kernel) the same comparison goes in as classic BPF, which the kernel
//! compiles again for each port: slower, the same protection.
//!
//! Runs in the monitor, as root. It loads only programs built here from the client's address,
//! never anything a worker or the network sent.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use crate::sys::{BpfInstruction, EbpfInstruction};

/// One session's steering program, loaded on first use.
#[derive(Debug, Default)]
pub struct Steering {
    /// The client the program was built for, and the loaded program (`None`: eBPF could
    /// not be loaded; classic BPF is attached per port instead).
    loaded: Option<(IpAddr, Option<Rc<OwnedFd>>)>,
}

impl Steering {
    /// The loaded program for `client`, loading it the first time; `None` when eBPF is
    /// unavailable (then [`attach`] falls back to classic BPF).
    pub fn program_for(&mut self, client: IpAddr) -> Option<Rc<OwnedFd>> {
        if let Some((ip, program)) = &self.loaded
            && *ip == client
        {
            return program.clone();
        }
        let program = match crate::sys::load_socket_filter(&ebpf_program(client), "rftpd_steer") {
            Ok(fd) => Some(Rc::new(fd)),
            Err(e) => {
                tracing::debug!(error = %e,
                    "eBPF steering unavailable; classic BPF is compiled per passive port");
                None
            }
        };
        self.loaded = Some((client, program.clone()));
        program
    }
}

/// Attach the steering to the group of `listener`: the loaded program when there is one
/// (classic BPF if attaching it fails), else classic BPF built for `client`.
pub fn attach(
    listener: BorrowedFd<'_>,
    loaded: Option<&OwnedFd>,
    client: IpAddr,
) -> io::Result<()> {
    if let Some(program) = loaded {
        match crate::sys::attach_reuseport_loaded(listener, program.as_fd()) {
            Ok(()) => return Ok(()),
            Err(e) => tracing::debug!(error = %e, "eBPF steering not attached; classic BPF"),
        }
    }
    crate::sys::attach_reuseport_program(listener, &classic_program(client))
}

/// The words of `client`'s address and where the first one is in its IP header (IPv4: the
/// source address at offset 12; IPv6: at 8).
fn address_words(client: IpAddr) -> (u32, Vec<u32>) {
    match client {
        IpAddr::V4(v4) => (12, vec![u32::from(v4)]),
        IpAddr::V6(v6) => (
            8,
            v6.octets()
                .chunks(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
    }
}

/// Offsets from the network header, for absolute loads (`SKF_NET_OFF`, -0x100000).
pub(crate) const SKF_NET_OFF: u32 = 0xfff0_0000;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;

/// The classic BPF program: 0 for a connection from `client`, else 1.
pub fn classic_program(client: IpAddr) -> Vec<BpfInstruction> {
    let ins = |code, jt, jf, k| BpfInstruction { code, jt, jf, k };
    let (first, words) = address_words(client);
    let mut program = Vec::new();
    let n = words.len() as u8;
    for (i, word) in words.iter().enumerate() {
        let i = i as u8;
        program.push(ins(
            BPF_LD_W_ABS,
            0,
            0,
            SKF_NET_OFF + first + 4 * u32::from(i),
        ));
        // Mismatch: jump past the remaining pairs and the "return 0" to "return 1".
        program.push(ins(BPF_JEQ_K, 0, 2 * (n - 1 - i) + 1, *word));
    }
    program.push(ins(BPF_RET_K, 0, 0, 0));
    program.push(ins(BPF_RET_K, 0, 0, 1));
    program
}

/// `BPF_ALU64 | BPF_MOV | BPF_X`: dst = src.
const EBPF_MOV64_REG: u8 = 0xbf;
/// `BPF_ALU64 | BPF_MOV | BPF_K`: dst = imm.
const EBPF_MOV64_IMM: u8 = 0xb7;
/// `BPF_LD | BPF_W | BPF_ABS`: r0 = the 32-bit word at imm in the packet, host order (the
/// context must be in r6).
const EBPF_LD_ABS_W: u8 = 0x20;
/// `BPF_JMP32 | BPF_JNE | BPF_K`: the 32-bit comparison, so an address word with its top bit
/// set is not sign-extended against the zero-extended load.
const EBPF_JNE32_IMM: u8 = 0x56;
/// `BPF_JMP | BPF_EXIT`.
const EBPF_EXIT: u8 = 0x95;

/// The same comparison as [`classic_program`], as eBPF (what the kernel would make of the
/// classic program): 0 for a connection from `client`, else 1.
pub fn ebpf_program(client: IpAddr) -> Vec<EbpfInstruction> {
    let ins = |code, regs, off, imm| EbpfInstruction {
        code,
        regs,
        off,
        imm,
    };
    let (first, words) = address_words(client);
    // r6 = the context (r1), as the absolute loads require.
    let mut program = vec![ins(EBPF_MOV64_REG, 0x16, 0, 0)];
    let n = words.len();
    for (i, word) in words.iter().enumerate() {
        let offset = SKF_NET_OFF + first + 4 * i as u32;
        program.push(ins(EBPF_LD_ABS_W, 0, 0, offset as i32));
        // Mismatch: past the remaining pairs and the "return 0" (two instructions) to
        // "return 1".
        let skip = 2 * (n - 1 - i) + 2;
        program.push(ins(EBPF_JNE32_IMM, 0, skip as i16, *word as i32));
    }
    program.push(ins(EBPF_MOV64_IMM, 0, 0, 0));
    program.push(ins(EBPF_EXIT, 0, 0, 0));
    program.push(ins(EBPF_MOV64_IMM, 0, 0, 1));
    program.push(ins(EBPF_EXIT, 0, 0, 0));
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_program_compares_every_word_of_the_address() {
        let v4 = classic_program("192.0.2.1".parse().unwrap());
        assert_eq!(v4.len(), 4);
        assert_eq!(v4[0].k, SKF_NET_OFF + 12);
        assert_eq!(v4[1].k, 0xc000_0201);
        assert_eq!((v4[1].jt, v4[1].jf), (0, 1));
        let v6 = classic_program("2001:db8::1".parse().unwrap());
        assert_eq!(v6.len(), 10);
        assert_eq!(v6[0].k, SKF_NET_OFF + 8);
        assert_eq!(v6[1].jf, 7);
        assert_eq!(v6[7].jf, 1);
        assert_eq!(v6[9].k, 1);
        assert_eq!(v6[8].k, 0);
    }

    #[test]
    fn the_ebpf_program_loads_and_attaches_as_root() {
        use std::os::fd::AsFd;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: loading eBPF needs root (CAP_BPF or CAP_SYS_ADMIN)");
            return;
        }
        for client in ["127.0.0.1", "::1", "203.0.113.200"] {
            let program =
                crate::sys::load_socket_filter(&ebpf_program(client.parse().unwrap()), "t")
                    .unwrap_or_else(|e| {
                        panic!("the verifier refused the program for {client}: {e}")
                    });
            let family = if client.contains(':') {
                nix::sys::socket::AddressFamily::Inet6
            } else {
                nix::sys::socket::AddressFamily::Inet
            };
            let socket = nix::sys::socket::socket(
                family,
                nix::sys::socket::SockType::Stream,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReusePort, &true)
                .unwrap();
            crate::sys::attach_reuseport_loaded(socket.as_fd(), program.as_fd())
                .expect("attach by descriptor");
        }
    }

    #[test]
    fn every_ebpf_mismatch_jumps_to_return_one() {
        for client in ["192.0.2.1", "2001:db8::1", "255.255.255.255"] {
            let program = ebpf_program(client.parse().unwrap());
            let fail = program.len() - 2;
            assert_eq!(program[fail].imm, 1);
            assert_eq!(program[fail - 2].imm, 0);
            let jumps: Vec<usize> = (0..program.len())
                .filter(|&i| program[i].code == EBPF_JNE32_IMM)
                .collect();
            assert_eq!(jumps.len(), if client.contains(':') { 4 } else { 1 });
            for i in jumps {
                assert_eq!(i + 1 + program[i].off as usize, fail, "{client} at {i}");
            }
        }
        let v4 = ebpf_program("192.0.2.1".parse().unwrap());
        assert_eq!(v4[1].imm as u32, SKF_NET_OFF + 12);
        assert_eq!(v4[2].imm as u32, 0xc000_0201);
    }
}
