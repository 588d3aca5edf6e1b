//! The hardware walker: an independent model of how each IOMMU reads the
//! tables from RAM.
//!
//! It shares no code with the writer in [`crate::pgtable`]: every format has
//! its own decoder with its own bit constants, programmed only with the
//! register values a driver would write ([`HwRegs`]: root pointer, address
//! widths, granule, start level). The differential tests compare the two, so
//! a bit-layout bug on either side shows up as a mismatch.
//!
//! Fault levels use generic_pt numbering (0 = the level holding the smallest
//! pages), for every format.

mod amd;
mod arm;
mod mem;
mod vtd;

use core::fmt;

use scatterlist::{Iova, PhysAddr};

pub use mem::WalkMem;

/// Register values the hardware walker is programmed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwRegs {
    /// VT-d context entry: second-stage pointer and address width
    /// (AW 1 = 3-level/39-bit, 2 = 4-level/48-bit, 3 = 5-level/57-bit).
    VtdSs {
        /// SSPTPTR.
        ssptptr: PhysAddr,
        /// AW field.
        aw: u32,
    },
    /// AMD device table entry: host page-table root and mode (levels).
    AmdV1 {
        /// Page table root pointer.
        pt_root: PhysAddr,
        /// Paging mode 1..=6.
        mode: u32,
    },
    /// SMMU context: TTBR/VTTBR plus (V)TCR fields.
    ArmLpae {
        /// Stage 2 (VTTBR/VTCR) rather than stage 1.
        stage2: bool,
        /// Table base.
        ttbr: PhysAddr,
        /// TG: log2 of the granule.
        granule_shift: u32,
        /// T0SZ: input size is `64 - tsz` bits.
        tsz: u32,
        /// (I)PS: output address bits.
        ps: u32,
        /// Stage-2 start level (from SL0), ARM numbering; ignored for stage 1.
        sl: u32,
    },
}

pub use dma_api::Access;

/// A translation fault raised by the walker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The IOVA is beyond the configured input address size.
    AddressSize {
        /// The faulting IOVA.
        iova: Iova,
        /// Input address bits.
        ias: u32,
    },
    /// No valid entry at `level`.
    NotPresent {
        /// The faulting IOVA.
        iova: Iova,
        /// Level of the missing entry.
        level: u32,
    },
    /// The leaf (or a table on the way) denies the access.
    Permission {
        /// The faulting IOVA.
        iova: Iova,
        /// Level of the denying entry.
        level: u32,
        /// The denied access.
        access: Access,
    },
    /// An entry's output address exceeds the output address size.
    OutputAddressSize {
        /// The faulting IOVA.
        iova: Iova,
        /// The out-of-range address.
        addr: PhysAddr,
    },
    /// An entry uses a reserved encoding.
    Malformed {
        /// The faulting IOVA.
        iova: Iova,
        /// Level of the entry.
        level: u32,
        /// The raw entry.
        pte: u64,
    },
    /// The hardware configuration itself is invalid.
    BadConfig {
        /// The offending register value.
        value: u64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressSize { iova, ias } => write!(f, "IOVA {iova} beyond {ias}-bit input size"),
            Self::NotPresent { iova, level } => write!(f, "IOVA {iova}: no entry at level {level}"),
            Self::Permission {
                iova,
                level,
                access,
            } => {
                write!(f, "IOVA {iova}: {access:?} denied at level {level}")
            }
            Self::OutputAddressSize { iova, addr } => {
                write!(f, "IOVA {iova}: output address {addr} beyond output size")
            }
            Self::Malformed { iova, level, pte } => {
                write!(
                    f,
                    "IOVA {iova}: reserved entry {pte:#018x} at level {level}"
                )
            }
            Self::BadConfig { value } => write!(f, "invalid walker configuration value {value:#x}"),
        }
    }
}

impl core::error::Error for Fault {}

/// A completed walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Output address for the walked IOVA (page offset included).
    pub pa: PhysAddr,
    /// log2 of the size of the page that translated it.
    pub page_lg2: u32,
    /// Level of the leaf.
    pub level: u32,
    /// Effective read permission along the walk.
    pub read: bool,
    /// Effective write permission along the walk.
    pub write: bool,
}

impl Walk {
    /// Whether `access` is allowed.
    pub fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// Walks the tables for `iova` in `mem` and reports the translation with its
/// effective permissions (no access check).
pub fn walk<M: WalkMem + ?Sized>(regs: &HwRegs, mem: &M, iova: Iova) -> Result<Walk, Fault> {
    match *regs {
        HwRegs::VtdSs { ssptptr, aw } => vtd::walk(mem, ssptptr, aw, iova),
        HwRegs::AmdV1 { pt_root, mode } => amd::walk(mem, pt_root, mode, iova),
        HwRegs::ArmLpae {
            stage2,
            ttbr,
            granule_shift,
            tsz,
            ps,
            sl,
        } => arm::walk(
            mem,
            arm::Cfg {
                stage2,
                ttbr,
                granule_shift,
                tsz,
                ps,
                sl,
            },
            iova,
        ),
    }
}

/// Translates `iova` for `access` like the IOMMU does: walk, then check the
/// permission of the leaf.
pub fn translate<M: WalkMem + ?Sized>(
    regs: &HwRegs,
    mem: &M,
    iova: Iova,
    access: Access,
) -> Result<PhysAddr, Fault> {
    let w = walk(regs, mem, iova)?;
    if w.allows(access) {
        Ok(w.pa)
    } else {
        Err(Fault::Permission {
            iova,
            level: w.level,
            access,
        })
    }
}
