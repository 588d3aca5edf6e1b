//! The record of cache maintenance the direct backend executed.
//!
//! There is no real cache in the model, so "executing" maintenance means
//! building the arch's [`CacheProgram`] for the range and recording it here;
//! tests (and debug builds, on every program) lower it with
//! [`ArchDma::lower`](crate::arch_port::ArchDma::lower) to prove it is valid
//! machine code.

use crate::arch_port::{CacheProgram, SyncOp, SyncPoint};
use crate::types::PhysAddr;
use alloc::collections::VecDeque;

/// How many recent programs the log keeps (counters cover everything).
pub const CACHE_LOG_KEEP: usize = 256;

/// One executed maintenance program.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CacheRecord {
    /// Map/sync-for-device or unmap/sync-for-CPU.
    pub point: SyncPoint,
    /// The maintenance asked for.
    pub op: SyncOp,
    /// Start of the range (the bounce buffer when bounced).
    pub phys: PhysAddr,
    /// Its length.
    pub len: u64,
    /// The arch program.
    pub program: CacheProgram,
}

/// Counters plus the most recent programs.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct CacheLog {
    /// Programs at [`SyncPoint::ForDevice`].
    pub for_device: u64,
    /// Programs at [`SyncPoint::ForCpu`].
    pub for_cpu: u64,
    /// Line operations over all programs.
    pub lines: u64,
    /// The last [`CACHE_LOG_KEEP`] programs, oldest first.
    pub recent: VecDeque<CacheRecord>,
}

impl CacheLog {
    pub(crate) fn push(&mut self, rec: CacheRecord) {
        match rec.point {
            SyncPoint::ForDevice => self.for_device += 1,
            SyncPoint::ForCpu => self.for_cpu += 1,
        }
        self.lines += rec.program.ops().len() as u64;
        if self.recent.len() == CACHE_LOG_KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(rec);
    }
}
