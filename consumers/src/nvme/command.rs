//! The submission queue entry the driver builds, reduced to what the data
//! path fills (include/linux/nvme.h `struct nvme_rw_command`).

/// NVM command set opcodes (include/linux/nvme.h `nvme_cmd_write`,
/// `nvme_cmd_read`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum Opcode {
    /// `nvme_cmd_write` (0x01).
    Write = 0x01,
    /// `nvme_cmd_read` (0x02).
    Read = 0x02,
}

/// How the command names its data (`PSDT` in command dword 0).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Psdt {
    /// PRP1 and PRP2 (PSDT 00b).
    #[default]
    Prp,
    /// `dptr.sgl`, a Data Block or Last Segment descriptor (PSDT 01b,
    /// `NVME_CMD_SGL_METABUF`).
    Sgl,
}

/// A read or write command as submitted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Command {
    /// What to do.
    pub opcode: Opcode,
    /// `dptr.prp1`: the DMA address of the first byte.
    pub prp1: u64,
    /// `dptr.prp2`: 0 if the data ends in PRP1's page, the second page's
    /// address if it ends in the next one, else the DMA address of the
    /// first PRP list page.
    pub prp2: u64,
    /// Bytes to transfer (the namespace's block count, in bytes here).
    pub len: u64,
    /// First logical block (`slba`, 512-byte blocks: the block layer's
    /// sector).
    pub slba: u64,
    /// PRPs or SGL.
    pub psdt: Psdt,
    /// `dptr.sgl` when `psdt` is [`Psdt::Sgl`].
    pub sgl: Option<super::sgl::SglDescriptor>,
    /// PRP list pages behind `prp2` (0 when `prp2` is not a list).
    pub list_pages: usize,
}
