//! A submitted request until it completes: it owns the mapped table and the
//! PRP list pages, and undoes both on completion (drivers/nvme/host/pci.c
//! `nvme_unmap_data`: `dma_unmap_sgtable`, then the PRP pages go back).

use super::command::{Command, Opcode};
use super::error::NvmeError;
use dma_api::device::CoherentAllocation;
use dma_api::{Direction, DmaAttrs, DmaDevice};
use scatterlist::SgTable;
use std::sync::Arc;

/// A request the controller may now execute.
///
/// # Invariants
/// Until [`InFlight::complete`] or drop, `table` is mapped for `dev` in
/// `dir` and `lists` are live allocations of `dev`; `command` names only
/// them.
#[derive(Debug)]
pub struct InFlight {
    dev: Arc<DmaDevice>,
    table: SgTable,
    dir: Direction,
    lists: Vec<CoherentAllocation>,
    command: Command,
    done: bool,
}

impl InFlight {
    /// A mapped table not yet described by a command.
    pub(super) fn new(dev: Arc<DmaDevice>, table: SgTable, dir: Direction) -> Self {
        Self {
            dev,
            table,
            dir,
            lists: Vec::new(),
            command: Command {
                opcode: Opcode::Read,
                prp1: 0,
                prp2: 0,
                len: 0,
                list_pages: 0,
                slba: 0,
                psdt: super::command::Psdt::Prp,
                sgl: None,
            },
            done: false,
        }
    }

    /// Hands over the command and the PRP list pages it points to.
    pub(super) fn arm(&mut self, command: Command, lists: Vec<CoherentAllocation>) {
        self.command = command;
        self.lists = lists;
    }

    /// The submitted command.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// The mapped table (its DMA segments are what the PRPs describe).
    pub fn table(&self) -> &SgTable {
        &self.table
    }

    /// The request's direction.
    pub fn direction(&self) -> Direction {
        self.dir
    }

    /// The controller finished: unmap the data (bounced data is copied back
    /// for a read here), then free the PRP list pages. The first error is
    /// returned; everything is attempted.
    pub fn complete(mut self) -> Result<(), NvmeError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), NvmeError> {
        self.done = true;
        let mut first = self
            .dev
            .unmap_sgtable(&mut self.table, self.dir, DmaAttrs::empty())
            .err();
        for list in self.lists.drain(..) {
            if let Err(e) = list.free() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), |e| Err(e.into()))
    }
}

impl Drop for InFlight {
    /// A request dropped before completing (an error path, or an aborted
    /// command) is unmapped and freed; errors go to the context's drop-error
    /// record.
    fn drop(&mut self) {
        if !self.done {
            if let Err(NvmeError::Dma(e)) = self.finish() {
                self.dev.context().report_drop_error(e);
            }
        }
    }
}
