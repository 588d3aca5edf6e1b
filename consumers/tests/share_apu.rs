//! The APU's "VRAM" is a stolen-RAM carve-out behind a 512 KiB aperture with
//! a GART. The APU's provider policy redirects the aperture to the carve-out
//! pages behind it — several ranges when the GART scatters them — so an
//! importer attached to an exported aperture range maps them as coherent
//! RAM: the NVMe controller's bytes land in the carve-out and no byte
//! touches the aperture (Linux would export the aperture as MMIO). An
//! exporter whose redirect is not RAM is refused.

#[path = "share_common/mod.rs"]
mod common;
#[path = "nvme_controller/mod.rs"]
mod controller;

use common::*;
use dma_api::share::{Action, Placement, ShareAccess, ShareError};
use dma_api::{Direction, PhysAddr, SegmentRoute};
use dma_consumers::apu::{Apu, Gart};
use dma_consumers::nvme::{Nvme, Op};
use dma_sim::assembly::IommuMode;

const PAGE: u64 = 4096;
const LEN: u64 = 4 * PAGE;

/// Aperture pages 0..4 show carve-out pages 7, 3, 4, 9; the rest identity
/// shifted past them.
fn gart() -> Gart {
    let mut pages: Vec<u64> = vec![7, 3, 4, 9];
    pages.extend(16..16 + 124);
    Gart::new(PhysAddr::new(APU_APERTURE), PhysAddr::new(APU_CARVE), pages)
}

fn carve(page: u64) -> PhysAddr {
    PhysAddr::new(APU_CARVE + page * PAGE)
}

fn importer_writes_land_in_the_carve_out(mode: IommuMode) {
    let a = reference(mode);
    let apu = Apu::probe(a.ctx.clone(), bdf(&a, "apu-gfx"), gart()).unwrap();
    let buf = apu.export(0, LEN).unwrap();
    let nvme = Nvme::probe(dev(&a, "nvme1")).unwrap();
    let imp = nvme.import(&buf, ShareAccess::Write).unwrap();
    let n = imp.attachment().negotiation().unwrap();
    assert_eq!(n.placement, Placement::SystemRam);
    assert_eq!(n.action, Action::None, "the APU's policy already redirects");
    assert_eq!(
        apu.gart()
            .translate(PhysAddr::new(APU_APERTURE), LEN)
            .unwrap(),
        vec![(carve(7), PAGE), (carve(3), 2 * PAGE), (carve(9), PAGE)],
        "three carve-out ranges behind four aperture pages"
    );

    let io = imp.submit(Op::Read).unwrap();
    let m = io.mapping().unwrap();
    assert!(m.segments().iter().all(|s| s.route == SegmentRoute::Ram));
    a.fabric.reset_counters();
    let media = pattern(LEN, 9);
    let io_list_pages = io.command().list_pages;
    controller::execute(&a, nvme.device().bdf(), io.command(), &media);
    io.complete().unwrap();

    assert_eq!(cpu_read(&a, carve(7), PAGE), media[..PAGE as usize]);
    assert_eq!(
        cpu_read(&a, carve(3), 2 * PAGE),
        media[PAGE as usize..3 * PAGE as usize]
    );
    assert_eq!(cpu_read(&a, carve(9), PAGE), media[3 * PAGE as usize..]);
    // The data, plus the three PRP list entries the controller fetched.
    assert_eq!(io_list_pages, 1);
    assert_eq!(
        a.fabric.ram_bytes(),
        LEN + 3 * 8,
        "through the memory controller"
    );
    assert_eq!(
        bytes_at(&a, bdf(&a, "apu-gfx")),
        0,
        "zero bytes on the aperture's link"
    );
    assert_eq!(
        cpu_read(&a, PhysAddr::new(APU_APERTURE), LEN),
        vec![0; LEN as usize],
        "the aperture's own backing is untouched"
    );
    assert!(a.fabric.faults().is_empty());
    assert_eq!(imp.attachment().live_mappings().unwrap(), 0);
    imp.detach().unwrap();
    assert_eq!(buf.attachments().unwrap(), 0);
}

#[test]
fn importer_writes_land_in_the_carve_out_iommu_strict() {
    importer_writes_land_in_the_carve_out(IommuMode::Strict);
}

#[test]
fn importer_writes_land_in_the_carve_out_iommu_off() {
    importer_writes_land_in_the_carve_out(IommuMode::Off);
}

#[test]
fn a_plain_map_of_one_aperture_page_is_redirected_by_the_gart_policy() {
    let a = reference(IommuMode::Strict);
    let _apu = Apu::probe(a.ctx.clone(), bdf(&a, "apu-gfx"), gart()).unwrap();
    let d = dev(&a, "nvme1").explain_map(
        PhysAddr::new(APU_APERTURE + PAGE),
        PAGE,
        Direction::FromDevice,
    );
    assert_eq!(d.target.map(|t| t.0), Some(carve(3)));
    // Two scattered pages have no one DMA address for a single mapping...
    let d =
        dev(&a, "nvme1").explain_map(PhysAddr::new(APU_APERTURE), 2 * PAGE, Direction::FromDevice);
    assert!(
        matches!(&d.error, Some(dma_api::DmaError::RedirectScattered { pieces, .. }) if pieces.len() == 2),
        "{:?}",
        d.error
    );
    // ... but a table of them maps, one RAM segment per piece.
    let nvme1 = dev(&a, "nvme1");
    let mut t = nvme1
        .table_from_ranges(&[(PhysAddr::new(APU_APERTURE), 2 * PAGE)], 1 << 20)
        .unwrap();
    nvme1
        .map_sgtable(&mut t, Direction::FromDevice, dma_api::DmaAttrs::empty())
        .unwrap();
    assert!(dma_api::segments(&t).all(|s| s.route == SegmentRoute::Ram));
    nvme1
        .unmap_sgtable(&mut t, Direction::FromDevice, dma_api::DmaAttrs::empty())
        .unwrap();
}

#[test]
fn a_redirect_outside_ram_is_refused_and_nothing_is_attached() {
    let a = reference(IommuMode::Strict);
    // A GART pointing past the carve-out into MMIO space is a bad redirect.
    let bad = Gart::new(
        PhysAddr::new(APU_APERTURE),
        PhysAddr::new(0xc000_0000),
        (0..128).collect(),
    );
    let apu = Apu::probe(a.ctx.clone(), bdf(&a, "apu-gfx"), bad).unwrap();
    let buf = apu.export(0, 2 * PAGE).unwrap();
    let nvme = Nvme::probe(dev(&a, "nvme1")).unwrap();
    let e = nvme.import(&buf, ShareAccess::Write).unwrap_err();
    assert!(
        matches!(
            e,
            dma_consumers::nvme::NvmeError::Share(ShareError::BadRedirect { .. })
        ),
        "{e}"
    );
    assert_eq!(buf.attachments().unwrap(), 0);
}
