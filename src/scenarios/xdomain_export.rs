//! 15. Cross-domain export (Xen grant tables, the xen-zcopy design): domain
//!     1 exports 1000 pages as grant references in chained directory pages
//!     and hands over one reference; domain 2 maps the grants through its
//!     stage-2 table and a device assigned to it reads the buffer
//!     byte-exact. A forged reference is refused with nothing mapped;
//!     revocation waits until domain 2 unmapped.

use super::{check, failed, masters, skip, Scenario, Stop, Trial};
use dma_api::xdomain::{
    directory_pages, Channel, DomId, DomainDma, GrantError, GrantOps, GrantRef, Message,
    REFS_PER_PAGE,
};
use dma_api::{Direction, PhysAddr, PAGE_SIZE};
use dma_consumers::xen_zcopy::{ZcopyExport, ZcopyImport};
use dma_sim::xen::Hypervisor;
use std::sync::Arc;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "xdomain-export",
    description: "1000 pages granted by domain 1 are read byte-exact by a device of domain 2; forged refs refused; revoke waits for the unmap",
    run,
};

const PAGES: usize = 1000;
const DOM_RAM: u64 = 8 << 20;
const A: DomId = DomId(1);
const B: DomId = DomId(2);

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(t.mode())?;
    let (base, size) = a.layout.scratch;
    if size < 2 * DOM_RAM {
        return Err(skip("less than 16 MiB of free RAM for two domains"));
    }
    let dev_bdf = masters(&a)
        .map(|e| e.bdf)
        .next()
        .ok_or_else(|| skip("no DMA master"))?;
    let hv = Arc::new(Hypervisor::new(a.ctx.mem.clone()));
    for (i, d) in [A, B].into_iter().enumerate() {
        hv.create_domain(d, PhysAddr::new(base.raw() + i as u64 * DOM_RAM), DOM_RAM)
            .map_err(failed("create domain"))?;
    }
    let ops: Arc<dyn GrantOps> = hv.clone();
    let mut pages = Vec::with_capacity(PAGES);
    let mut data = Vec::with_capacity(PAGES * PAGE_SIZE as usize);
    for i in 0..PAGES {
        let p = ops.alloc_page(A).map_err(failed("alloc"))?;
        let b: Vec<u8> = (0..PAGE_SIZE)
            .map(|j| (j as u8).wrapping_add(i as u8) ^ (i >> 8) as u8)
            .collect();
        ops.write(A, p, &b).map_err(failed("domain 1 write"))?;
        pages.push(p);
        data.extend_from_slice(&b);
    }
    let chan = Channel::new();
    let mut exp = ZcopyExport::export(ops.clone(), A, B, &pages, true).map_err(failed("export"))?;
    let dirs = exp.directory_refs().len();
    check(dirs == directory_pages(PAGES), || {
        format!("{dirs} directory pages")
    })?;
    exp.announce(&chan);
    chan.send(Message::Fence { seq: 1 });
    t.note(format!(
        "{A} grants {PAGES} pages to {B}: {dirs} directory page(s) of {REFS_PER_PAGE} refs, first {}",
        exp.first()
    ));
    let Some(Message::Export { first, pages: n }) = chan.recv() else {
        return Err(Stop::Fail("no export message".into()));
    };
    // A forged reference first: refused, nothing mapped in domain 2.
    let forged = GrantRef(first.0 + 50_000);
    match ZcopyImport::import(ops.clone(), B, A, forged, n as usize, true) {
        Err(GrantError::BadRef { .. }) => {}
        other => return Err(Stop::Fail(format!("forged {forged}: {other:?}"))),
    }
    check(hv.grant_mappings(B) == 0, || {
        "a refusal left grants mapped".into()
    })?;
    t.note(format!("forged {forged} refused; nothing mapped in {B}"));
    let imp = ZcopyImport::import(ops.clone(), B, A, first, n as usize, true)
        .map_err(failed("import"))?;
    check(chan.signalled(1), || "fence 1 not signalled".into())?;
    let dma = DomainDma::new(B, ops.clone(), super::device(&a, dev_bdf)?);
    let m = imp
        .dma_map(&dma, Direction::ToDevice)
        .map_err(failed("DMA map"))?;
    let segs = m.segments();
    t.note(format!(
        "{B} maps the grants at {} and DMA-maps them for {dev_bdf}: {} segment(s)",
        imp.pages()[0],
        segs.len()
    ));
    a.fabric.reset_counters();
    if let Some(&(d, _)) = segs.first() {
        t.record_route(&a, dev_bdf, d, false);
    }
    let mut got = Vec::with_capacity(data.len());
    for (d, len) in segs {
        let mut b = vec![0u8; len as usize];
        a.fabric
            .dma_read(dev_bdf, d, &mut b)
            .map_err(failed("device read"))?;
        got.extend_from_slice(&b);
    }
    check(got == data, || "the device read other bytes".into())?;
    let pending = exp.revoke(&chan).map_err(failed("revoke"))?;
    check(pending == PAGES && !exp.revoked(), || {
        format!("revoke did not wait: {pending} pending")
    })?;
    m.unmap().map_err(failed("DMA unmap"))?;
    imp.unmap().map_err(failed("grant unmap"))?;
    check(exp.revoked() && hv.live_grants(A) == 0, || {
        "revocation did not complete after the unmap".into()
    })?;
    t.note("revoke deferred while mapped, completed after domain 2 unmapped".to_string());
    Ok(format!(
        "{dev_bdf} in {B} read {} bytes granted by {A} byte-exact through {dirs} directory page(s)",
        PAGES as u64 * PAGE_SIZE
    ))
}
