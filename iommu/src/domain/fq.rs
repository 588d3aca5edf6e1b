//! The lazy-invalidation flush queue (drivers/iommu/dma-iommu.c `fq_ring`,
//! `queue_iova`, `fq_flush_timeout`, `fq_ring_free`).
//!
//! Each queued entry records the domain's `fq_flush_start_cnt` at queue time.
//! An entry may be released (IOVA and table pages freed) only when
//! `entry.counter < fq_flush_finish_cnt`, i.e. a flush that *started after*
//! it was queued has *finished*. Per-CPU queues hold 256 entries with a
//! 10 ms timer; a single queue (IOMMUs that set `shadow_on_flush`) holds
//! 32768 with a 1 s timer. A full ring is reaped, then flushed synchronously.

use std::collections::VecDeque;
use std::time::Duration;

use scatterlist::Iova;

use super::clock::SimInstant;
use crate::pgtable::Gather;

/// `IOVA_DEFAULT_FQ_SIZE`.
pub const PER_CPU_FQ_SIZE: usize = 256;
/// `IOVA_DEFAULT_FQ_TIMEOUT` (10 ms).
pub const PER_CPU_FQ_TIMEOUT: Duration = Duration::from_millis(10);
/// `IOVA_SINGLE_FQ_SIZE`.
pub const SINGLE_FQ_SIZE: usize = 32768;
/// `IOVA_SINGLE_FQ_TIMEOUT` (1000 ms).
pub const SINGLE_FQ_TIMEOUT: Duration = Duration::from_millis(1000);

/// Flush-queue layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FqMode {
    /// One 256-entry ring per CPU, 10 ms timer.
    PerCpu {
        /// Number of CPUs (rings).
        cpus: usize,
    },
    /// One 32768-entry ring, 1 s timer.
    Single,
}

impl FqMode {
    /// Ring capacity.
    pub fn capacity(self) -> usize {
        match self {
            Self::PerCpu { .. } => PER_CPU_FQ_SIZE,
            Self::Single => SINGLE_FQ_SIZE,
        }
    }

    /// Timer period.
    pub fn timeout(self) -> Duration {
        match self {
            Self::PerCpu { .. } => PER_CPU_FQ_TIMEOUT,
            Self::Single => SINGLE_FQ_TIMEOUT,
        }
    }

    fn rings(self) -> usize {
        match self {
            Self::PerCpu { cpus } => cpus.max(1),
            Self::Single => 1,
        }
    }
}

/// One deferred unmap.
#[derive(Debug)]
pub struct FqEntry {
    /// IOVA to release.
    pub iova: Iova,
    /// Size of the IOVA allocation to release.
    pub size: u64,
    /// Table pages to release.
    pub gather: Gather,
    /// `fq_flush_start_cnt` at queue time.
    pub counter: u64,
    /// When it was queued (= when its translation became stale).
    pub queued_at: SimInstant,
}

/// The per-domain flush queue state.
#[derive(Debug)]
pub struct FlushQueue {
    /// Layout.
    pub mode: FqMode,
    rings: Vec<VecDeque<FqEntry>>,
    /// `fq_flush_start_cnt`.
    pub start_cnt: u64,
    /// `fq_flush_finish_cnt`.
    pub finish_cnt: u64,
    /// Armed timer deadline.
    pub timer: Option<SimInstant>,
}

impl FlushQueue {
    /// An empty queue.
    pub fn new(mode: FqMode) -> Self {
        Self {
            mode,
            rings: (0..mode.rings()).map(|_| VecDeque::new()).collect(),
            start_cnt: 0,
            finish_cnt: 0,
            timer: None,
        }
    }

    /// Ring index for `cpu`.
    pub fn ring_of(&self, cpu: usize) -> usize {
        cpu % self.rings.len()
    }

    /// Entries in ring `r`.
    pub fn ring_len(&self, r: usize) -> usize {
        self.rings.get(r).map_or(0, VecDeque::len)
    }

    /// Pops the entries of ring `r` whose flush has completed
    /// (`fq_ring_free_locked`: `counter < finish_cnt`, oldest first).
    pub fn reap(&mut self, r: usize) -> Vec<FqEntry> {
        let fin = self.finish_cnt;
        let mut out = Vec::new();
        if let Some(ring) = self.rings.get_mut(r) {
            while ring.front().is_some_and(|e| e.counter < fin) {
                if let Some(e) = ring.pop_front() {
                    out.push(e);
                }
            }
        }
        out
    }

    /// Reaps every ring.
    pub fn reap_all(&mut self) -> Vec<FqEntry> {
        (0..self.rings.len()).flat_map(|r| self.reap(r)).collect()
    }

    /// Appends to ring `r` with the current start counter.
    pub fn push(&mut self, r: usize, iova: Iova, size: u64, gather: Gather, now: SimInstant) {
        let counter = self.start_cnt;
        if let Some(ring) = self.rings.get_mut(r) {
            ring.push_back(FqEntry {
                iova,
                size,
                gather,
                counter,
                queued_at: now,
            });
        }
    }

    /// Whether ring `r` is full.
    pub fn is_full(&self, r: usize) -> bool {
        self.ring_len(r) >= self.mode.capacity()
    }

    /// All queued entries.
    pub fn pending(&self) -> impl Iterator<Item = &FqEntry> {
        self.rings.iter().flatten()
    }
}
