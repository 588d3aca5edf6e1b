//! The one table of per-arch facts. Every backend's non-code behaviour
//! (translation extras, coherency, P2P veto, which maintenance when, partial
//! line policy) derives from its row; the backends only add machine code.

use dma_api::arch_port::{ArchInfo, EdgePolicy, P2pSupport, SyncOp, SyncRules};

/// Row index of x86_64 in [`ARCH_TABLE`].
pub const ROW_X86_64: usize = 0;
/// Row index of arm64.
pub const ROW_ARM64: usize = 1;
/// Row index of powerpc64.
pub const ROW_POWERPC64: usize = 2;
/// Row index of riscv64.
pub const ROW_RISCV64: usize = 3;
/// Row index of s390x.
pub const ROW_S390X: usize = 4;

/// Why powerpc64 refuses P2P across PHBs.
pub const PPC_P2P_WHY: &str =
    "peer traffic cannot cross POWER PHBs (host bridges): each PHB is its \
     own root complex with its own IOMMU tables, and there is no generic inter-PHB peer routing";
/// Why s390x refuses every P2P mapping.
pub const S390_P2P_WHY: &str = "zPCI functions are isolated by firmware and each reaches memory \
     only through its own IOMMU translation; there is no peer-to-peer routing between functions";

/// The facts, one row per arch, in [`crate::NAMES`] order.
pub static ARCH_TABLE: [ArchInfo; 5] = [
    // x86_64: DMA snoops the caches (Linux has no arch_sync_dma_* on x86);
    // non-snooping devices (declared non-coherent) get CLFLUSHOPT/CLWB like
    // arch/x86/mm/pat/set_memory.c `clflush_cache_range` (mb() before and
    // after). SME/SEV C-bit at 47 (CPUID 0x8000001F EBX[5:0] on EPYC).
    ArchInfo {
        name: "x86_64",
        cache_line_size: 64,
        default_coherent: true,
        always_coherent: false,
        p2p: P2pSupport::Full,
        mem_encrypt_bit: Some(47),
        sync: SyncRules::CLEAN_THEN_INVALIDATE,
        invalidate_edges: EdgePolicy::Plain,
        line_invalidate: false,
        fence_before: true,
    },
    // arm64: coherency per device (DT `dma-coherent`, ACPI `_CCA`);
    // arch/arm64/mm/dma-mapping.c cleans for the device in every direction
    // and invalidates for the CPU unless TO_DEVICE; cache.S
    // `dcache_inval_poc` clean+invalidates partial edge lines.
    ArchInfo {
        name: "arm64",
        cache_line_size: 64,
        default_coherent: false,
        always_coherent: false,
        p2p: P2pSupport::Full,
        mem_encrypt_bit: None,
        sync: SyncRules::CLEAN_THEN_INVALIDATE,
        invalidate_edges: EdgePolicy::CleanInvalidateEdges,
        line_invalidate: true,
        fence_before: false,
    },
    // powerpc64: Book3S DMA is coherent; a non-coherent device gets
    // arch/powerpc/mm/dma-noncoherent.c `__dma_sync` at both sync points
    // (TO: dcbst, FROM: invalidate or dcbf if unaligned, BIDIR: dcbf) + sync.
    // Book III-S has no dcbi, so invalidation is dcbf.
    ArchInfo {
        name: "powerpc64",
        cache_line_size: 128,
        default_coherent: true,
        always_coherent: false,
        p2p: P2pSupport::SameHostBridge { why: PPC_P2P_WHY },
        mem_encrypt_bit: None,
        sync: SyncRules {
            for_device: [
                Some(SyncOp::CleanInvalidate),
                Some(SyncOp::Clean),
                Some(SyncOp::Invalidate),
            ],
            for_cpu: [
                Some(SyncOp::CleanInvalidate),
                Some(SyncOp::Clean),
                Some(SyncOp::Invalidate),
            ],
        },
        invalidate_edges: EdgePolicy::CleanInvalidateAllIfUnaligned,
        line_invalidate: false,
        fence_before: false,
    },
    // riscv64: coherent unless DT `dma-noncoherent` (ARCH_DMA_DEFAULT_COHERENT);
    // arch/riscv/mm/dma-noncoherent.c: wback for the device in every direction
    // (clean_before_fromdevice, cpu_needs_post_dma_flush), inval for the CPU
    // unless TO_DEVICE, Zicbom blocks (riscv,cbom-block-size, 64 here).
    ArchInfo {
        name: "riscv64",
        cache_line_size: 64,
        default_coherent: true,
        always_coherent: false,
        p2p: P2pSupport::Full,
        mem_encrypt_bit: None,
        sync: SyncRules::CLEAN_THEN_INVALIDATE,
        invalidate_edges: EdgePolicy::Plain,
        line_invalidate: true,
        fence_before: false,
    },
    // s390x: zPCI DMA is always coherent (no arch_sync_dma_* on s390),
    // 256-byte lines, no P2P.
    ArchInfo {
        name: "s390x",
        cache_line_size: 256,
        default_coherent: true,
        always_coherent: true,
        p2p: P2pSupport::None { why: S390_P2P_WHY },
        mem_encrypt_bit: None,
        sync: SyncRules::NONE,
        invalidate_edges: EdgePolicy::Plain,
        line_invalidate: false,
        fence_before: false,
    },
];
