//! VT-d second-stage walk (VT-d spec §3.7, §9.8): 9 index bits per level
//! from bit 12; an entry is present when R or W is set; PS at levels 1/2 ends
//! the walk with a 2 MiB/1 GiB page; R/W are ANDed along the walk.

use scatterlist::{Iova, PhysAddr};

use super::{Fault, Walk, WalkMem};

const BIT_R: u64 = 0x1;
const BIT_W: u64 = 0x2;
const BIT_PS: u64 = 0x80;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

pub(super) fn walk<M: WalkMem + ?Sized>(
    mem: &M,
    root: PhysAddr,
    aw: u32,
    iova: Iova,
) -> Result<Walk, Fault> {
    let levels = match aw {
        1 => 3u32,
        2 => 4,
        3 => 5,
        _ => {
            return Err(Fault::BadConfig {
                value: u64::from(aw),
            })
        }
    };
    let width = 12 + 9 * levels;
    if iova.raw() >> width != 0 {
        return Err(Fault::AddressSize { iova, ias: width });
    }
    let mut table = root.raw() & ADDR;
    let (mut r, mut w) = (true, true);
    for level in (0..levels).rev() {
        let shift = 12 + 9 * level;
        let idx = (iova.raw() >> shift) & 0x1ff;
        let e = mem.read_u64(PhysAddr::new(table + idx * 8));
        if e & (BIT_R | BIT_W) == 0 {
            return Err(Fault::NotPresent { iova, level });
        }
        r &= e & BIT_R != 0;
        w &= e & BIT_W != 0;
        let is_leaf = level == 0 || e & BIT_PS != 0;
        if is_leaf {
            if level > 2 {
                return Err(Fault::Malformed {
                    iova,
                    level,
                    pte: e,
                });
            }
            let page_mask = (1u64 << shift) - 1;
            let base = e & ADDR & !page_mask;
            return Ok(Walk {
                pa: PhysAddr::new(base | (iova.raw() & page_mask)),
                page_lg2: shift,
                level,
                read: r,
                write: w,
            });
        }
        table = e & ADDR;
    }
    Err(Fault::NotPresent { iova, level: 0 })
}
