//! Small decoders for exactly the instructions the built-in backends emit,
//! written independently of the encoders: they emulate the address register
//! and turn bytes back into [`CacheEvent`]s, rejecting anything else.
//!
//! x86_64 uses iced-x86's decoder; A64, RV64 and POWER (little-endian) are
//! decoded here from their ISA field layouts.

use dma_api::arch_port::{CacheEvent, LineOp, SyncOp};
use dma_api::PhysAddr;
use iced_x86::{Decoder as IcedDecoder, DecoderOptions, Mnemonic, OpKind, Register};

/// Bytes → events, or why the bytes are not a valid lowering.
pub type Decoder = fn(&[u8]) -> Result<Vec<CacheEvent>, String>;

/// The kit's decoder for a built-in arch name, if it has one.
pub fn builtin_decoder(arch: &str) -> Option<Decoder> {
    match arch {
        "x86_64" => Some(decode_x86_64),
        "arm64" => Some(decode_a64),
        "riscv64" => Some(decode_rv64),
        "powerpc64" => Some(decode_ppc64le),
        // Always coherent: the only valid lowering is no code.
        "s390x" => Some(decode_nothing),
        _ => None,
    }
}

fn line(op: SyncOp, addr: Option<u64>, at: usize) -> Result<CacheEvent, String> {
    let a = addr.ok_or_else(|| format!("cache op at {at:#x} uses an unset register"))?;
    Ok(CacheEvent::Line(LineOp {
        op,
        line: PhysAddr::new(a),
    }))
}

fn words(code: &[u8]) -> Result<impl Iterator<Item = (usize, u32)> + '_, String> {
    if !code.len().is_multiple_of(4) {
        return Err(format!(
            "{} bytes is not a whole number of words",
            code.len()
        ));
    }
    Ok(code
        .chunks_exact(4)
        .enumerate()
        .map(|(i, c)| (i * 4, u32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
}

/// Accepts only empty code (always-coherent arches).
pub fn decode_nothing(code: &[u8]) -> Result<Vec<CacheEvent>, String> {
    if code.is_empty() {
        Ok(Vec::new())
    } else {
        Err(format!("{} bytes of code where none may be", code.len()))
    }
}

/// x86_64: `mfence`, `mov rax, imm`, `add rax, imm`, `clflushopt/clwb [rax]`.
pub fn decode_x86_64(code: &[u8]) -> Result<Vec<CacheEvent>, String> {
    let mut out = Vec::new();
    let mut rax: Option<u64> = None;
    let mut dec = IcedDecoder::with_ip(64, code, 0, DecoderOptions::NONE);
    while dec.can_decode() {
        let ins = dec.decode();
        let at = ins.ip() as usize;
        if ins.is_invalid() {
            return Err(format!("invalid x86 instruction at {at:#x}"));
        }
        let imm_to_rax = ins.op_count() == 2
            && ins.op0_kind() == OpKind::Register
            && ins.op0_register() == Register::RAX
            && matches!(
                ins.op1_kind(),
                OpKind::Immediate64 | OpKind::Immediate32to64 | OpKind::Immediate8to64
            );
        let mem_rax = ins.op_count() == 1
            && ins.op0_kind() == OpKind::Memory
            && ins.memory_base() == Register::RAX
            && ins.memory_index() == Register::None
            && ins.memory_displacement64() == 0
            && ins.segment_prefix() == Register::None;
        match ins.mnemonic() {
            Mnemonic::Mfence => out.push(CacheEvent::Barrier),
            Mnemonic::Mov if imm_to_rax => rax = Some(ins.immediate(1)),
            Mnemonic::Add if imm_to_rax => {
                rax = rax
                    .and_then(|v| v.checked_add(ins.immediate(1)))
                    .map(Some)
                    .ok_or_else(|| format!("add at {at:#x} on unset or wrapping rax"))?;
            }
            Mnemonic::Clflushopt if mem_rax => out.push(line(SyncOp::CleanInvalidate, rax, at)?),
            Mnemonic::Clwb if mem_rax => out.push(line(SyncOp::Clean, rax, at)?),
            _ => {
                return Err(format!(
                    "unexpected x86 instruction {:?} at {at:#x}",
                    ins.code()
                ))
            }
        }
    }
    Ok(out)
}

/// A64: MOVZ/MOVK/ADD (immediate, 64-bit), `DC CVAC/IVAC/CIVAC`, `DSB SY`.
pub fn decode_a64(code: &[u8]) -> Result<Vec<CacheEvent>, String> {
    let mut out = Vec::new();
    let mut x: [Option<u64>; 31] = [None; 31];
    for (at, w) in words(code)? {
        let rd = (w & 31) as usize;
        let bad = || format!("unexpected A64 word {w:#010x} at {at:#x}");
        if w == 0xd503_3f9f {
            out.push(CacheEvent::Barrier);
        } else if w & 0xff80_0000 == 0xd280_0000 || w & 0xff80_0000 == 0xf280_0000 {
            // MOVZ / MOVK, sf = 1.
            let shift = 16 * ((w >> 21) & 3);
            let imm = u64::from((w >> 5) & 0xffff) << shift;
            let keep = if w & 0xff80_0000 == 0xf280_0000 {
                x.get(rd).copied().flatten().ok_or_else(bad)? & !(0xffff << shift)
            } else {
                0
            };
            *x.get_mut(rd).ok_or_else(bad)? = Some(keep | imm);
        } else if w & 0xff80_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm12{, LSL #12}.
            let rn = ((w >> 5) & 31) as usize;
            let imm = u64::from((w >> 10) & 0xfff) << (12 * ((w >> 22) & 1));
            let v = x.get(rn).copied().flatten().ok_or_else(bad)?;
            *x.get_mut(rd).ok_or_else(bad)? = Some(v.checked_add(imm).ok_or_else(bad)?);
        } else if w & 0xfff8_0000 == 0xd508_0000 && (w >> 12) & 0xf == 7 {
            // SYS #op1, C7, Cm, #op2, Xt = DC ...
            let op = match ((w >> 16) & 7, (w >> 8) & 0xf, (w >> 5) & 7) {
                (3, 10, 1) => SyncOp::Clean,
                (0, 6, 1) => SyncOp::Invalidate,
                (3, 14, 1) => SyncOp::CleanInvalidate,
                _ => return Err(bad()),
            };
            out.push(line(op, x.get(rd).copied().flatten(), at)?);
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// RV64: ADDI/ORI/SLLI, `CBO.CLEAN/INVAL/FLUSH`, `FENCE IORW,IORW`.
pub fn decode_rv64(code: &[u8]) -> Result<Vec<CacheEvent>, String> {
    let mut out = Vec::new();
    let mut x: [Option<u64>; 32] = [None; 32];
    x[0] = Some(0);
    for (at, w) in words(code)? {
        let bad = || format!("unexpected RV64 word {w:#010x} at {at:#x}");
        let rd = ((w >> 7) & 31) as usize;
        let f3 = (w >> 12) & 7;
        let rs1 = ((w >> 15) & 31) as usize;
        let simm = ((w as i32) >> 20) as i64 as u64;
        let src = x.get(rs1).copied().flatten();
        let result = match (w & 0x7f, f3) {
            (0x13, 0) => Some(src.ok_or_else(bad)?.wrapping_add(simm)),
            (0x13, 6) => Some(src.ok_or_else(bad)? | simm),
            (0x13, 1) if w >> 26 == 0 => Some(src.ok_or_else(bad)? << ((w >> 20) & 0x3f)),
            (0x0f, 0) if w == 0x0ff0_000f => {
                out.push(CacheEvent::Barrier);
                None
            }
            (0x0f, 2) if rd == 0 => {
                let op = match w >> 20 {
                    0 => SyncOp::Invalidate,
                    1 => SyncOp::Clean,
                    2 => SyncOp::CleanInvalidate,
                    _ => return Err(bad()),
                };
                out.push(line(op, src, at)?);
                None
            }
            _ => return Err(bad()),
        };
        if let (Some(v), true) = (result, rd != 0) {
            *x.get_mut(rd).ok_or_else(bad)? = Some(v);
        }
    }
    Ok(out)
}

/// POWER (little-endian): addis/addi/ori/oris/rldicr, `dcbst/dcbf 0,rB`, `sync`.
pub fn decode_ppc64le(code: &[u8]) -> Result<Vec<CacheEvent>, String> {
    let mut out = Vec::new();
    let mut r: [Option<u64>; 32] = [None; 32];
    for (at, w) in words(code)? {
        let bad = || format!("unexpected POWER word {w:#010x} at {at:#x}");
        let f1 = ((w >> 21) & 31) as usize;
        let f2 = ((w >> 16) & 31) as usize;
        let get = |i: usize| r.get(i).copied().flatten().ok_or_else(bad);
        // RA = 0 means the literal 0 in addi/addis/dcb*.
        let ra0 = |i: usize| if i == 0 { Ok(0) } else { get(i) };
        let simm = (w & 0xffff) as u16 as i16 as i64 as u64;
        let uimm = u64::from(w & 0xffff);
        let (dst, val) = match w >> 26 {
            14 => (f1, ra0(f2)?.wrapping_add(simm)),
            15 => (f1, ra0(f2)?.wrapping_add(simm << 16)),
            24 => (f2, get(f1)? | uimm),
            25 => (f2, get(f1)? | (uimm << 16)),
            30 if (w >> 2) & 7 == 1 && w & 1 == 0 => {
                let sh = ((w >> 11) & 0x1f) | (((w >> 1) & 1) << 5);
                let mf = (w >> 5) & 0x3f;
                let me = ((mf & 1) << 5) | (mf >> 1);
                let mask = if me == 63 {
                    u64::MAX
                } else {
                    !(u64::MAX >> (me + 1))
                };
                (f2, get(f1)?.rotate_left(sh) & mask)
            }
            31 if w == 0x7c00_04ac => {
                out.push(CacheEvent::Barrier);
                continue;
            }
            31 if f1 == 0 && w & 1 == 0 => {
                let op = match (w >> 1) & 0x3ff {
                    54 => SyncOp::Clean,
                    86 => SyncOp::CleanInvalidate,
                    _ => return Err(bad()),
                };
                let ea = ra0(f2)?.wrapping_add(get(((w >> 11) & 31) as usize)?);
                out.push(line(op, Some(ea), at)?);
                continue;
            }
            _ => return Err(bad()),
        };
        *r.get_mut(dst).ok_or_else(bad)? = Some(val);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_rejected() {
        assert!(decode_x86_64(&[0x90]).is_err()); // nop
        assert!(decode_x86_64(&[0x0f]).is_err()); // truncated
        assert!(decode_a64(&[0x1f, 0x20, 0x03, 0xd5]).is_err()); // nop
        assert!(decode_a64(&[0, 0, 0]).is_err());
        assert!(decode_rv64(&0x0000_0013u32.to_le_bytes()).is_ok()); // addi x0: no effect
        assert!(decode_rv64(&0x0330_000fu32.to_le_bytes()).is_err()); // fence rw,rw
        assert!(decode_rv64(&0x0005_200fu32.to_le_bytes()).is_err()); // cbo on unset a0
        assert!(decode_ppc64le(&0x6000_0000u32.to_le_bytes()).is_err()); // ori 0,0,0: r0 unset
        assert!(decode_ppc64le(&0x7c00_03acu32.to_le_bytes()).is_err()); // dcbi
        assert!(decode_nothing(&[0]).is_err());
    }
}
