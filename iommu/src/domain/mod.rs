//! IOMMU domains, group attachment, the IOTLB and strict/lazy invalidation.
//!
//! Matches drivers/iommu/iommu.c and dma-iommu.c: domain types `BLOCKED`,
//! `IDENTITY`, `DMA` (strict) and `DMA_FQ` (lazy); groups attach to one domain
//! at a time; untrusted (external-facing) devices never get lazy
//! invalidation or passthrough. `unmap` clears the PTEs and returns a
//! `#[must_use]` [`FlushToken`] (the `x86_64` crate's `MapperFlush` idiom).
//! The token is consumed either by [`Iommu::flush`] (strict: invalidate the
//! IOTLB range and wait, *then* free the IOVA and table pages) or by
//! [`Iommu::queue`] (lazy: Linux's flush queue with its start/finish counter
//! rule, on a [`SimClock`]). Translation goes through the IOTLB, which caches
//! results of the independent [`crate::walker`].

mod clock;
mod fq;
mod iotlb;

pub use clock::{SimClock, SimInstant};
pub use fq::{
    FlushQueue, FqEntry, FqMode, PER_CPU_FQ_SIZE, PER_CPU_FQ_TIMEOUT, SINGLE_FQ_SIZE,
    SINGLE_FQ_TIMEOUT,
};
pub use iotlb::{Iotlb, IotlbEntry, IotlbStats};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use scatterlist::{Iova, PhysAddr};

use crate::pgtable::{
    AnyFormat, Gather, PageTable, PhysMem, Prot, PtError, SharedMem, SharedTableMem,
};
use crate::walker::{self, Access, Fault};

/// A domain handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u32);

/// An IOMMU group handle (devices that must share a domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

/// Domain type (`IOMMU_DOMAIN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// All DMA blocked.
    Blocked,
    /// No translation: IOVA == physical address (passthrough).
    Identity,
    /// Translated, strict invalidation.
    Dma,
    /// Translated, lazy invalidation through the flush queue.
    DmaFq,
}

impl DomainType {
    /// The wire name (JSON, `unidma map`): `Blocked`, `Identity`, `Dma` or
    /// `DmaFq`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Blocked => "Blocked",
            Self::Identity => "Identity",
            Self::Dma => "Dma",
            Self::DmaFq => "DmaFq",
        }
    }
}

/// Where the IOVA ranges freed by a completed flush go (the lead plugs in the
/// real allocator).
pub trait IovaSource: Send {
    /// Returns `[iova, iova + size)` to the allocator.
    fn free_iova(&mut self, iova: Iova, size: u64);
}

/// Errors of domain operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainError {
    /// No such domain.
    UnknownDomain(DomainId),
    /// The domain does not translate (blocked or identity).
    NotTranslating {
        /// The domain.
        domain: DomainId,
        /// Its type.
        ty: DomainType,
    },
    /// An untrusted group may not use a passthrough domain.
    UntrustedPassthrough {
        /// The group.
        group: GroupId,
    },
    /// Only `Dma -> DmaFq` may change at run time.
    BadTypeChange {
        /// The domain.
        domain: DomainId,
        /// Current type.
        from: DomainType,
        /// Requested type.
        to: DomainType,
    },
    /// The page table refused.
    Pt(PtError),
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDomain(d) => write!(f, "no domain {}", d.0),
            Self::NotTranslating { domain, ty } => {
                write!(f, "domain {} is {ty:?} and has no page table", domain.0)
            }
            Self::UntrustedPassthrough { group } => {
                write!(
                    f,
                    "untrusted group {} cannot use an identity domain",
                    group.0
                )
            }
            Self::BadTypeChange { domain, from, to } => {
                write!(
                    f,
                    "domain {} cannot change from {from:?} to {to:?}",
                    domain.0
                )
            }
            Self::Pt(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for DomainError {}

impl From<PtError> for DomainError {
    fn from(e: PtError) -> Self {
        Self::Pt(e)
    }
}

/// A DMA request's failure as the IOMMU reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IommuFault {
    /// The group is attached to no domain.
    NoDomain {
        /// The group.
        group: GroupId,
    },
    /// The group's domain blocks all DMA.
    Blocked {
        /// The group.
        group: GroupId,
    },
    /// The walk (or the cached permission) faulted.
    Walk(Fault),
}

impl fmt::Display for IommuFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDomain { group } => write!(f, "group {} has no domain", group.0),
            Self::Blocked { group } => write!(f, "group {} is blocked", group.0),
            Self::Walk(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for IommuFault {}

/// The pending invalidation of one unmap. Must be passed to
/// [`Iommu::flush`] or [`Iommu::queue`]; dropping it leaks the IOVA and the
/// table pages (never frees them early).
#[must_use = "an unmap must be flushed (strict) or queued (lazy) before its IOVA is reused"]
#[derive(Debug)]
pub struct FlushToken {
    domain: DomainId,
    iova: Iova,
    size: u64,
    unmapped: u64,
    gather: Gather,
    keep_iova: bool,
}

impl FlushToken {
    /// The domain.
    pub fn domain(&self) -> DomainId {
        self.domain
    }
    /// Start of the unmapped range.
    pub fn iova(&self) -> Iova {
        self.iova
    }
    /// Bytes the page table actually unmapped.
    pub fn unmapped(&self) -> u64 {
        self.unmapped
    }
    /// Table pages that will be freed after the flush.
    pub fn freed_tables(&self) -> &[PhysAddr] {
        self.gather.freed_tables()
    }
}

/// What happened to a token handed to [`Iommu::queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOutcome {
    /// Queued for a later flush.
    Queued,
    /// The domain (or device) is strict: flushed synchronously.
    FlushedNow,
}

/// An IOTLB entry whose translation no longer matches the page table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleEntry {
    /// IOVA page.
    pub iova: Iova,
    /// What the stale entry still translates to.
    pub pa_page: PhysAddr,
    /// When it was cached.
    pub filled_at: SimInstant,
}

struct Domain {
    ty: DomainType,
    pt: Option<PageTable<AnyFormat>>,
    fq: FlushQueue,
    iova_src: Option<Box<dyn IovaSource>>,
    released: Vec<(Iova, u64)>,
    max_window: Duration,
}

struct Group {
    domain: Option<DomainId>,
    trusted: bool,
}

/// A simulated IOMMU: domains, groups, IOTLB, flush queues and a clock.
pub struct Iommu {
    mem: SharedMem,
    clock: SimClock,
    domains: BTreeMap<DomainId, Domain>,
    groups: BTreeMap<GroupId, Group>,
    iotlb: Iotlb,
    next: u32,
    fq_mode: FqMode,
}

impl fmt::Debug for Iommu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iommu")
            .field("domains", &self.domains.len())
            .field("iotlb", &self.iotlb.len())
            .finish()
    }
}

impl Iommu {
    /// An IOMMU with fresh memory, per-CPU flush queues for 2 CPUs.
    pub fn new(clock: SimClock) -> Self {
        Self::with_mem(Arc::new(RwLock::new(PhysMem::new())), clock)
    }

    /// An IOMMU whose tables live in `mem`.
    pub fn with_mem(mem: SharedMem, clock: SimClock) -> Self {
        Self {
            mem,
            clock,
            domains: BTreeMap::new(),
            groups: BTreeMap::new(),
            iotlb: Iotlb::default(),
            next: 1,
            fq_mode: FqMode::PerCpu { cpus: 2 },
        }
    }

    /// Flush-queue layout for domains allocated from now on (`Single` models
    /// an IOMMU with `shadow_on_flush`).
    pub fn set_fq_mode(&mut self, mode: FqMode) {
        self.fq_mode = mode;
    }

    /// The clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// The IOTLB (for inspection).
    pub fn iotlb(&self) -> &Iotlb {
        &self.iotlb
    }

    /// Allocates a domain; `fmt` is the page-table format of `Dma`/`DmaFq`
    /// domains and ignored otherwise.
    pub fn alloc_domain(
        &mut self,
        ty: DomainType,
        fmt: AnyFormat,
    ) -> Result<DomainId, DomainError> {
        let pt = match ty {
            DomainType::Dma | DomainType::DmaFq => Some(PageTable::with_mem(
                fmt,
                SharedTableMem::new(Arc::clone(&self.mem)),
            )?),
            DomainType::Blocked | DomainType::Identity => None,
        };
        let id = DomainId(self.next);
        self.next += 1;
        self.domains.insert(
            id,
            Domain {
                ty,
                pt,
                fq: FlushQueue::new(self.fq_mode),
                iova_src: None,
                released: Vec::new(),
                max_window: Duration::ZERO,
            },
        );
        Ok(id)
    }

    fn dom(&mut self, d: DomainId) -> Result<&mut Domain, DomainError> {
        self.domains
            .get_mut(&d)
            .ok_or(DomainError::UnknownDomain(d))
    }

    /// The domain's type.
    pub fn domain_type(&self, d: DomainId) -> Option<DomainType> {
        self.domains.get(&d).map(|x| x.ty)
    }

    /// The domain's page table.
    pub fn page_table(&self, d: DomainId) -> Option<&PageTable<AnyFormat>> {
        self.domains.get(&d).and_then(|x| x.pt.as_ref())
    }

    /// Where freed IOVA goes; without one, releases are only logged.
    pub fn set_iova_source(
        &mut self,
        d: DomainId,
        src: Box<dyn IovaSource>,
    ) -> Result<(), DomainError> {
        self.dom(d)?.iova_src = Some(src);
        Ok(())
    }

    /// IOVA ranges released so far (in release order).
    pub fn released_iovas(&self, d: DomainId) -> &[(Iova, u64)] {
        self.domains.get(&d).map_or(&[], |x| x.released.as_slice())
    }

    /// Changes a domain's type at run time; only `Dma -> DmaFq` is allowed
    /// (sysfs `iommu_groups/N/type`), and not while an untrusted group is
    /// attached.
    pub fn set_domain_type(&mut self, d: DomainId, to: DomainType) -> Result<(), DomainError> {
        let untrusted = self
            .groups
            .values()
            .any(|g| g.domain == Some(d) && !g.trusted);
        let dom = self.dom(d)?;
        if !(dom.ty == DomainType::Dma && to == DomainType::DmaFq) || untrusted {
            return Err(DomainError::BadTypeChange {
                domain: d,
                from: dom.ty,
                to,
            });
        }
        dom.ty = to;
        Ok(())
    }

    /// Attaches `group` to `d`. Untrusted groups are refused identity
    /// domains, and a lazy domain they join is forced strict (after flushing
    /// its queue), as Linux gives untrusted devices strict DMA domains.
    pub fn attach_group(
        &mut self,
        group: GroupId,
        trusted: bool,
        d: DomainId,
    ) -> Result<(), DomainError> {
        let ty = self.dom(d)?.ty;
        if !trusted && ty == DomainType::Identity {
            return Err(DomainError::UntrustedPassthrough { group });
        }
        if !trusted && ty == DomainType::DmaFq {
            self.flush_queue_now(d)?;
            self.dom(d)?.ty = DomainType::Dma;
        }
        self.groups.insert(
            group,
            Group {
                domain: Some(d),
                trusted,
            },
        );
        Ok(())
    }

    /// The domain `group` is attached to, if any.
    pub fn group_domain(&self, group: GroupId) -> Option<DomainId> {
        self.groups.get(&group).and_then(|g| g.domain)
    }

    /// Detaches `group` (its DMA then faults with `NoDomain`).
    pub fn detach_group(&mut self, group: GroupId) {
        self.groups.remove(&group);
    }

    fn pt_mut(&mut self, d: DomainId) -> Result<&mut PageTable<AnyFormat>, DomainError> {
        let dom = self.dom(d)?;
        let ty = dom.ty;
        dom.pt
            .as_mut()
            .ok_or(DomainError::NotTranslating { domain: d, ty })
    }

    /// Maps into a translating domain. If the map replaced empty tables by a
    /// large page, the whole domain is flushed before those tables are freed
    /// (as `map_pages` syncs a non-empty gather).
    pub fn map(
        &mut self,
        d: DomainId,
        iova: Iova,
        pa: PhysAddr,
        size: u64,
        prot: Prot,
    ) -> Result<(), DomainError> {
        let pt = self.pt_mut(d)?;
        pt.map(iova, pa, size, prot)?;
        if let Some(g) = pt.take_deferred() {
            let upto = self.iotlb.current_seq();
            self.iotlb.invalidate_domain_upto(d, upto);
            self.pt_mut(d)?.release(g);
        }
        Ok(())
    }

    /// Clears the translations of `[iova, iova + size)`; the returned token
    /// carries the invalidation, the IOVA and the detached table pages.
    pub fn unmap(&mut self, d: DomainId, iova: Iova, size: u64) -> Result<FlushToken, DomainError> {
        let pt = self.pt_mut(d)?;
        let (unmapped, gather) = pt.unmap(iova, size);
        Ok(FlushToken {
            domain: d,
            iova,
            size,
            unmapped,
            gather,
            keep_iova: false,
        })
    }

    /// Like [`unmap`](Self::unmap) for an IOVA allocation `[iova, iova + size)`
    /// whose mapped parts lie in `pieces` (holes, e.g. segment-boundary
    /// padding, stay unmapped): one token for the whole allocation, so it is
    /// released once, after one invalidation covering every piece.
    ///
    /// A piece may itself contain holes (the two-step API unlinks and
    /// destroys `[0, mapped_len)` of a reservation linked in scattered
    /// parts): every leaf starting inside it is removed, and the holes are
    /// skipped a table entry at a time at the level where they appear
    /// ([`PageTable::unmap_sparse`]), so the cost, paid under the IOMMU lock,
    /// follows what is mapped rather than the size of the piece.
    pub fn unmap_pieces(
        &mut self,
        d: DomainId,
        iova: Iova,
        size: u64,
        pieces: &[(Iova, u64)],
    ) -> Result<FlushToken, DomainError> {
        let pt = self.pt_mut(d)?;
        let mut unmapped = 0;
        let mut gather = Gather::default();
        for &(at, len) in pieces {
            let (n, g) = pt.unmap_sparse(at, len);
            unmapped += n;
            gather.merge(g);
        }
        Ok(FlushToken {
            domain: d,
            iova,
            size,
            unmapped,
            gather,
            keep_iova: false,
        })
    }

    /// Unmaps `[iova, iova + size)` for a caller that keeps the IOVA (the
    /// two-step API's `dma_iova_unlink`): the token's flush invalidates and
    /// frees table pages but does not release the IOVA, and
    /// [`queue`](Self::queue) flushes it at once.
    pub fn unmap_keep_iova(
        &mut self,
        d: DomainId,
        iova: Iova,
        size: u64,
    ) -> Result<FlushToken, DomainError> {
        let mut t = self.unmap_pieces(d, iova, size, &[(iova, size)])?;
        t.keep_iova = true;
        Ok(t)
    }

    /// Strict completion: invalidate the token's IOTLB range, wait for it,
    /// then release the table pages and the IOVA (`iommu_iotlb_sync` then
    /// `iommu_dma_free_iova`).
    pub fn flush(&mut self, token: FlushToken) -> Result<(), DomainError> {
        let FlushToken {
            domain,
            iova,
            size,
            gather,
            keep_iova,
            ..
        } = token;
        self.iotlb
            .invalidate_range(domain, gather.iova, gather.len.max(size));
        if !gather.freed_tables().is_empty() {
            // Table pages were detached: walk caches must go too.
            let upto = self.iotlb.current_seq();
            self.iotlb.invalidate_domain_upto(domain, upto);
        }
        if keep_iova {
            if let Some(pt) = self.dom(domain)?.pt.as_mut() {
                pt.release(gather);
            }
            return Ok(());
        }
        self.release(domain, iova, size, gather)
    }

    fn release(
        &mut self,
        d: DomainId,
        iova: Iova,
        size: u64,
        gather: Gather,
    ) -> Result<(), DomainError> {
        let dom = self.dom(d)?;
        if let Some(pt) = dom.pt.as_mut() {
            pt.release(gather);
        }
        if let Some(src) = dom.iova_src.as_mut() {
            src.free_iova(iova, size);
        }
        dom.released.push((iova, size));
        Ok(())
    }

    /// Lazy completion (`queue_iova`): reap finished entries of this CPU's
    /// ring; if the ring is still full, flush the domain synchronously and
    /// reap; queue the token with the current start counter; arm the timer.
    /// A strict domain flushes immediately.
    pub fn queue(&mut self, token: FlushToken, cpu: usize) -> Result<QueueOutcome, DomainError> {
        let d = token.domain;
        if self.dom(d)?.ty != DomainType::DmaFq || token.keep_iova {
            self.flush(token)?;
            return Ok(QueueOutcome::FlushedNow);
        }
        let now = self.clock.now();
        let r = self.dom(d)?.fq.ring_of(cpu);
        self.reap_ring(d, r)?;
        if self.dom(d)?.fq.is_full(r) {
            self.flush_iotlb_all(d)?;
            self.reap_ring(d, r)?;
        }
        let timeout = {
            let dom = self.dom(d)?;
            dom.fq.push(r, token.iova, token.size, token.gather, now);
            dom.fq.mode.timeout()
        };
        let dom = self.dom(d)?;
        if dom.fq.timer.is_none() {
            dom.fq.timer = Some(now.after(timeout));
        }
        Ok(QueueOutcome::Queued)
    }

    fn reap_ring(&mut self, d: DomainId, r: usize) -> Result<(), DomainError> {
        let done = self.dom(d)?.fq.reap(r);
        self.release_entries(d, done)
    }

    fn release_entries(&mut self, d: DomainId, done: Vec<FqEntry>) -> Result<(), DomainError> {
        let now = self.clock.now();
        for e in done {
            let dom = self.dom(d)?;
            dom.max_window = dom.max_window.max(now.since(e.queued_at));
            self.release(d, e.iova, e.size, e.gather)?;
        }
        Ok(())
    }

    /// Starts a whole-domain IOTLB flush (`fq_flush_start_cnt++`, issue the
    /// invalidation). Returns the IOTLB sequence it covers.
    pub fn flush_start(&mut self, d: DomainId) -> Result<u64, DomainError> {
        let upto = self.iotlb.current_seq();
        self.dom(d)?.fq.start_cnt += 1;
        Ok(upto)
    }

    /// Completes a flush started with [`flush_start`](Self::flush_start):
    /// entries cached before it started are gone; `fq_flush_finish_cnt++`.
    pub fn flush_finish(&mut self, d: DomainId, started: u64) -> Result<(), DomainError> {
        self.iotlb.invalidate_domain_upto(d, started);
        self.dom(d)?.fq.finish_cnt += 1;
        Ok(())
    }

    /// `fq_flush_iotlb`: a synchronous whole-domain flush.
    pub fn flush_iotlb_all(&mut self, d: DomainId) -> Result<(), DomainError> {
        let s = self.flush_start(d)?;
        self.flush_finish(d, s)
    }

    fn flush_queue_now(&mut self, d: DomainId) -> Result<(), DomainError> {
        self.flush_iotlb_all(d)?;
        let done = self.dom(d)?.fq.reap_all();
        self.release_entries(d, done)?;
        self.dom(d)?.fq.timer = None;
        Ok(())
    }

    /// Runs expired flush-queue timers (`fq_flush_timeout`): flush each
    /// expired domain once and reap all its rings. Returns how many domains
    /// were flushed.
    pub fn poll(&mut self) -> Result<usize, DomainError> {
        let now = self.clock.now();
        let due: Vec<DomainId> = self
            .domains
            .iter()
            .filter(|(_, x)| x.fq.timer.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for d in &due {
            self.flush_queue_now(*d)?;
        }
        Ok(due.len())
    }

    /// A device DMA: translate `iova` for `group` through the IOTLB, walking
    /// the tables from memory on a miss.
    pub fn translate(
        &mut self,
        group: GroupId,
        iova: Iova,
        access: Access,
    ) -> Result<PhysAddr, IommuFault> {
        let d = self
            .groups
            .get(&group)
            .and_then(|g| g.domain)
            .ok_or(IommuFault::NoDomain { group })?;
        let dom = self.domains.get(&d).ok_or(IommuFault::NoDomain { group })?;
        match dom.ty {
            DomainType::Blocked => return Err(IommuFault::Blocked { group }),
            DomainType::Identity => return Ok(PhysAddr::new(iova.raw())),
            DomainType::Dma | DomainType::DmaFq => {}
        }
        let off = iova.raw() & 0xfff;
        if let Some(e) = self.iotlb.lookup(d, iova) {
            self.iotlb.stats.hits += 1;
            let ok = match access {
                Access::Read => e.read,
                Access::Write => e.write,
            };
            return if ok {
                Ok(PhysAddr::new(e.pa_page.raw() | off))
            } else {
                Err(IommuFault::Walk(Fault::Permission {
                    iova,
                    level: 0,
                    access,
                }))
            };
        }
        self.iotlb.stats.misses += 1;
        let pt = dom.pt.as_ref().ok_or(IommuFault::Blocked { group })?;
        let regs = pt.hw_regs();
        let w = {
            let m = self
                .mem
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            walker::walk(&regs, &m, iova).map_err(IommuFault::Walk)?
        };
        let now = self.clock.now();
        self.iotlb.fill(
            d,
            iova,
            PhysAddr::new(w.pa.raw() & !0xfff),
            w.read,
            w.write,
            now,
        );
        if w.allows(access) {
            Ok(w.pa)
        } else {
            Err(IommuFault::Walk(Fault::Permission {
                iova,
                level: w.level,
                access,
            }))
        }
    }

    /// IOTLB entries of `d` that the current tables no longer back (the
    /// walker faults or returns another page): translations a device could
    /// still use although they were unmapped.
    pub fn stale_entries(&self, d: DomainId) -> Vec<StaleEntry> {
        let Some(pt) = self.domains.get(&d).and_then(|x| x.pt.as_ref()) else {
            return Vec::new();
        };
        let regs = pt.hw_regs();
        let m = self
            .mem
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.iotlb
            .entries(d)
            .filter(|(iova, e)| match walker::walk(&regs, &m, *iova) {
                Ok(w) => PhysAddr::new(w.pa.raw() & !0xfff) != e.pa_page,
                Err(_) => true,
            })
            .map(|(iova, e)| StaleEntry {
                iova,
                pa_page: e.pa_page,
                filled_at: e.filled_at,
            })
            .collect()
    }

    /// The bound on how long an unmapped IOVA may keep translating through a
    /// stale IOTLB entry: zero for strict domains, the flush-queue timeout
    /// (10 ms per-CPU, 1 s single) for lazy ones — a timer flush is armed by
    /// the first queued entry and flushes everything queued before it fires.
    pub fn stale_window_bound(&self, d: DomainId) -> Option<Duration> {
        let dom = self.domains.get(&d)?;
        Some(match dom.ty {
            DomainType::DmaFq => dom.fq.mode.timeout(),
            _ => Duration::ZERO,
        })
    }

    /// Age of the oldest queued (unmapped but not yet invalidated) entry.
    pub fn current_stale_window(&self, d: DomainId) -> Duration {
        let now = self.clock.now();
        self.domains
            .get(&d)
            .and_then(|x| x.fq.pending().map(|e| now.since(e.queued_at)).max())
            .unwrap_or(Duration::ZERO)
    }

    /// Longest time any released entry spent between unmap and release.
    pub fn max_observed_window(&self, d: DomainId) -> Duration {
        self.domains
            .get(&d)
            .map_or(Duration::ZERO, |x| x.max_window)
    }

    /// The earliest armed flush-queue timer of any domain.
    pub fn next_timer(&self) -> Option<SimInstant> {
        self.domains.values().filter_map(|x| x.fq.timer).min()
    }

    /// Entries waiting in `d`'s flush queue.
    pub fn queued(&self, d: DomainId) -> usize {
        self.domains.get(&d).map_or(0, |x| x.fq.pending().count())
    }
}
