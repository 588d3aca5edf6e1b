//! The Controller Memory Buffer from its two registers (NVMe base
//! specification, CMBLOC at 0x38 and CMBSZ at 0x3c; Linux
//! drivers/nvme/host/pci.c `nvme_map_cmb`):
//!
//! * CMBSZ: SQS (bit 0), CQS (1), LISTS (2), RDS (3), WDS (4); SZU in bits
//!   11:8, the size unit `4 KiB << (4 × SZU)` (values above 6, 64 GiB, are
//!   reserved); SZ in bits 31:12, the size in those units;
//! * CMBLOC: BIR in bits 2:0, the BAR; OFST in bits 31:12, the offset into
//!   the BAR in size units.
//!
//! A size past the end of the BAR is clamped to it (as Linux does). Linux
//! registers the CMB as P2P memory whatever the flags and *publishes* it
//! only when both WDS and RDS are set; this model has no submission queues
//! in the CMB, so a CMB without both is refused with a typed error and
//! nothing is registered (RFC §5.12).

use core::fmt;
use dma_api::{Bdf, DmaContext, DmaError, P2pMemRegistration, PhysAddr};
use std::sync::Arc;

/// CMBSZ.RDS: the CMB may hold read data (controller → host transfers).
pub const CMBSZ_RDS: u32 = 1 << 3;
/// CMBSZ.WDS: the CMB may hold write data (host → controller transfers).
pub const CMBSZ_WDS: u32 = 1 << 4;

/// The CMB as the registers describe it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Cmb {
    /// The BAR it lives in (CMBLOC.BIR).
    pub bar: u8,
    /// Offset into the BAR in bytes.
    pub offset: u64,
    /// Size in bytes, as the registers say (before clamping to the BAR).
    pub size: u64,
    /// CMBSZ.RDS.
    pub rds: bool,
    /// CMBSZ.WDS.
    pub wds: bool,
}

/// Why a CMB was not registered; nothing was.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CmbError {
    /// CMBSZ is zero: the controller has no CMB.
    NoCmb,
    /// CMBSZ.SZU is a reserved value.
    ReservedSizeUnit {
        /// The field's value.
        szu: u32,
    },
    /// CMBLOC.BIR names a BAR the device does not have (or not a memory
    /// BAR).
    NoSuchBar {
        /// The BAR.
        bar: u8,
    },
    /// The offset lies past the BAR's end.
    OffsetPastBar {
        /// Offset in bytes.
        offset: u64,
        /// The BAR's size.
        bar_size: u64,
    },
    /// The CMB cannot hold data in both directions (WDS and RDS), so it is
    /// not offered as peer memory.
    NoDataSupport {
        /// CMBSZ.WDS.
        wds: bool,
        /// CMBSZ.RDS.
        rds: bool,
    },
    /// The registration itself failed.
    Dma(DmaError),
}

impl fmt::Display for CmbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCmb => f.write_str("CMBSZ is 0: no controller memory buffer"),
            Self::ReservedSizeUnit { szu } => write!(f, "CMBSZ.SZU {szu} is reserved"),
            Self::NoSuchBar { bar } => write!(
                f,
                "CMBLOC.BIR names BAR {bar}, which is not a memory BAR of the device"
            ),
            Self::OffsetPastBar { offset, bar_size } => {
                write!(
                    f,
                    "CMB offset {offset:#x} lies past the BAR's {bar_size:#x} bytes"
                )
            }
            Self::NoDataSupport { wds, rds } => write!(
                f,
                "CMB without write and read data support (WDS={}, RDS={}) is not peer memory",
                u8::from(*wds),
                u8::from(*rds)
            ),
            Self::Dma(e) => write!(f, "registration: {e}"),
        }
    }
}

impl std::error::Error for CmbError {}

impl Cmb {
    /// Decodes the register pair.
    pub fn from_registers(cmbloc: u32, cmbsz: u32) -> Result<Self, CmbError> {
        if cmbsz == 0 {
            return Err(CmbError::NoCmb);
        }
        let szu = (cmbsz >> 8) & 0xf;
        if szu > 6 {
            return Err(CmbError::ReservedSizeUnit { szu });
        }
        let unit = 4096u64 << (4 * szu);
        Ok(Self {
            bar: (cmbloc & 7) as u8,
            offset: u64::from(cmbloc >> 12) * unit,
            size: u64::from(cmbsz >> 12) * unit,
            rds: cmbsz & CMBSZ_RDS != 0,
            wds: cmbsz & CMBSZ_WDS != 0,
        })
    }

    /// Registers the CMB of `nvme` as peer memory and publishes it
    /// (`pci_p2pdma_add_resource` + `pci_p2pmem_publish`), returning the
    /// registration and the CMB's first byte. The size is clamped to the
    /// BAR.
    pub fn register(
        &self,
        ctx: &Arc<DmaContext>,
        nvme: Bdf,
    ) -> Result<(P2pMemRegistration, PhysAddr), CmbError> {
        if !(self.wds && self.rds) {
            return Err(CmbError::NoDataSupport {
                wds: self.wds,
                rds: self.rds,
            });
        }
        let bar_size = {
            let topo = ctx.topology.read();
            let id = topo
                .lookup(nvme)
                .ok_or(CmbError::Dma(DmaError::UnknownDevice { bdf: nvme }))?;
            topo.device(id)
                .and_then(|d| d.bar(self.bar))
                .filter(|b| b.is_mem())
                .map(|b| b.size)
                .ok_or(CmbError::NoSuchBar { bar: self.bar })?
        };
        if self.offset >= bar_size {
            return Err(CmbError::OffsetPastBar {
                offset: self.offset,
                bar_size,
            });
        }
        let size = self.size.min(bar_size - self.offset);
        let reg = ctx
            .add_p2pmem(nvme, self.bar, size, self.offset, None)
            .map_err(CmbError::Dma)?;
        if let Err(e) = ctx.publish_p2pmem(nvme, true) {
            let undo = reg.unregister();
            return Err(CmbError::Dma(e.with_cleanup(undo.err())));
        }
        let at = reg.phys();
        Ok((reg, at))
    }
}
