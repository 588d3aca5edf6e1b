//! A model NVMe controller for the tests: it executes a [`Command`] the way
//! hardware does. It fetches PRP2 and the PRP list pages itself (DMA reads
//! through the fabric, following the chain pointer in the last slot of a
//! full list page), then moves the data page by page through the fabric to
//! or from the addresses the PRPs name. It shares no code with the driver's
//! PRP builder.

use dma_api::{Bdf, DmaAddr};
use dma_consumers::nvme::{Command, Opcode};
use dma_sim::Assembly;

const PAGE: u64 = 4096;
const SLOTS: u64 = PAGE / 8;

fn read_u64(a: &Assembly, who: Bdf, at: u64) -> u64 {
    let mut b = [0u8; 8];
    a.fabric
        .dma_read(who, DmaAddr::new(at), &mut b)
        .expect("PRP list fetch");
    u64::from_le_bytes(b)
}

/// The data pages of `cmd` as `(DMA address, bytes)`, in transfer order.
pub fn data_pages(a: &Assembly, who: Bdf, cmd: &Command) -> Vec<(u64, u64)> {
    let first = (PAGE - cmd.prp1 % PAGE).min(cmd.len);
    let mut out = vec![(cmd.prp1, first)];
    let mut left = cmd.len - first;
    let n = left.div_ceil(PAGE);
    if n == 0 {
        assert_eq!(cmd.prp2, 0, "no PRP2 when the data ends in PRP1's page");
        return out;
    }
    if n == 1 {
        assert_eq!(cmd.prp2 % PAGE, 0, "PRP2 names a whole page");
        out.push((cmd.prp2, left));
        return out;
    }
    assert_eq!(cmd.prp2 % 8, 0, "the PRP list pointer is qword aligned");
    let (mut list, mut slot) = (cmd.prp2, cmd.prp2 % PAGE / 8);
    for k in 0..n {
        if slot == SLOTS - 1 && n - k > 1 {
            list = read_u64(a, who, list + slot * 8);
            assert_eq!(list % PAGE, 0, "a chained list page starts a page");
            slot = 0;
        }
        let entry = read_u64(a, who, list + slot * 8);
        assert_eq!(entry % PAGE, 0, "entry {k} names a whole page: {entry:#x}");
        let take = left.min(PAGE);
        out.push((entry, take));
        left -= take;
        slot += 1;
    }
    out
}

/// Executes `cmd`: a read writes `media` (the namespace's data, `cmd.len`
/// bytes) into the PRP pages; a write reads the PRP pages and returns what
/// the controller received.
pub fn execute(a: &Assembly, who: Bdf, cmd: &Command, media: &[u8]) -> Vec<u8> {
    let mut received = Vec::new();
    let mut at = 0usize;
    for (addr, len) in data_pages(a, who, cmd) {
        let len = len as usize;
        match cmd.opcode {
            Opcode::Read => a
                .fabric
                .dma_write(who, DmaAddr::new(addr), &media[at..at + len])
                .expect("controller write"),
            Opcode::Write => {
                let mut b = vec![0u8; len];
                a.fabric
                    .dma_read(who, DmaAddr::new(addr), &mut b)
                    .expect("controller read");
                received.extend_from_slice(&b);
            }
        }
        at += len;
    }
    assert_eq!(at as u64, cmd.len);
    received
}
