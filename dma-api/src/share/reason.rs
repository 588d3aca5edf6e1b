//! The reason chain of a negotiation: each step that judged a placement
//! (the P2P oracle, the arch's veto, the owner's policy, the exporter's
//! answer, the importer's capabilities) with what it said.

use crate::error::DmaError;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Who said it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ReasonSource {
    /// The P2P oracle (drivers/pci/p2pdma.c `calc_map_type_and_dist`).
    Oracle,
    /// The CPU architecture's veto of a peer route.
    Arch,
    /// The memory owner's provider policy.
    Policy,
    /// The exporting driver's answer to the attach.
    Exporter,
    /// The importer's capabilities.
    Importer,
    /// Any other refusal of the DMA layer.
    Dma,
}

impl ReasonSource {
    /// Short name (`oracle`, `arch`, `policy`, `exporter`, `importer`, `dma`).
    pub const fn name(self) -> &'static str {
        match self {
            ReasonSource::Oracle => "oracle",
            ReasonSource::Arch => "arch",
            ReasonSource::Policy => "policy",
            ReasonSource::Exporter => "exporter",
            ReasonSource::Importer => "importer",
            ReasonSource::Dma => "dma",
        }
    }
}

/// One link of a reason chain.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reason {
    /// Who said it.
    pub source: ReasonSource,
    /// What it said.
    pub text: String,
}

impl Reason {
    /// A reason from `source`.
    pub fn new(source: ReasonSource, text: impl Into<String>) -> Self {
        Self {
            source,
            text: text.into(),
        }
    }

    /// The chain a dispatcher refusal carries: the oracle's reasons one by
    /// one, the arch's why, the policy's reason, or the error itself.
    pub fn chain_of(e: &DmaError) -> Vec<Reason> {
        match e {
            DmaError::P2pUnreachable { reasons, .. } => reasons
                .iter()
                .map(|r| Reason::new(ReasonSource::Oracle, r.clone()))
                .collect(),
            DmaError::ArchNoP2p { arch, why } => {
                alloc::vec![Reason::new(
                    ReasonSource::Arch,
                    alloc::format!("{arch}: {why}")
                )]
            }
            DmaError::ProviderRefused { reason, .. } => {
                alloc::vec![Reason::new(ReasonSource::Policy, reason.clone())]
            }
            DmaError::TableEntry { cause, .. } => Self::chain_of(cause),
            other => alloc::vec![Reason::new(ReasonSource::Dma, other.to_string())],
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source.name(), self.text)
    }
}
