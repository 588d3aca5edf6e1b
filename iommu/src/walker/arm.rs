//! ARM VMSAv8-64 long-descriptor walk as an SMMU performs it: the input size
//! comes from T0SZ, the start level from T0SZ and the granule (stage 1) or
//! from SL0 (stage 2, where the start-level index may span concatenated
//! tables). Descriptor bits 1:0 = 0b11 table/page, 0b01 block, bit 0 clear
//! invalid. Stage 1 denies writes when AP[2] (bit 7) is set; stage 2 needs
//! S2AP bit 6 for reads and bit 7 for writes. An output address above the
//! PS/IPS size is an address-size fault.

use scatterlist::{Iova, PhysAddr};

use super::{Fault, Walk, WalkMem};

#[derive(Clone, Copy)]
pub(super) struct Cfg {
    pub stage2: bool,
    pub ttbr: PhysAddr,
    pub granule_shift: u32,
    pub tsz: u32,
    pub ps: u32,
    pub sl: u32,
}

pub(super) fn walk<M: WalkMem + ?Sized>(mem: &M, c: Cfg, iova: Iova) -> Result<Walk, Fault> {
    let g = c.granule_shift;
    if !matches!(g, 12 | 14 | 16) || c.tsz > 48 || c.tsz < 16 || c.ps > 48 {
        return Err(Fault::BadConfig {
            value: u64::from(c.tsz),
        });
    }
    let ia = 64 - c.tsz;
    if iova.raw() >> ia != 0 {
        return Err(Fault::AddressSize { iova, ias: ia });
    }
    let stride = g - 3;
    let start = if c.stage2 {
        c.sl
    } else {
        4 - (ia - g).div_ceil(stride)
    };
    if start > 3 {
        return Err(Fault::BadConfig {
            value: u64::from(start),
        });
    }
    let oa_bits = ((1u64 << 48) - 1) & !((1u64 << g) - 1);
    let mut table = c.ttbr.raw() & !((1u64 << g) - 1) & ((1u64 << 48) - 1);
    for arm_level in start..=3 {
        let shift = g + stride * (3 - arm_level);
        let level = 3 - arm_level;
        let idx = if arm_level == start {
            (iova.raw() >> shift) & ((1u64 << (ia - shift)) - 1)
        } else {
            (iova.raw() >> shift) & ((1u64 << stride) - 1)
        };
        let d = mem.read_u64(PhysAddr::new(table + idx * 8));
        if d & 1 == 0 {
            return Err(Fault::NotPresent { iova, level });
        }
        let bit1 = d & 2 != 0;
        if arm_level < 3 && bit1 {
            let next = d & oa_bits;
            if next >> c.ps != 0 {
                return Err(Fault::OutputAddressSize {
                    iova,
                    addr: PhysAddr::new(next),
                });
            }
            table = next;
            continue;
        }
        // Leaf: page at level 3 (0b11) or block at level 1/2 (0b01).
        let block_ok = match g {
            12 => arm_level == 1 || arm_level == 2,
            _ => arm_level == 2,
        };
        if (arm_level == 3 && !bit1) || (arm_level < 3 && !block_ok) {
            return Err(Fault::Malformed {
                iova,
                level,
                pte: d,
            });
        }
        let page_mask = (1u64 << shift) - 1;
        let base = d & oa_bits & !page_mask;
        if base >> c.ps != 0 {
            return Err(Fault::OutputAddressSize {
                iova,
                addr: PhysAddr::new(base),
            });
        }
        let (read, write) = if c.stage2 {
            (d & (1 << 6) != 0, d & (1 << 7) != 0)
        } else {
            (true, d & (1 << 7) == 0)
        };
        return Ok(Walk {
            pa: PhysAddr::new(base | (iova.raw() & page_mask)),
            page_lg2: shift,
            level,
            read,
            write,
        });
    }
    Err(Fault::NotPresent { iova, level: 0 })
}
