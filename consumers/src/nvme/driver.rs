//! Probe (the DMA constraints an NVMe controller needs) and the submission
//! path (map, PRPs, command): drivers/nvme/host/pci.c `nvme_pci_alloc_dev`,
//! `nvme_map_data`, `nvme_pci_setup_prps`.

use super::command::{Command, Opcode};
use super::error::NvmeError;
use super::inflight::InFlight;
use super::prp::{self, NVME_CTRL_PAGE_SIZE, PRPS_PER_PAGE};
use super::request::{Op, Request};
use dma_api::device::CoherentAllocation;
use dma_api::{DmaAttrs, DmaDevice, DmaMask, Segment};
use std::sync::Arc;

/// The most one command carries, in KiB (drivers/nvme/host/pci.c
/// `NVME_MAX_KB_SZ`).
pub const NVME_MAX_KB_SZ: u64 = 8192;

/// One NVMe controller's data path over its [`DmaDevice`].
#[derive(Debug)]
pub struct Nvme {
    dev: Arc<DmaDevice>,
}

impl Nvme {
    /// Takes the device and states its DMA constraints as Linux does before
    /// the first I/O:
    /// * `dma_set_mask_and_coherent(64)` (`nvme_pci_alloc_dev`; controllers
    ///   with `NVME_QUIRK_DMA_ADDRESS_BITS_48` use 48 — not modelled);
    /// * `dma_set_min_align_mask(NVME_CTRL_PAGE_SIZE - 1)`: a bounce keeps
    ///   the offset inside a controller page, so PRPs stay valid;
    /// * `dma_set_max_seg_size(0xffffffff)`: no segment cut for the DMA
    ///   layer's sake (PRPs describe pages, not segments);
    /// * the virt boundary `NVME_CTRL_PAGE_SIZE - 1` (core.c
    ///   `nvme_set_ctrl_limits`): the PRP rule on the request's buffers.
    ///
    /// The segment boundary stays the PCI default (4 GiB), as in Linux.
    pub fn probe(dev: Arc<DmaDevice>) -> Result<Self, NvmeError> {
        dev.set_mask_and_coherent(DmaMask::BITS_64)?;
        dev.set_min_align_mask(NVME_CTRL_PAGE_SIZE - 1)?;
        dev.set_max_seg_size(u32::MAX)?;
        dev.set_virt_boundary(NVME_CTRL_PAGE_SIZE - 1)?;
        Ok(Self { dev })
    }

    /// The device.
    pub fn device(&self) -> &Arc<DmaDevice> {
        &self.dev
    }

    /// Prepares `req` for the controller (`nvme_prep_rq` → `nvme_map_data`):
    /// checks the buffers (dword alignment, size), builds the table with
    /// kinds from the memory map, maps it in the request's direction, turns
    /// the DMA segments into PRP1/PRP2 or a PRP list in coherent memory and
    /// returns the in-flight request holding the command. On any error
    /// nothing stays mapped or allocated.
    pub fn submit(&self, req: &Request) -> Result<InFlight, NvmeError> {
        let max = NVME_MAX_KB_SZ * 1024;
        if req.is_empty() {
            return Err(NvmeError::EmptyRequest);
        }
        match req.len() {
            Some(l) if l <= max => {}
            len => return Err(NvmeError::TooLarge { len, max }),
        }
        for (index, &(phys, len)) in req.buffers.iter().enumerate() {
            if (phys.raw() | len) & 3 != 0 {
                return Err(NvmeError::Unaligned { index, phys, len });
            }
        }
        let dir = req.op.direction();
        let mut table = self
            .dev
            .table_from_ranges(&req.buffers, u64::from(u32::MAX))?;
        self.dev.map_sgtable(&mut table, dir, DmaAttrs::empty())?;
        let mut inflight = InFlight::new(self.dev.clone(), table, dir);
        let segments: Vec<Segment> = dma_api::segments(inflight.table()).collect();
        // Returning early drops `inflight`, which unmaps the table.
        let (command, lists) = self.command_for(req.op, &segments)?;
        inflight.arm(command, lists);
        Ok(inflight)
    }

    /// The command for `op` over mapped DMA `segments` (`nvme_pci_setup_prps`):
    /// PRP1/PRP2 or a PRP list in coherent memory, whose pages come back
    /// with it. The segments must follow the PRP rules.
    pub(super) fn command_for(
        &self,
        op: Op,
        segments: &[Segment],
    ) -> Result<(Command, Vec<CoherentAllocation>), NvmeError> {
        let plan = prp::plan(segments).map_err(|(i, rule)| {
            let (dma, len) = segments
                .get(i)
                .map_or((dma_api::DmaAddr::new(0), 0), |s| (s.dma, s.len));
            NvmeError::PrpInvalid {
                segment: i,
                dma,
                len,
                rule,
            }
        })?;
        let lists = self.write_lists(&plan.pages)?;
        let prp2 = match plan.pages.len() {
            0 => 0,
            1 => plan.pages[0],
            _ => lists.first().map_or(0, |l| l.dma_handle().raw()),
        };
        let command = Command {
            opcode: match op {
                Op::Read => Opcode::Read,
                Op::Write => Opcode::Write,
            },
            prp1: plan.prp1,
            prp2,
            len: plan.len,
            list_pages: lists.len(),
            slba: 0,
            psdt: super::command::Psdt::Prp,
            sgl: None,
        };
        Ok((command, lists))
    }

    /// The command for `op` over mapped DMA `segments` as an SGL
    /// (`nvme_pci_setup_sgls`): one Data Block descriptor in the command,
    /// or a Last Segment descriptor pointing to a list page in coherent
    /// memory holding one per segment.
    pub(super) fn command_for_sgl(
        &self,
        op: Op,
        segments: &[Segment],
    ) -> Result<(Command, Vec<CoherentAllocation>), NvmeError> {
        use super::sgl::{self, SglDescriptor, SGL_TYPE_LAST_SEGMENT};
        let descs = sgl::plan(segments)
            .map_err(|(segment, rule)| NvmeError::SglInvalid { segment, rule })?;
        let mut lists = Vec::new();
        let head = match descs.as_slice() {
            [] => return Err(NvmeError::EmptyRequest),
            [one] => *one,
            many => {
                let list = self.dev.alloc_coherent_buf(NVME_CTRL_PAGE_SIZE)?;
                let bytes: Vec<u8> = many.iter().flat_map(|d| d.to_bytes()).collect();
                list.write(0, &bytes)?;
                let head = SglDescriptor {
                    addr: list.dma_handle().raw(),
                    len: bytes.len() as u32,
                    kind: SGL_TYPE_LAST_SEGMENT,
                };
                lists.push(list);
                head
            }
        };
        let command = Command {
            opcode: match op {
                Op::Read => Opcode::Read,
                Op::Write => Opcode::Write,
            },
            prp1: 0,
            prp2: 0,
            len: segments.iter().map(|s| s.len).sum(),
            list_pages: lists.len(),
            slba: 0,
            psdt: super::command::Psdt::Sgl,
            sgl: Some(head),
        };
        Ok((command, lists))
    }

    /// The PRP list pages for `pages` (none for two entries or fewer), each
    /// a coherent page written by the CPU: little-endian u64 entries, the
    /// last slot of a non-final page pointing to the next.
    fn write_lists(&self, pages: &[u64]) -> Result<Vec<CoherentAllocation>, NvmeError> {
        if pages.len() <= 1 {
            return Ok(Vec::new());
        }
        let chunks = prp::list_chunks(pages.len());
        let mut lists = Vec::with_capacity(chunks.len());
        for _ in &chunks {
            lists.push(self.dev.alloc_coherent_buf(NVME_CTRL_PAGE_SIZE)?);
        }
        for (k, chunk) in chunks.iter().enumerate() {
            let mut bytes: Vec<u8> = pages[chunk.clone()]
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect();
            if let Some(next) = lists.get(k + 1) {
                bytes.extend_from_slice(&next.dma_handle().raw().to_le_bytes());
                debug_assert_eq!(bytes.len(), PRPS_PER_PAGE * 8);
            }
            lists[k].write(0, &bytes)?;
        }
        Ok(lists)
    }
}
