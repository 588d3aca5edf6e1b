//! The NVMe controller as an importer of a shared buffer: the attachment
//! API the block layer calls for I/O into or out of a dma-buf (the block
//! side of it is the block/RDMA issue). A command is built from the
//! attachment's DMA-only mapping — PRPs from its segments, exactly as for a
//! request's own buffers — and completing it unmaps.

use super::command::Command;
use super::driver::Nvme;
use super::error::NvmeError;
use super::request::Op;
use dma_api::device::CoherentAllocation;
use dma_api::share::{
    Attachment, ImporterCaps, ImporterOps, Notice, ShareAccess, ShareMapping, SharedBuffer,
};
use std::sync::Arc;

/// The controller's notifications: a mapping lives for one command, so an
/// invalidation needs nothing (the next command maps the new placement); a
/// revocation is acknowledged at once and completes when the commands in
/// flight complete (their unmaps).
struct NvmeOps;

impl ImporterOps for NvmeOps {
    fn revoke(&self, n: &mut Notice<'_>) {
        n.ack();
    }
}

impl Nvme {
    /// Attaches to `buf` for `access`, accepting every placement (peer by
    /// bus address first), as a dynamic importer.
    pub fn import(
        &self,
        buf: &SharedBuffer,
        access: ShareAccess,
    ) -> Result<NvmeImport<'_>, NvmeError> {
        let att = buf.attach(
            self.device().clone(),
            ImporterCaps::any(access, true),
            Arc::new(NvmeOps),
        )?;
        Ok(NvmeImport { nvme: self, att })
    }
}

/// An imported buffer the controller reads or writes whole.
#[derive(Debug)]
pub struct NvmeImport<'a> {
    nvme: &'a Nvme,
    att: Attachment,
}

impl NvmeImport<'_> {
    /// The attachment.
    pub fn attachment(&self) -> &Attachment {
        &self.att
    }

    /// Maps the buffer for `op` and builds its command; nothing stays mapped
    /// or allocated on an error.
    pub fn submit(&self, op: Op) -> Result<ImportedIo<'_>, NvmeError> {
        let mapping = self.att.map(op.direction())?;
        match self.nvme.command_for(op, mapping.segments()) {
            Ok((command, lists)) => Ok(ImportedIo {
                att: &self.att,
                mapping: Some(mapping),
                lists,
                command,
            }),
            Err(e) => {
                self.att.unmap(mapping.id())?;
                Err(e)
            }
        }
    }

    /// Detaches (after every command completed).
    pub fn detach(mut self) -> Result<(), NvmeError> {
        self.att.detach().map_err(NvmeError::from)
    }
}

/// A submitted command over an imported buffer.
#[derive(Debug)]
pub struct ImportedIo<'a> {
    att: &'a Attachment,
    mapping: Option<ShareMapping>,
    lists: Vec<CoherentAllocation>,
    command: Command,
}

impl ImportedIo<'_> {
    /// The command for the controller.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// The mapping the command names.
    pub fn mapping(&self) -> Option<&ShareMapping> {
        self.mapping.as_ref()
    }

    /// The controller finished: unmap, then free the PRP list pages. The
    /// first error is returned; everything is attempted.
    pub fn complete(mut self) -> Result<(), NvmeError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), NvmeError> {
        let mut first: Option<NvmeError> = None;
        if let Some(m) = self.mapping.take() {
            if let Err(e) = self.att.unmap(m.id()) {
                first = Some(e.into());
            }
        }
        for l in self.lists.drain(..) {
            if let Err(e) = l.free() {
                first.get_or_insert(e.into());
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for ImportedIo<'_> {
    /// An aborted command is unmapped and freed; DMA errors go to the
    /// context's drop-error record.
    fn drop(&mut self) {
        match self.finish() {
            Err(NvmeError::Dma(e)) | Err(NvmeError::Share(dma_api::share::ShareError::Dma(e))) => {
                self.att.buffer().context().report_drop_error(e)
            }
            _ => {}
        }
    }
}
