//! 3. A direction-limited host bridge: this root complex forwards peer
//!    writes but not reads. Mapping the read direction is refused at map
//!    time with a typed `Fallback`-kind error carrying the oracle's reason
//!    chain (where Linux's `pci_p2pdma_map_type` only says
//!    `PCI_P2PDMA_MAP_NOT_SUPPORTED`). A device that reads the peer anyway,
//!    through the address it got for writing, faults on the wire and the
//!    fault is recorded.

use super::{check, device, failed, pick, skip, Scenario, Stop, Trial};
use dma_api::{Direction, DmaAttrs, ErrorKind};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "refused-read",
    description: "peer read the host bridge does not forward: refused at map time (typed Fallback + reasons); a read anyway faults",
    run,
};

const LEN: u64 = 0x1000;

/// A pair whose peer reads the oracle refuses but whose writes it allows.
pub(super) fn read_refused(d: &dma_api::device::Decision) -> bool {
    d.error
        .as_ref()
        .is_some_and(|e| e.kind() == ErrorKind::Fallback)
        && d.route.as_ref().is_some_and(|r| !r.read && r.write)
}

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(t.mode())?;
    let p = pick::pair(&a, LEN, Direction::ToDevice, read_refused)?
        .ok_or_else(|| skip("no host bridge forwards peer writes but refuses peer reads"))?;
    let dev = device(&a, p.client)?;
    let err = match dev.map_phys(p.at, LEN, Direction::ToDevice, DmaAttrs::empty()) {
        Ok(_) => return Err(Stop::Fail("the read direction was mapped".into())),
        Err(e) => e,
    };
    check(err.kind() == ErrorKind::Fallback, || {
        format!(
            "refused with a {:?}-kind error, want Fallback: {err}",
            err.kind()
        )
    })?;
    t.note(format!(
        "{} reading BAR of {} at {}: refused: {err}",
        p.client, p.provider, p.at
    ));
    // The device reads through the address its write mapping gave it.
    let dma = dev
        .map_phys(p.at, LEN, Direction::FromDevice, DmaAttrs::empty())
        .map_err(failed("map_phys (write direction)"))?;
    t.note(format!(
        "the write direction maps at {dma}; the device reads there anyway"
    ));
    let mut buf = vec![0u8; LEN as usize];
    let fault = match a.fabric.dma_read(p.client, dma, &mut buf) {
        Ok(()) => return Err(Stop::Fail("the refused read was delivered".into())),
        Err(f) => f,
    };
    check(a.fabric.faults().contains(&fault), || {
        format!("fault not in the fabric's log: {fault}")
    })?;
    check(a.fabric.counters().bytes_read == 0, || {
        "bytes were read".into()
    })?;
    dev.unmap_phys(dma, LEN, Direction::FromDevice, DmaAttrs::empty())
        .map_err(failed("unmap_phys"))?;
    Ok(format!(
        "read refused at map time (Fallback, errno {}); read anyway, it faults on the wire: {}",
        err.errno(),
        fault.reason
    ))
}
