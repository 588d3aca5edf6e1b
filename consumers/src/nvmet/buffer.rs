//! One command's data buffer (drivers/nvme/target/core.c
//! `nvmet_req_alloc_sgls`): p2pmem of the chosen provider
//! (`pci_p2pmem_alloc_sgl`), else system memory (`sgl_alloc`) — and the
//! buffer says which and why.

use super::error::NvmetError;
use super::port::ProviderChoice;
use core::fmt;
use dma_api::p2p::P2pAlloc;
use dma_api::{Bdf, DmaContext, DmaError, PhysAddr};
use std::sync::Arc;

/// Why a buffer is in system memory.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fallback {
    /// The port's setting is "0".
    Disabled,
    /// No published provider suits every client (`find_many` found none).
    NoProvider {
        /// The clients.
        clients: Vec<Bdf>,
    },
    /// The provider's allocation failed (`pci_p2pmem_alloc_sgl`).
    AllocFailed {
        /// The provider.
        provider: Bdf,
        /// Its error.
        error: DmaError,
    },
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("p2pmem is off for this port"),
            Self::NoProvider { clients } => {
                f.write_str("no published p2pmem suits every client (")?;
                for (i, c) in clients.iter().enumerate() {
                    write!(f, "{}{c}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str(")")
            }
            Self::AllocFailed { provider, error } => {
                write!(f, "p2pmem allocation from {provider} failed: {error}")
            }
        }
    }
}

/// Where a buffer lives.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Source {
    /// A provider's p2pmem.
    P2pMem {
        /// The provider.
        provider: Bdf,
    },
    /// System memory, with the reason.
    SystemMemory(Fallback),
}

/// A data buffer; freed on drop.
#[derive(Debug)]
pub struct IoBuffer {
    ctx: Arc<DmaContext>,
    phys: PhysAddr,
    len: u64,
    p2p: Option<P2pAlloc>,
    source: Source,
}

impl IoBuffer {
    /// `len` bytes as `choice` says, falling back to system memory when the
    /// provider's allocation fails.
    pub fn alloc(
        ctx: &Arc<DmaContext>,
        choice: &ProviderChoice,
        len: u64,
    ) -> Result<Self, NvmetError> {
        if len == 0 {
            return Err(NvmetError::BadLength { len });
        }
        let fallback = match choice {
            ProviderChoice::Provider { device, .. } => match ctx.alloc_p2pmem(*device, len) {
                Ok(a) => {
                    return Ok(Self {
                        ctx: ctx.clone(),
                        phys: a.phys,
                        len,
                        p2p: Some(a),
                        source: Source::P2pMem { provider: *device },
                    })
                }
                Err(error) => Fallback::AllocFailed {
                    provider: *device,
                    error,
                },
            },
            ProviderChoice::SystemMemory(f) => f.clone(),
        };
        let phys = ctx.alloc_ram(len)?;
        Ok(Self {
            ctx: ctx.clone(),
            phys,
            len,
            p2p: None,
            source: Source::SystemMemory(fallback),
        })
    }

    /// First byte.
    pub fn phys(&self) -> PhysAddr {
        self.phys
    }

    /// Length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if empty (never: allocation refuses zero bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where it lives and why.
    pub fn source(&self) -> &Source {
        &self.source
    }
}

impl Drop for IoBuffer {
    fn drop(&mut self) {
        let r = match self.p2p.take() {
            Some(a) => self.ctx.free_p2pmem(a),
            None => self.ctx.free_ram(self.phys),
        };
        if let Err(e) = r {
            self.ctx.report_drop_error(e);
        }
    }
}
