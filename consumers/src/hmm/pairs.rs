//! The owner's per-pair table: one rule per (client, access), so the answer
//! for one client never depends on which other client asked first.

use dma_api::{Bdf, Direction};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the owner answers one (client, access) pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PairRule {
    /// Hand out the BAR alias (peer-to-peer).
    Alias,
    /// Migrate to RAM (Linux's behaviour for every peer).
    Migrate,
    /// Refuse.
    Refuse,
}

#[derive(Default, Debug)]
pub(super) struct Pairs(Mutex<BTreeMap<(Bdf, u8), PairRule>>);

fn key(d: Direction) -> u8 {
    match d {
        Direction::ToDevice => 1,
        Direction::FromDevice => 2,
        _ => 3,
    }
}

impl Pairs {
    pub(super) fn set(&self, client: Bdf, access: Direction, rule: PairRule) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((client, key(access)), rule);
    }

    pub(super) fn get(&self, client: Bdf, access: Direction) -> Option<PairRule> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(client, key(access)))
            .copied()
    }
}
