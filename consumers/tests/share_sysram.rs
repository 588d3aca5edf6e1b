//! A udmabuf-like system-RAM buffer of 64 pages, shared with rdma0 under
//! the IOMMU (runs of contiguous pages are linked at once, every page keeps
//! its own segment) and without one (a table through `map_sgtable`): the
//! NIC's writes land page by page, the pin capability works, and after
//! unmap the IOVA faults.

#[path = "share_common/mod.rs"]
mod common;

use common::*;
use dma_api::share::{ImporterCaps, NoOps, ShareAccess, SharedBuffer};
use dma_api::{Direction, SegmentRoute};
use dma_consumers::sysram::SysRamExporter;
use dma_sim::assembly::IommuMode;
use std::sync::Arc;

const PAGE: u64 = 4096;

fn nic_writes_every_page(mode: IommuMode) {
    let a = reference(mode);
    let hb = bdf(&a, "host-bridge");
    let pool = SysRamExporter::new(a.ctx.clone(), hb, 64, PAGE).unwrap();
    let buf: SharedBuffer = pool.export(PAGE).unwrap();
    let nic = bdf(&a, "rdma0");
    let att = buf
        .attach(
            dev(&a, "rdma0"),
            ImporterCaps::any(ShareAccess::Write, false),
            Arc::new(NoOps),
        )
        .unwrap();
    att.pin().unwrap();
    let m = att.map(Direction::FromDevice).unwrap();
    assert_eq!(m.len(), 64 * PAGE);
    assert!(m.segments().iter().all(|s| s.route == SegmentRoute::Ram));
    if mode != IommuMode::Off {
        assert_eq!(m.segments().len(), 64, "one segment per exported range");
    }
    let data = pattern(64 * PAGE, 5);
    dev_write(&a, nic, &m, &data).unwrap();
    for (i, &p) in pool.pages().iter().enumerate() {
        let at = i * PAGE as usize;
        assert_eq!(
            cpu_read(&a, p, PAGE),
            data[at..at + PAGE as usize],
            "page {i}"
        );
    }
    let first = m.segments()[0].dma;
    att.unmap(m.id()).unwrap();
    if mode == IommuMode::Strict {
        assert!(a.fabric.dma_write(nic, first, &[1; 8]).is_err());
    }
    att.unpin().unwrap();
    drop(att);
    assert_eq!(buf.attachments().unwrap(), 0);
    let d = dev(&a, "rdma0");
    assert_eq!((d.live_tables(), d.live_singles()), (0, 0));
}

#[test]
fn nic_writes_every_page_iommu_strict() {
    nic_writes_every_page(IommuMode::Strict);
}

#[test]
fn nic_writes_every_page_iommu_off() {
    nic_writes_every_page(IommuMode::Off);
}
