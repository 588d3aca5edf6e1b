//! 13. Device-private memory, three devices: the owner answers each
//!     (provider, client, access) triple on its own. One peer gets the BAR
//!     alias and writes peer-to-peer (judged by the oracle like any peer
//!     memory), a second is refused with the owner's reason and nothing
//!     mapped, a third migrates the pages and reads them from RAM.

use super::hmm_migrate::{gpu, probe};
use super::{check, failed, masters, pattern, skip, Scenario, Stop, Trial};
use dma_api::hmm::{HmmError, PeerAnswer};
use dma_api::{Direction, PAGE_SIZE};
use dma_consumers::hmm::PairRule;

pub(super) const SCENARIO: Scenario = Scenario {
    name: "hmm-peers",
    description: "device-private memory, three devices: BAR alias for one, migration for another, refusal for the third",
    run,
};

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let (owner, vram) = gpu(t.machine())?;
    let a = t.assemble(t.mode())?;
    let (dp, g) = probe(&a, owner, vram)?;
    let peers: Vec<_> = masters(&a)
        .map(|e| e.bdf)
        .filter(|b| !b.same_slot(owner))
        .collect();
    let range = g.page(0).ok_or_else(|| Stop::Fail("no page".into()))?;
    let len = 2 * PAGE_SIZE;
    // The allowed peer: the first that the oracle lets write the BAR.
    let mut alias = None;
    for &p in &peers {
        g.set_rule(p, Direction::FromDevice, PairRule::Alias);
        let dev = super::device(&a, p)?;
        match dp.map_for_peer(&dev, range, len, Direction::FromDevice) {
            Ok(m) => {
                alias = Some((p, dev, m));
                break;
            }
            Err(HmmError::Dma { .. }) => g.set_rule(p, Direction::FromDevice, PairRule::Refuse),
            Err(e) => return Err(Stop::Fail(format!("alias map for {p}: {e}"))),
        }
    }
    let (allowed, adev, m) = alias.ok_or_else(|| skip("no peer may write the GPU's BAR"))?;
    let others: Vec<_> = peers.iter().copied().filter(|&p| p != allowed).collect();
    let (&migrated, &refused) = match others.as_slice() {
        [a, b, ..] => (a, b),
        _ => return Err(skip("fewer than three peers")),
    };
    g.set_rule(migrated, Direction::ToDevice, PairRule::Migrate);
    g.set_rule(refused, Direction::ToDevice, PairRule::Refuse);
    t.note(format!(
        "{owner} owns {len:#x} bytes of device-private memory at {range}; rules: {allowed} write=alias, {migrated} read=migrate, {refused} read=refuse"
    ));
    a.fabric.reset_counters();
    for (i, p) in m.pages().iter().enumerate() {
        if i == 0 {
            t.record_route(&a, allowed, p.dma, true);
        }
        a.fabric
            .dma_write(allowed, p.dma, &pattern(PAGE_SIZE, 0x30 + i as u8))
            .map_err(failed("peer write"))?;
        check(
            g.read_local(i as u64).map_err(failed("GPU read"))?
                == pattern(PAGE_SIZE, 0x30 + i as u8),
            || "the alias write did not land in VRAM".into(),
        )?;
    }
    let p2p_ram = a.fabric.ram_bytes();
    check(p2p_ram == 0, || {
        format!("{p2p_ram} alias bytes went through RAM")
    })?;
    for r in &m.pages()[0].reasons {
        t.note(format!("  {allowed}: {r}"));
    }
    m.unmap().map_err(failed("unmap"))?;
    drop(adev);

    let rdev = super::device(&a, refused)?;
    let live = rdev.live_singles();
    let e = match dp.map_for_peer(&rdev, range, len, Direction::ToDevice) {
        Ok(_) => return Err(Stop::Fail("the refused peer got a mapping".into())),
        Err(e) => e,
    };
    check(
        matches!(e, HmmError::Dma { .. } | HmmError::Refused { .. }),
        || format!("refused with the wrong error: {e}"),
    )?;
    check(rdev.live_singles() == live, || {
        "a refusal left a mapping".into()
    })?;
    t.note(format!("  {refused}: {e}"));
    let mdev = super::device(&a, migrated)?;
    let mm = dp
        .map_for_peer(&mdev, range, len, Direction::ToDevice)
        .map_err(failed("migrate map"))?;
    check(mm.pages()[0].answer == Some(PeerAnswer::Migrate), || {
        "the owner did not migrate".into()
    })?;
    for (i, p) in mm.pages().iter().enumerate() {
        let mut b = vec![0u8; PAGE_SIZE as usize];
        a.fabric
            .dma_read(migrated, p.dma, &mut b)
            .map_err(failed("read of the RAM copy"))?;
        check(b == pattern(PAGE_SIZE, 0x30 + i as u8), || {
            "the migrated copy differs".into()
        })?;
    }
    for r in &mm.pages()[0].reasons {
        t.note(format!("  {migrated}: {r}"));
    }
    mm.unmap().map_err(failed("unmap"))?;

    Ok(format!(
        "{allowed} wrote {len} bytes peer-to-peer (0 through RAM), {refused} was refused, {migrated} read them after migration"
    ))
}
