//! 4. `map_or_fallback` for the refused direction (or, on a machine
//!    without one, any refused peer mapping such as an arch veto): the peer
//!    bytes are
//!    staged into a RAM buffer, the device reads them from RAM, and the
//!    mapping says it fell back and why (Linux has no such helper; nvmet,
//!    amdgpu and the block layer each hand-roll one and none reports why).

use super::refused_read::read_refused;
use super::{check, cpu_read, device, failed, pattern, pick, skip, Scenario, Stop, Trial};
use dma_api::fallback::map_or_fallback;
use dma_api::{Direction, DmaAttrs, ErrorKind};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "fallback",
    description: "map_or_fallback for a refused peer read: the bytes move through RAM and the mapping says why it fell back",
    run,
};

const LEN: u64 = 0x2000;

fn run(t: &mut Trial<'_>) -> Result<String, Stop> {
    let a = t.assemble(t.mode())?;
    let dir = Direction::ToDevice;
    // The refused read of scenario 3 if the machine has one, else any peer
    // mapping refused with a Fallback-kind error (an arch veto, …).
    let p = match pick::pair(&a, LEN, dir, read_refused)? {
        Some(p) => Some(p),
        None => pick::pair(&a, LEN, dir, |d| {
            d.error
                .as_ref()
                .is_some_and(|e| e.kind() == ErrorKind::Fallback)
        })?,
    }
    .ok_or_else(|| skip("no peer read is refused, nothing to fall back from"))?;
    let data = pattern(LEN, 0x44);
    a.fabric
        .cpu_write(p.at, &data)
        .map_err(failed("CPU write to the BAR"))?;
    t.note(format!(
        "CPU filled {LEN:#x} bytes of the BAR of {} at {}",
        p.provider, p.at
    ));
    let dev = device(&a, p.client)?;
    let m = map_or_fallback(&dev, p.at, LEN, dir, DmaAttrs::empty(), a.peer_memory())
        .map_err(failed("map_or_fallback"))?;
    let why = m
        .fell_back()
        .map(|e| e.to_string())
        .ok_or_else(|| Stop::Fail("mapped directly, did not fall back".into()))?;
    let buf = m.bounce_buffer();
    t.note(format!("fell back: {why}"));
    if let Some(b) = buf {
        t.note(format!(
            "staged in RAM at {b}, device address {}",
            m.dma_addr()
        ));
    }
    t.record_route(&a, p.client, m.dma_addr(), false);
    let mut got = vec![0u8; LEN as usize];
    a.fabric
        .dma_read(p.client, m.dma_addr(), &mut got)
        .map_err(failed("device read"))?;
    check(got == data, || {
        "the device read other bytes than the BAR holds".into()
    })?;
    let ram = a.fabric.ram_bytes();
    check(ram == LEN, || format!("{ram} RAM bytes, want {LEN}"))?;
    m.complete().map_err(failed("complete"))?;
    check(a.ctx.ram_in_use() == 0, || {
        "staging buffer not freed".into()
    })?;
    check(cpu_read(&a, p.at, LEN)? == data, || "BAR changed".into())?;
    Ok(format!(
        "fell back: {LEN} bytes of the peer BAR reached {} through RAM, staging buffer freed",
        p.client
    ))
}
