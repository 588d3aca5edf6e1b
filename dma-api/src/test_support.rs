//! Fixtures of the crate's own unit tests, std and `no_std` alike: a sparse
//! in-memory [`CpuMemory`] (4 KiB pages in a `BTreeMap`, unwritten bytes read
//! as zero) and a non-coherent test arch whose cache programs lower to one
//! byte per event.

use crate::arch_port::{ArchDma, ArchInfo, CacheProgram, EdgePolicy, P2pSupport, SyncRules};
use crate::error::DmaError;
use crate::mem::{CpuMemory, MemError};
use crate::sync::Mutex;
use crate::types::PhysAddr;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const PAGE: u64 = 4096;

/// Sparse test RAM.
#[derive(Default)]
pub(crate) struct TestMem {
    pages: Mutex<BTreeMap<u64, Box<[u8; PAGE as usize]>>>,
}

impl TestMem {
    fn each(
        phys: PhysAddr,
        len: usize,
        mut f: impl FnMut(u64, usize, usize, usize),
    ) -> Result<(), MemError> {
        let len64 = len as u64;
        if phys.raw().checked_add(len64).is_none() {
            return Err(MemError::Overflow {
                addr: phys,
                len: len64,
            });
        }
        let mut done = 0usize;
        while done < len {
            let a = phys.raw() + done as u64;
            let off = (a % PAGE) as usize;
            let n = (PAGE as usize - off).min(len - done);
            f(a / PAGE, off, done, n);
            done += n;
        }
        Ok(())
    }
}

impl CpuMemory for TestMem {
    fn read(&self, phys: PhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let pages = self.pages.lock();
        Self::each(phys, buf.len(), |pfn, off, at, n| {
            let dst = &mut buf[at..at + n];
            match pages.get(&pfn) {
                Some(p) => dst.copy_from_slice(&p[off..off + n]),
                None => dst.fill(0),
            }
        })
    }

    fn write(&self, phys: PhysAddr, data: &[u8]) -> Result<(), MemError> {
        let mut pages = self.pages.lock();
        Self::each(phys, data.len(), |pfn, off, at, n| {
            let p = pages
                .entry(pfn)
                .or_insert_with(|| Box::new([0u8; PAGE as usize]));
            p[off..off + n].copy_from_slice(&data[at..at + n]);
        })
    }
}

/// A non-coherent arch with full P2P and Linux's clean-then-invalidate rules.
pub(crate) static NONCOH: ArchInfo = ArchInfo {
    name: "testarch",
    cache_line_size: 64,
    default_coherent: false,
    always_coherent: false,
    p2p: P2pSupport::Full,
    mem_encrypt_bit: None,
    sync: SyncRules::CLEAN_THEN_INVALIDATE,
    invalidate_edges: EdgePolicy::Plain,
    line_invalidate: true,
    fence_before: false,
};

/// The arch of [`NONCOH`]: every cache event lowers to one `0x90` byte.
pub(crate) struct TestArch;

impl ArchDma for TestArch {
    fn info(&self) -> &'static ArchInfo {
        &NONCOH
    }
    fn lower(&self, p: &CacheProgram) -> Result<Vec<u8>, DmaError> {
        Ok(p.events().iter().map(|_| 0x90).collect())
    }
}

/// The one [`TestArch`].
pub(crate) static ARCH: TestArch = TestArch;
