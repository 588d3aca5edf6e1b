//! Cross-domain export on the reference server (IOMMU strict): domain 1
//! and domain 2 each own 64 MiB of host RAM behind an ARM LPAE stage-2
//! table; nvme0 is assigned to domain 2.
//!
//! * 1000 pages exported by domain 1 (one directory page: ⌈1000/1023⌉) are
//!   read by nvme0 byte-exact after the fence; 2100 pages need 3.
//! * Revocation while mapped is deferred, refuses new maps, and completes
//!   only after the importer unmapped.
//! * A forged reference, a reserved one, a page the exporter does not own,
//!   a grant for another domain, a revoked grant and a directory loop are
//!   each refused typed with nothing mapped in domain 2.

use dma_api::xdomain::{
    directory_pages, Channel, DomId, DomainDma, GrantError, GrantOps, GrantRef, GuestAddr, Message,
    PageDirectory,
};
use dma_api::{Direction, PhysAddr, PAGE_SIZE};
use dma_consumers::xen_zcopy::{ZcopyExport, ZcopyImport};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::machine::Machine;
use dma_sim::xen::Hypervisor;
use dma_sim::Assembly;
use std::sync::Arc;

const A: DomId = DomId(1);
const B: DomId = DomId(2);
const C: DomId = DomId(3);
const DOM_RAM: u64 = 64 << 20;

struct World {
    a: Assembly,
    hv: Arc<Hypervisor>,
    ops: Arc<dyn GrantOps>,
    dma: DomainDma,
}

fn world() -> World {
    let opts = AssemblyOptions {
        iommu: IommuMode::Strict,
        ..AssemblyOptions::default()
    };
    let a = Assembly::build(Machine::reference().unwrap(), opts).unwrap();
    let hv = Arc::new(Hypervisor::new(a.ctx.mem.clone()));
    let base = a.layout.scratch.0.raw();
    for (i, d) in [A, B, C].into_iter().enumerate() {
        hv.create_domain(d, PhysAddr::new(base + i as u64 * DOM_RAM), DOM_RAM)
            .unwrap();
    }
    let ops: Arc<dyn GrantOps> = hv.clone();
    let nvme = a.find("nvme0").unwrap().device.clone();
    let dma = DomainDma::new(B, ops.clone(), nvme);
    World { a, hv, ops, dma }
}

fn fill(w: &World, n: usize) -> (Vec<GuestAddr>, Vec<u8>) {
    let mut pages = Vec::new();
    let mut data = Vec::new();
    for i in 0..n {
        let p = w.ops.alloc_page(A).unwrap();
        let bytes: Vec<u8> = (0..PAGE_SIZE)
            .map(|j| (j as u8) ^ (i as u8).wrapping_mul(7) ^ (i >> 8) as u8)
            .collect();
        w.ops.write(A, p, &bytes).unwrap();
        pages.push(p);
        data.extend_from_slice(&bytes);
    }
    (pages, data)
}

fn device_reads(w: &World, imp: &ZcopyImport) -> Vec<u8> {
    let m = imp.dma_map(&w.dma, Direction::ToDevice).unwrap();
    let mut got = Vec::new();
    for (dma, len) in m.segments() {
        let mut b = vec![0u8; len as usize];
        w.a.fabric.dma_read(w.dma_bdf(), dma, &mut b).unwrap();
        got.extend_from_slice(&b);
    }
    m.unmap().unwrap();
    got
}

impl World {
    fn dma_bdf(&self) -> dma_api::Bdf {
        self.a.find("nvme0").unwrap().bdf
    }
}

#[test]
fn a_thousand_pages_cross_domains_byte_exact() {
    let w = world();
    let (pages, data) = fill(&w, 1000);
    let chan = Channel::new();
    let mut exp = ZcopyExport::export(w.ops.clone(), A, B, &pages, true).unwrap();
    assert_eq!(exp.directory_refs().len(), 1);
    assert_eq!(directory_pages(1000), 1);
    exp.announce(&chan);
    chan.send(Message::Fence { seq: 1 });
    // Domain 2 receives one reference and the page count.
    let Some(Message::Export { first, pages: n }) = chan.recv() else {
        panic!("no export message")
    };
    assert_eq!(first, exp.first());
    let imp = ZcopyImport::import(w.ops.clone(), B, A, first, n as usize, true).unwrap();
    assert!(chan.signalled(1));
    assert_eq!(w.hv.grant_mappings(B), 1000);
    w.a.fabric.reset_counters();
    let got = device_reads(&w, &imp);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "nvme0 read other bytes than domain 1 wrote");
    assert_eq!(w.a.fabric.counters().bytes_read, 1000 * PAGE_SIZE);
    assert!(w.a.fabric.faults().is_empty());

    // Revoke while domain 2 still has it mapped: deferred.
    let pending = exp.revoke(&chan).unwrap();
    assert_eq!(pending, 1000);
    assert!(!exp.revoked());
    // No new mapping of a grant being revoked.
    let e = w.ops.map_grant(B, A, exp.data_refs()[0], true).unwrap_err();
    assert_eq!(
        e,
        GrantError::Revoked {
            granter: A,
            gref: exp.data_refs()[0]
        }
    );
    let _ = chan.recv(); // the fence
    assert_eq!(chan.recv(), Some(Message::Revoke { first }));
    imp.unmap().unwrap();
    chan.send(Message::Unmapped { first });
    assert!(exp.revoked());
    assert_eq!(w.hv.live_grants(A), 0);
    assert_eq!(w.hv.grant_mappings(B), 0);
    assert!(w.a.ctx.take_drop_errors().is_empty());
}

#[test]
fn directories_chain_over_three_pages() {
    let w = world();
    let (pages, data) = fill(&w, 2100);
    let exp = ZcopyExport::export(w.ops.clone(), A, B, &pages, true).unwrap();
    assert_eq!(exp.directory_refs().len(), 3);
    let imp = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 2100, true).unwrap();
    let got = device_reads(&w, &imp);
    assert!(got == data);
    // The importer's CPU sees the same bytes.
    let mut b = vec![0u8; 100];
    imp.read(2099 * PAGE_SIZE + 7, &mut b).unwrap();
    assert_eq!(b, data[2099 * PAGE_SIZE as usize + 7..][..100]);
}

#[test]
fn bad_references_are_refused_with_nothing_mapped() {
    let w = world();
    let (pages, _) = fill(&w, 4);
    // A page domain 1 does not own: refused, every grant made undone.
    let mut bad = pages.clone();
    bad.push(GuestAddr::new(DOM_RAM + 0x1000));
    let e = ZcopyExport::export(w.ops.clone(), A, B, &bad, true).unwrap_err();
    assert!(matches!(e, GrantError::NotOwned { dom: A, .. }), "{e}");
    assert_eq!(w.hv.live_grants(A), 0);

    let exp = ZcopyExport::export(w.ops.clone(), A, B, &pages, true).unwrap();
    // Forged: a reference never issued, and a reserved one.
    for forged in [GrantRef(999_999), GrantRef(3), GrantRef::INVALID] {
        let e = ZcopyImport::import(w.ops.clone(), B, A, forged, 4, true).unwrap_err();
        assert!(
            matches!(
                e,
                GrantError::BadRef { .. } | GrantError::DirectoryLength { .. }
            ),
            "{forged}: {e}"
        );
        assert_eq!(w.hv.grant_mappings(B), 0);
    }
    // A grant for domain 2, mapped by domain 3.
    let e = ZcopyImport::import(w.ops.clone(), C, A, exp.first(), 4, true).unwrap_err();
    assert!(matches!(e, GrantError::NotGrantee { mapper: C, .. }), "{e}");
    assert_eq!(w.hv.grant_mappings(C), 0);
    // A writable mapping of a read-only grant.
    let e = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 4, false).unwrap_err();
    assert!(matches!(e, GrantError::ReadOnly { .. }), "{e}");
    assert_eq!(w.hv.grant_mappings(B), 0);
    // The wrong page count: the chain is shorter / longer than claimed.
    let e = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 5, true).unwrap_err();
    assert!(matches!(e, GrantError::BadRef { .. }), "{e}");
    assert_eq!(w.hv.grant_mappings(B), 0);

    // Revoked with nobody mapping: every reference is dead at once.
    let mut exp = exp;
    let chan = Channel::new();
    assert_eq!(exp.revoke(&chan).unwrap(), 0);
    assert!(exp.revoked());
    let e = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 4, true).unwrap_err();
    assert!(matches!(e, GrantError::BadRef { .. }), "{e}");
    assert_eq!(w.hv.grant_mappings(B), 0);
}

#[test]
fn a_directory_loop_is_refused() {
    let w = world();
    let (pages, _) = fill(&w, 3000);
    let exp = ZcopyExport::export(w.ops.clone(), A, B, &pages, true).unwrap();
    let dirs = exp.directory_refs().to_vec();
    assert_eq!(dirs.len(), 3);
    // Domain 1 rewrites its second directory page to point back to the
    // first: the chain never ends.
    assert_eq!(w.hv.grant_maps(A, dirs[1]), Some(0));
    let page = find_dir_page(&w, &exp, 1);
    let mut d = PageDirectory::decode(&read_page(&w, page)).unwrap();
    d.next = dirs[0];
    w.ops.write(A, page, &d.encode().unwrap()).unwrap();
    let e = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 3000, true).unwrap_err();
    assert_eq!(e, GrantError::DirectoryLoop { gref: dirs[0] });
    assert_eq!(w.hv.grant_mappings(B), 0);
    // Pointing the last page anywhere but INVALID is refused too.
    let last = find_dir_page(&w, &exp, 2);
    let mut d = PageDirectory::decode(&read_page(&w, last)).unwrap();
    d.next = dirs[1];
    w.ops.write(A, last, &d.encode().unwrap()).unwrap();
    let page = find_dir_page(&w, &exp, 1);
    let mut d = PageDirectory::decode(&read_page(&w, page)).unwrap();
    d.next = dirs[2];
    w.ops.write(A, page, &d.encode().unwrap()).unwrap();
    let e = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 3000, true).unwrap_err();
    assert_eq!(e, GrantError::DirectoryLoop { gref: dirs[1] });
    assert_eq!(w.hv.grant_mappings(B), 0);
}

fn read_page(w: &World, p: GuestAddr) -> Vec<u8> {
    let mut b = vec![0u8; PAGE_SIZE as usize];
    w.ops.read(A, p, &mut b).unwrap();
    b
}

/// The guest address of directory page `i`: the exporter allocated them
/// right after the buffer's pages.
fn find_dir_page(w: &World, exp: &ZcopyExport, i: usize) -> GuestAddr {
    let p = GuestAddr::new((exp.pages() + i) as u64 * PAGE_SIZE);
    let d = PageDirectory::decode(&read_page(w, p)).unwrap();
    assert_eq!(
        d.refs[0],
        exp.data_refs()[i * dma_api::xdomain::REFS_PER_PAGE]
    );
    p
}

#[test]
fn imported_grants_shared_as_a_udmabuf() {
    use dma_api::share::ShareAccess;
    use dma_consumers::rdma::{MrKind, RdmaNic};
    use dma_consumers::udmabuf::Udmabuf;
    let w = world();
    let (pages, data) = fill(&w, 16);
    let exp = ZcopyExport::export(w.ops.clone(), A, B, &pages, true).unwrap();
    let imp = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 16, true).unwrap();
    let host = imp.host_pages().unwrap();
    let nic = w.a.find("rdma0").unwrap();
    let u = Udmabuf::new(w.a.ctx.clone(), nic.bdf, host, Some(Box::new(imp))).unwrap();
    let buf = u.export().unwrap();
    let mr = RdmaNic::new(nic.device.clone())
        .register(&buf, ShareAccess::Read, MrKind::Revocable)
        .unwrap();
    let mut got = Vec::new();
    for s in mr.mapping().unwrap().segments() {
        let mut b = vec![0u8; s.len as usize];
        w.a.fabric.dma_read(nic.bdf, s.dma, &mut b).unwrap();
        got.extend_from_slice(&b);
    }
    assert!(got == data, "rdma0 read other bytes through the udmabuf");
    mr.deregister().unwrap();
    drop(buf);
    assert_eq!(w.hv.grant_mappings(B), 16);
    drop(u);
    assert_eq!(w.hv.grant_mappings(B), 0, "the grants go with the exporter");
    // Not RAM: refused, naming the page.
    let bar = PhysAddr::new(0x40_0400_0000);
    let e = Udmabuf::new(w.a.ctx.clone(), nic.bdf, vec![bar], None).unwrap_err();
    assert!(
        matches!(
            e,
            dma_api::share::ShareError::NotExportable { index: 0, .. }
        ),
        "{e}"
    );
}

#[test]
fn dropping_an_export_ends_its_grants_once_unmapped() {
    let w = world();
    let (pages, data) = fill(&w, 8);
    let exp = ZcopyExport::export(w.ops.clone(), A, B, &pages, true).unwrap();
    let imp = ZcopyImport::import(w.ops.clone(), B, A, exp.first(), 8, true).unwrap();
    assert_eq!(w.hv.live_grants(A), 9);
    drop(exp);
    // The directory grant ended at once; the mapped pages stay readable.
    assert_eq!(w.hv.live_grants(A), 8);
    let mut b = vec![0u8; 4096];
    imp.read(7 * PAGE_SIZE, &mut b).unwrap();
    assert_eq!(b, data[7 * 4096..]);
    // No new mapping of an ended grant: the directory's is gone, a mapped
    // page's is being revoked.
    let e = ZcopyImport::import(w.ops.clone(), B, A, GrantRef(16), 8, true).unwrap_err();
    assert!(matches!(e, GrantError::BadRef { .. }), "{e}");
    let e = w.ops.map_grant(B, A, GrantRef(8), true).unwrap_err();
    assert!(matches!(e, GrantError::Revoked { .. }), "{e}");
    assert_eq!(w.hv.grant_mappings(B), 8);
    imp.unmap().unwrap();
    assert_eq!(w.hv.live_grants(A), 0);
    assert_eq!(w.hv.grant_mappings(B), 0);
}
