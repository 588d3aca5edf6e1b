//! The 64-byte submission queue entry of an NVM read or write (NVMe base
//! specification, "Common Command Format"; include/linux/nvme.h `struct
//! nvme_rw_command`): CDW0 holds the opcode (bits 7:0), PSDT (15:14) and the
//! command identifier (31:16); NSID at byte 4; the data pointer at bytes
//! 24..40 (PRP1 and PRP2, or one SGL descriptor); SLBA at bytes 40..48; the
//! 0's based block count in CDW12 bits 15:0.

use super::command::{Command, Opcode, Psdt};
use super::controller::LBA_SIZE;
use super::sgl::SglDescriptor;

/// Bytes per entry (`sizeof(struct nvme_command)`).
pub const SQE_SIZE: u64 = 64;

/// Encodes `cmd` for namespace `nsid` with identifier `cid`. `None` if the
/// length is not 1..=65536 whole blocks (what NLB can say).
pub fn encode(cmd: &Command, nsid: u32, cid: u16) -> Option<[u8; 64]> {
    let blocks = cmd.len / LBA_SIZE;
    if !cmd.len.is_multiple_of(LBA_SIZE) || blocks == 0 || blocks > 0x1_0000 {
        return None;
    }
    let mut b = [0u8; 64];
    let psdt: u32 = match cmd.psdt {
        Psdt::Prp => 0,
        Psdt::Sgl => 1,
    };
    let cdw0 = u32::from(cmd.opcode as u8) | (psdt << 14) | (u32::from(cid) << 16);
    b[0..4].copy_from_slice(&cdw0.to_le_bytes());
    b[4..8].copy_from_slice(&nsid.to_le_bytes());
    match (cmd.psdt, cmd.sgl) {
        (Psdt::Sgl, Some(d)) => b[24..40].copy_from_slice(&d.to_bytes()),
        _ => {
            b[24..32].copy_from_slice(&cmd.prp1.to_le_bytes());
            b[32..40].copy_from_slice(&cmd.prp2.to_le_bytes());
        }
    }
    b[40..48].copy_from_slice(&cmd.slba.to_le_bytes());
    b[48..52].copy_from_slice(&((blocks - 1) as u32).to_le_bytes());
    Some(b)
}

/// A decoded entry: the command, its namespace and identifier.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decoded {
    /// The command (`list_pages` is not on the wire: 0).
    pub command: Command,
    /// NSID.
    pub nsid: u32,
    /// CID.
    pub cid: u16,
}

/// Decodes an entry; `Err(opcode)` for an opcode other than read or write,
/// `Err(psdt << 8)` for a reserved PSDT.
pub fn decode(b: &[u8; 64]) -> Result<Decoded, u32> {
    let dw = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let qw = |i: usize| u64::from(dw(i)) | (u64::from(dw(i + 4)) << 32);
    let cdw0 = dw(0);
    let opcode = match cdw0 & 0xff {
        0x01 => Opcode::Write,
        0x02 => Opcode::Read,
        op => return Err(op),
    };
    let (psdt, sgl, prp1, prp2) = match (cdw0 >> 14) & 3 {
        0 => (Psdt::Prp, None, qw(24), qw(32)),
        1 => {
            let mut d = [0u8; 16];
            d.copy_from_slice(&b[24..40]);
            (Psdt::Sgl, Some(SglDescriptor::from_bytes(&d)), 0, 0)
        }
        p => return Err(p << 8),
    };
    Ok(Decoded {
        command: Command {
            opcode,
            prp1,
            prp2,
            len: (u64::from(dw(48) & 0xffff) + 1) * LBA_SIZE,
            slba: qw(40),
            psdt,
            sgl,
            list_pages: 0,
        },
        nsid: dw(4),
        cid: (cdw0 >> 16) as u16,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prp_and_sgl_entries_round_trip() {
        let c = Command {
            opcode: Opcode::Read,
            prp1: 0x1_0000_0204,
            prp2: 0x2000,
            len: 0x2000,
            slba: 77,
            psdt: Psdt::Prp,
            sgl: None,
            list_pages: 0,
        };
        let d = decode(&encode(&c, 1, 9).unwrap()).unwrap();
        assert_eq!((d.command, d.nsid, d.cid), (c, 1, 9));
        let s = Command {
            psdt: Psdt::Sgl,
            sgl: Some(SglDescriptor {
                addr: 0x4000,
                len: 0x30,
                kind: 3,
            }),
            prp1: 0,
            prp2: 0,
            ..c
        };
        assert_eq!(decode(&encode(&s, 1, 10).unwrap()).unwrap().command, s);
        assert_eq!(encode(&Command { len: 0x201, ..c }, 1, 0), None);
        let mut bad = encode(&c, 1, 0).unwrap();
        bad[0] = 0x09;
        assert_eq!(decode(&bad), Err(0x09));
    }
}
