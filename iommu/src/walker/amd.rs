//! AMD IOMMU v1 host-table walk (AMD IOMMU spec §2.2.3): mode = levels; PR
//! bit 0; Next Level 11:9 (0 = leaf of the natural size, 7 = leaf with the
//! size encoded as the run of 1s from address bit 12, otherwise a table of
//! that level, possibly skipping levels whose IOVA bits must then be zero);
//! IR bit 61 / IW bit 62 ANDed along the walk.

use scatterlist::{Iova, PhysAddr};

use super::{Fault, Walk, WalkMem};

const PRESENT: u64 = 1;
const NEXT_LEVEL_SHIFT: u32 = 9;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;
const PERM_R: u64 = 1 << 61;
const PERM_W: u64 = 1 << 62;

pub(super) fn walk<M: WalkMem + ?Sized>(
    mem: &M,
    root: PhysAddr,
    mode: u32,
    iova: Iova,
) -> Result<Walk, Fault> {
    if !(1..=6).contains(&mode) {
        return Err(Fault::BadConfig {
            value: u64::from(mode),
        });
    }
    let width = (12 + 9 * mode).min(64);
    if width < 64 && iova.raw() >> width != 0 {
        return Err(Fault::AddressSize { iova, ias: width });
    }
    let mut table = root.raw() & ADDR;
    // AMD numbering: level `mode` is the root; PTEs live at level 1.
    let mut amd_level = mode;
    let (mut r, mut w) = (true, true);
    loop {
        let shift = 12 + 9 * (amd_level - 1);
        let idx = (iova.raw() >> shift) & if amd_level == 6 { 0x7f } else { 0x1ff };
        let e = mem.read_u64(PhysAddr::new(table + idx * 8));
        let level = amd_level - 1;
        if e & PRESENT == 0 {
            return Err(Fault::NotPresent { iova, level });
        }
        r &= e & PERM_R != 0;
        w &= e & PERM_W != 0;
        let nl = ((e >> NEXT_LEVEL_SHIFT) & 7) as u32;
        if nl == 0 || nl == 7 || amd_level == 1 {
            let page_lg2 = if nl == 7 {
                let addr_field = (e & ADDR) >> 12;
                13 + addr_field.trailing_ones()
            } else {
                shift
            };
            if page_lg2 > 52 {
                return Err(Fault::Malformed {
                    iova,
                    level,
                    pte: e,
                });
            }
            let page_mask = (1u64 << page_lg2) - 1;
            let base = e & ADDR & !page_mask;
            return Ok(Walk {
                pa: PhysAddr::new(base | (iova.raw() & page_mask)),
                page_lg2,
                level,
                read: r,
                write: w,
            });
        }
        if nl >= amd_level {
            return Err(Fault::Malformed {
                iova,
                level,
                pte: e,
            });
        }
        // Level skipping: the IOVA bits of the skipped levels must be zero.
        let skipped_lo = 12 + 9 * nl;
        if iova.raw() >> skipped_lo & ((1u64 << (shift - skipped_lo)) - 1) != 0 {
            return Err(Fault::NotPresent { iova, level: nl });
        }
        table = e & ADDR;
        amd_level = nl;
    }
}
