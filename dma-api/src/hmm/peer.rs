//! A peer's map of device-private memory: per page, the owner is asked for
//! the exact (provider, client, access) triple; its answer — BAR alias,
//! migration, refusal — is carried out and recorded in the page's reason
//! chain, and what remains to map goes through the client's own
//! [`DmaDevice`] like any other memory (a BAR alias is then judged by the
//! p2pmem registry, the oracle and the arch).
//!
//! Linux has no such path: mm/hmm.c `hmm_range_fault` migrates a
//! device-private page to RAM whenever the faulting driver is not its owner
//! (`hmm_is_device_private_entry` compares the pagemap owner only).

use super::error::HmmError;
use super::owner::{PeerAnswer, PeerAsk};
use super::registry::DevicePrivateMemory;
use crate::attrs::DmaAttrs;
use crate::device::{Decision, DmaDevice};
use crate::direction::Direction;
use crate::error::DmaError;
use crate::share::{Reason, ReasonSource};
use crate::types::{DmaAddr, PhysAddr, SegKind, PAGE_SIZE};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What was decided and mapped for one page.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageDecision {
    /// The device-private page.
    pub page: PhysAddr,
    /// The owner's answer (`None`: the page had already migrated, so the
    /// owner was not asked).
    pub answer: Option<PeerAnswer>,
    /// Where the client's accesses land (BAR alias or RAM copy).
    pub target: PhysAddr,
    /// The client's DMA address of the page.
    pub dma: DmaAddr,
    /// The reason chain: the owner's answer, then the dispatcher's view.
    pub reasons: Vec<Reason>,
}

/// A live peer mapping of device-private pages; unmapped by
/// [`PeerMapping::unmap`] or on drop (errors then go to the context's drop
/// log).
#[derive(Debug)]
pub struct PeerMapping {
    client: Arc<DmaDevice>,
    dir: Direction,
    pages: Vec<PageDecision>,
    live: bool,
}

impl PeerMapping {
    /// The per-page decisions, in page order.
    pub fn pages(&self) -> &[PageDecision] {
        &self.pages
    }

    /// The client.
    pub fn client(&self) -> &Arc<DmaDevice> {
        &self.client
    }

    /// Unmaps every page; the first error is returned after all were tried.
    pub fn unmap(mut self) -> Result<(), DmaError> {
        self.unmap_all()
    }

    fn unmap_all(&mut self) -> Result<(), DmaError> {
        if !core::mem::replace(&mut self.live, false) {
            return Ok(());
        }
        let mut first = Ok(());
        for p in &self.pages {
            let r = self
                .client
                .unmap_phys(p.dma, PAGE_SIZE, self.dir, DmaAttrs::empty());
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Drop for PeerMapping {
    fn drop(&mut self) {
        if let Err(e) = self.unmap_all() {
            self.client.context().report_drop_error(e);
        }
    }
}

/// What a peer map of one page would do, without doing it (no migration,
/// nothing left mapped): the owner's answer, the reason chain, and for a BAR
/// alias the dispatcher's full [`Decision`] (policy, oracle route with its
/// reasons, arch step, target) for the alias.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PeerExplanation {
    /// The owner's answer (`None`: already migrated, not asked).
    pub answer: Option<PeerAnswer>,
    /// The reason chain.
    pub reasons: Vec<Reason>,
    /// The dispatcher's trace of the alias, or of the RAM copy of a page
    /// that already migrated (`None` for a migration still to do or a
    /// refusal).
    pub decision: Option<Decision>,
}

impl DevicePrivateMemory {
    /// Explains [`DevicePrivateMemory::map_for_peer`] for one page (the
    /// `unidma map` of device-private memory): asks the owner, and traces
    /// the alias through the dispatcher with
    /// [`DmaDevice::explain_map`] (mapped and unmapped at once). A page to
    /// migrate is not migrated.
    pub fn explain_for_peer(
        &self,
        client: &DmaDevice,
        page: PhysAddr,
        dir: Direction,
    ) -> Result<PeerExplanation, HmmError> {
        let owner = self.owner_of(page)?;
        let provider = owner.device();
        if let Some(ram) = self.ram_copy(page) {
            return Ok(PeerExplanation {
                answer: None,
                reasons: alloc::vec![Reason::new(
                    ReasonSource::Policy,
                    format!("{page} already migrated to RAM at {ram}"),
                )],
                decision: Some(client.explain_map(ram, PAGE_SIZE, dir)),
            });
        }
        let answer = owner.peer_access(&PeerAsk {
            provider,
            client: client.bdf(),
            access: dir,
            page,
        });
        let (text, decision) = match &answer {
            PeerAnswer::BarAlias(a) => (
                format!(
                    "{provider} lets {} {} {page} through its BAR alias {a}",
                    client.bdf(),
                    access_verb(dir)
                ),
                Some(client.explain_map(*a, PAGE_SIZE, dir)),
            ),
            PeerAnswer::Migrate => (
                format!(
                    "{provider} would migrate {page} to RAM for {} ({})",
                    client.bdf(),
                    access_verb(dir)
                ),
                None,
            ),
            PeerAnswer::Refuse(why) => (why.clone(), None),
        };
        let mut reasons = alloc::vec![Reason::new(ReasonSource::Policy, text)];
        if let Some(e) = decision.as_ref().and_then(|d| d.error.as_ref()) {
            reasons.extend(Reason::chain_of(e));
        }
        Ok(PeerExplanation {
            answer: Some(answer),
            reasons,
            decision,
        })
    }

    /// Maps the device-private pages `[phys, phys + len)` for `client` in
    /// `dir`, asking the owner per page. All or nothing: on any refusal,
    /// bad alias or dispatcher error, the pages mapped so far are unmapped
    /// (pages already migrated stay migrated: their data is intact in RAM).
    pub fn map_for_peer(
        &self,
        client: &Arc<DmaDevice>,
        phys: PhysAddr,
        len: u64,
        dir: Direction,
    ) -> Result<PeerMapping, HmmError> {
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) || !phys.is_aligned(PAGE_SIZE) {
            return Err(HmmError::Unaligned { phys, len });
        }
        let mut done = PeerMapping {
            client: client.clone(),
            dir,
            pages: Vec::new(),
            live: true,
        };
        for i in 0..len / PAGE_SIZE {
            let page = PhysAddr::new(phys.raw() + i * PAGE_SIZE);
            let d = self.map_page(client, page, dir)?;
            done.pages.push(d);
        }
        Ok(done)
    }

    /// The decision for one page (the owner's answer), mapped.
    fn map_page(
        &self,
        client: &Arc<DmaDevice>,
        page: PhysAddr,
        dir: Direction,
    ) -> Result<PageDecision, HmmError> {
        let owner = self.owner_of(page)?;
        let provider = owner.device();
        let mut reasons = Vec::new();
        let (answer, target) = match self.ram_copy(page) {
            Some(ram) => {
                reasons.push(Reason::new(
                    ReasonSource::Policy,
                    format!("{page} already migrated to RAM at {ram}"),
                ));
                (None, ram)
            }
            None => {
                let ask = PeerAsk {
                    provider,
                    client: client.bdf(),
                    access: dir,
                    page,
                };
                let answer = owner.peer_access(&ask);
                let target = match &answer {
                    PeerAnswer::BarAlias(alias) => {
                        let in_bar = matches!(
                            self.context().memmap.read().kind_of_range(*alias, PAGE_SIZE),
                            Some((_, SegKind::PeerBar(p)))
                                if Ok(p) == self.context().provider_of(provider)
                        );
                        if !in_bar {
                            return Err(HmmError::BadAlias {
                                owner: provider,
                                page,
                                alias: *alias,
                            });
                        }
                        reasons.push(Reason::new(
                            ReasonSource::Policy,
                            format!(
                                "{provider} lets {} {} {page} through its BAR alias {alias}",
                                client.bdf(),
                                access_verb(dir)
                            ),
                        ));
                        *alias
                    }
                    PeerAnswer::Migrate => {
                        reasons.push(Reason::new(
                            ReasonSource::Policy,
                            format!(
                                "{provider} migrates {page} to RAM for {} ({})",
                                client.bdf(),
                                access_verb(dir)
                            ),
                        ));
                        self.migrate_to_ram(page)?
                    }
                    PeerAnswer::Refuse(why) => {
                        reasons.push(Reason::new(ReasonSource::Policy, why.clone()));
                        return Err(HmmError::Refused {
                            owner: provider,
                            client: client.bdf(),
                            page,
                            reasons,
                        });
                    }
                };
                (Some(answer), target)
            }
        };
        match client.map_phys(target, PAGE_SIZE, dir, DmaAttrs::empty()) {
            Ok(dma) => {
                reasons.push(Reason::new(
                    ReasonSource::Dma,
                    format!("{target} mapped for {} at {dma}", client.bdf()),
                ));
                Ok(PageDecision {
                    page,
                    answer,
                    target,
                    dma,
                    reasons,
                })
            }
            Err(error) => {
                reasons.extend(Reason::chain_of(&error));
                Err(HmmError::Dma {
                    page,
                    error,
                    reasons,
                })
            }
        }
    }
}

fn access_verb(dir: Direction) -> &'static str {
    match dir {
        Direction::ToDevice => "read",
        Direction::FromDevice => "write",
        _ => "read and write",
    }
}
