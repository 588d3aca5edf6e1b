//! A model NVMe controller, the device side of the driver: it fetches PRP2
//! and the PRP list pages itself with DMA reads (following the chain
//! pointer in the last slot of a full list page), holds every entry to the
//! NVMe rules, and moves the data page by page to or from a namespace on
//! sparse storage. It shares no code with the driver's PRP builder
//! ([`super::prp`]), so a builder bug shows as a typed [`ControllerError`]
//! or wrong bytes, not as agreement.
//!
//! SGL commands: a Data Block descriptor in the command, or a Last Segment
//! descriptor naming a qword-aligned list of Data Block descriptors whose
//! lengths add up to the command's.
//!
//! The PRP rules (NVMe base specification, "Physical Region Page Entry and
//! List"): PRP1 may carry an offset, dword aligned; PRP2 is a whole page
//! when the data ends in the second page, else a qword-aligned PRP list
//! pointer; list entries name whole pages (offset 0); the last entry of a
//! list page points to the next list page when more entries follow.

use super::command::{Command, Opcode, Psdt};
use super::prp::NVME_CTRL_PAGE_SIZE;
use super::sgl::{SglDescriptor, SGL_TYPE_DATA_BLOCK, SGL_TYPE_LAST_SEGMENT};
use super::sqe::{self, SQE_SIZE};
use crate::wire::Wire;
use core::fmt;
use dma_api::{Bdf, DmaAddr};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

const PAGE: u64 = NVME_CTRL_PAGE_SIZE;
const SLOTS: u64 = PAGE / 8;

/// The namespace's logical block size (the 512-byte LBA format).
pub const LBA_SIZE: u64 = 512;

/// A PRP rule the controller found broken, or a failed data transfer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ControllerError {
    /// PRP1 is not dword aligned.
    Prp1Unaligned {
        /// PRP1.
        prp1: u64,
    },
    /// PRP2 is non-zero though the data ends in PRP1's page.
    Prp2NotZero {
        /// PRP2.
        prp2: u64,
    },
    /// PRP2 as the second data page is not page aligned.
    Prp2Unaligned {
        /// PRP2.
        prp2: u64,
    },
    /// The PRP list pointer is not qword aligned.
    ListUnaligned {
        /// The pointer.
        list: u64,
    },
    /// A list entry (or chained list pointer) is not page aligned.
    EntryUnaligned {
        /// Which data page (0 = the first after PRP1's).
        page: u64,
        /// The entry.
        entry: u64,
    },
    /// The transfer is not a whole number of logical blocks, or lies past
    /// the namespace.
    BadRange {
        /// First LBA.
        slba: u64,
        /// Bytes.
        len: u64,
    },
    /// An SGL command without its descriptor, or a descriptor of a type
    /// not allowed where it is (only Data Block in the command or a last
    /// segment; Last Segment in the command).
    SglBadType {
        /// The descriptor's type.
        kind: u8,
    },
    /// The SGL list pointer is not qword aligned, or its length is not
    /// whole descriptors.
    SglListInvalid {
        /// The list's address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The descriptors describe other than the command's length.
    SglLength {
        /// Bytes the descriptors describe.
        described: u64,
        /// The command's.
        len: u64,
    },
    /// A fetched entry with an unsupported opcode (the value) or a reserved
    /// PSDT (the value shifted left by 8).
    BadEntry {
        /// The offending field.
        code: u32,
    },
    /// A DMA read or write of the controller faulted on the bus.
    Bus(String),
}

impl fmt::Display for ControllerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Prp1Unaligned { prp1 } => write!(f, "PRP1 {prp1:#x} is not dword aligned"),
            Self::Prp2NotZero { prp2 } => write!(f, "PRP2 {prp2:#x} set for a one-page transfer"),
            Self::Prp2Unaligned { prp2 } => write!(f, "PRP2 {prp2:#x} is not page aligned"),
            Self::ListUnaligned { list } => {
                write!(f, "PRP list pointer {list:#x} is not qword aligned")
            }
            Self::EntryUnaligned { page, entry } => {
                write!(
                    f,
                    "PRP entry {entry:#x} for data page {page} is not page aligned"
                )
            }
            Self::BadRange { slba, len } => write!(
                f,
                "LBA {slba} + {len:#x} bytes is outside the namespace or not whole blocks"
            ),
            Self::SglBadType { kind } => {
                write!(f, "SGL descriptor type {kind:#x} not allowed here")
            }
            Self::SglListInvalid { addr, len } => {
                write!(f, "SGL list at {addr:#x} of {len:#x} bytes is not qword aligned whole descriptors")
            }
            Self::SglLength { described, len } => {
                write!(
                    f,
                    "SGL describes {described:#x} bytes for a {len:#x}-byte command"
                )
            }
            Self::BadEntry { code } => {
                write!(f, "submission entry with unsupported field {code:#x}")
            }
            Self::Bus(e) => write!(f, "bus fault: {e}"),
        }
    }
}

impl std::error::Error for ControllerError {}

/// A namespace on sparse storage: only written blocks take memory; the rest
/// reads as zeros.
#[derive(Clone, Debug, Default)]
pub struct Namespace {
    blocks: BTreeMap<u64, Vec<u8>>,
    capacity: u64,
}

impl Namespace {
    /// A namespace of `capacity` logical blocks.
    pub fn new(capacity: u64) -> Self {
        Self {
            blocks: BTreeMap::new(),
            capacity,
        }
    }

    /// Its size in logical blocks.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn check(&self, slba: u64, len: u64) -> Result<(), ControllerError> {
        let blocks = len / LBA_SIZE;
        let fits = slba
            .checked_add(blocks)
            .is_some_and(|end| end <= self.capacity);
        if !len.is_multiple_of(LBA_SIZE) || !fits {
            return Err(ControllerError::BadRange { slba, len });
        }
        Ok(())
    }

    /// The bytes of `len / LBA_SIZE` blocks from `slba`.
    pub fn read(&self, slba: u64, len: u64) -> Result<Vec<u8>, ControllerError> {
        self.check(slba, len)?;
        let mut out = Vec::with_capacity(len as usize);
        for lba in slba..slba + len / LBA_SIZE {
            match self.blocks.get(&lba) {
                Some(b) => out.extend_from_slice(b),
                None => out.resize(out.len() + LBA_SIZE as usize, 0),
            }
        }
        Ok(out)
    }

    /// Stores `data` (whole blocks) from `slba`.
    pub fn write(&mut self, slba: u64, data: &[u8]) -> Result<(), ControllerError> {
        self.check(slba, data.len() as u64)?;
        for (k, b) in data.chunks(LBA_SIZE as usize).enumerate() {
            self.blocks.insert(slba + k as u64, b.to_vec());
        }
        Ok(())
    }

    /// Blocks holding data.
    pub fn stored_blocks(&self) -> usize {
        self.blocks.len()
    }
}

/// The controller: its function on the bus and its namespace.
#[derive(Debug)]
pub struct NvmeController {
    bdf: Bdf,
    ns: Namespace,
    /// Bytes of PRP lists fetched (descriptors, not data).
    descriptor_bytes: AtomicU64,
}

impl NvmeController {
    /// A controller at `bdf` with namespace `ns`.
    pub fn new(bdf: Bdf, ns: Namespace) -> Self {
        Self {
            bdf,
            ns,
            descriptor_bytes: AtomicU64::new(0),
        }
    }

    /// Bytes of submission entries, PRP lists and SGL lists the controller
    /// fetched so far: what its DMA reads moved that were descriptors, not
    /// data.
    pub fn descriptor_bytes(&self) -> u64 {
        self.descriptor_bytes.load(Ordering::Relaxed)
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// Its function.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    fn read_u64(&self, wire: &dyn Wire, at: u64) -> Result<u64, ControllerError> {
        let mut b = [0u8; 8];
        wire.dma_read(self.bdf, DmaAddr::new(at), &mut b)
            .map_err(ControllerError::Bus)?;
        self.descriptor_bytes.fetch_add(8, Ordering::Relaxed);
        Ok(u64::from_le_bytes(b))
    }

    /// The data pages of `cmd` as `(DMA address, bytes)` in transfer order,
    /// fetching the PRP lists with DMA reads and checking every rule.
    pub fn data_pages(
        &self,
        wire: &dyn Wire,
        cmd: &Command,
    ) -> Result<Vec<(u64, u64)>, ControllerError> {
        if cmd.prp1 & 3 != 0 {
            return Err(ControllerError::Prp1Unaligned { prp1: cmd.prp1 });
        }
        let first = (PAGE - cmd.prp1 % PAGE).min(cmd.len);
        let mut out = vec![(cmd.prp1, first)];
        let mut left = cmd.len - first;
        let n = left.div_ceil(PAGE);
        match n {
            0 if cmd.prp2 != 0 => return Err(ControllerError::Prp2NotZero { prp2: cmd.prp2 }),
            0 => return Ok(out),
            1 if !cmd.prp2.is_multiple_of(PAGE) => {
                return Err(ControllerError::Prp2Unaligned { prp2: cmd.prp2 })
            }
            1 => {
                out.push((cmd.prp2, left));
                return Ok(out);
            }
            _ => {}
        }
        if !cmd.prp2.is_multiple_of(8) {
            return Err(ControllerError::ListUnaligned { list: cmd.prp2 });
        }
        let (mut list, mut slot) = (cmd.prp2 - cmd.prp2 % PAGE, cmd.prp2 % PAGE / 8);
        for k in 0..n {
            if slot == SLOTS - 1 && n - k > 1 {
                list = self.read_u64(wire, list + slot * 8)?;
                if list % PAGE != 0 {
                    return Err(ControllerError::EntryUnaligned {
                        page: k,
                        entry: list,
                    });
                }
                slot = 0;
            }
            let entry = self.read_u64(wire, list + slot * 8)?;
            if entry % PAGE != 0 {
                return Err(ControllerError::EntryUnaligned { page: k, entry });
            }
            let take = left.min(PAGE);
            out.push((entry, take));
            left -= take;
            slot += 1;
        }
        Ok(out)
    }

    /// The data ranges of an SGL command: its Data Block descriptor, or the
    /// Data Block descriptors of the list its Last Segment descriptor names
    /// (fetched with a DMA read), each checked, their sum the command's
    /// length.
    pub fn sgl_ranges(
        &self,
        wire: &dyn Wire,
        cmd: &Command,
    ) -> Result<Vec<(u64, u64)>, ControllerError> {
        let head = cmd.sgl.ok_or(ControllerError::SglBadType { kind: 0xff })?;
        let descs = match head.kind {
            SGL_TYPE_DATA_BLOCK => vec![head],
            SGL_TYPE_LAST_SEGMENT => {
                if head.addr % 8 != 0 || head.len == 0 || head.len % 16 != 0 {
                    return Err(ControllerError::SglListInvalid {
                        addr: head.addr,
                        len: head.len,
                    });
                }
                let mut raw = vec![0u8; head.len as usize];
                wire.dma_read(self.bdf, DmaAddr::new(head.addr), &mut raw)
                    .map_err(ControllerError::Bus)?;
                self.descriptor_bytes
                    .fetch_add(u64::from(head.len), Ordering::Relaxed);
                let mut v = Vec::with_capacity(raw.len() / 16);
                for c in raw.chunks_exact(16) {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(c);
                    let d = SglDescriptor::from_bytes(&b);
                    if d.kind != SGL_TYPE_DATA_BLOCK {
                        return Err(ControllerError::SglBadType { kind: d.kind });
                    }
                    v.push(d);
                }
                v
            }
            kind => return Err(ControllerError::SglBadType { kind }),
        };
        let described: u64 = descs.iter().map(|d| u64::from(d.len)).sum();
        if described != cmd.len {
            return Err(ControllerError::SglLength {
                described,
                len: cmd.len,
            });
        }
        Ok(descs.iter().map(|d| (d.addr, u64::from(d.len))).collect())
    }

    /// Fetches the entry at `slot` of the submission queue at `sq` with a
    /// DMA read (counted with the descriptor bytes) and decodes it.
    pub fn fetch(
        &self,
        wire: &dyn Wire,
        sq: DmaAddr,
        slot: u16,
    ) -> Result<Command, ControllerError> {
        let mut b = [0u8; 64];
        let at = DmaAddr::new(sq.raw() + u64::from(slot) * SQE_SIZE);
        wire.dma_read(self.bdf, at, &mut b)
            .map_err(ControllerError::Bus)?;
        self.descriptor_bytes.fetch_add(SQE_SIZE, Ordering::Relaxed);
        sqe::decode(&b)
            .map(|d| d.command)
            .map_err(|code| ControllerError::BadEntry { code })
    }

    /// Fetches the entry at `slot` and executes it.
    pub fn fetch_and_execute(
        &mut self,
        wire: &dyn Wire,
        sq: DmaAddr,
        slot: u16,
    ) -> Result<u64, ControllerError> {
        let cmd = self.fetch(wire, sq, slot)?;
        self.execute(wire, &cmd)
    }

    /// Executes `cmd`: a read moves namespace blocks into the PRP pages, a
    /// write moves the PRP pages into the namespace. Returns the bytes
    /// moved. A rule broken or a bus fault stops it before the namespace
    /// changes.
    pub fn execute(&mut self, wire: &dyn Wire, cmd: &Command) -> Result<u64, ControllerError> {
        let pages = match cmd.psdt {
            Psdt::Prp => self.data_pages(wire, cmd)?,
            Psdt::Sgl => self.sgl_ranges(wire, cmd)?,
        };
        match cmd.opcode {
            Opcode::Read => {
                let data = self.ns.read(cmd.slba, cmd.len)?;
                let mut at = 0usize;
                for (addr, len) in pages {
                    let len = len as usize;
                    wire.dma_write(self.bdf, DmaAddr::new(addr), &data[at..at + len])
                        .map_err(ControllerError::Bus)?;
                    at += len;
                }
            }
            Opcode::Write => {
                self.ns.check(cmd.slba, cmd.len)?;
                let mut data = Vec::with_capacity(cmd.len as usize);
                for (addr, len) in pages {
                    let mut b = vec![0u8; len as usize];
                    wire.dma_read(self.bdf, DmaAddr::new(addr), &mut b)
                        .map_err(ControllerError::Bus)?;
                    data.extend_from_slice(&b);
                }
                self.ns.write(cmd.slba, &data)?;
            }
        }
        Ok(cmd.len)
    }
}
