//! The buffer's provider policy per exported peer range: what the
//! dispatcher allows for the buffer's memory follows the buffer's state, so
//! a migration (redirect to the RAM copy) or a revocation (refuse) changes
//! every later mapping — the buffer's own and anyone's `map_phys` of the
//! same range — in the same step as the importers are notified.
//!
//! One policy per registered p2pmem range the buffer touches
//! ([`DmaContext::set_range_policy`](crate::DmaContext::set_range_policy));
//! ranges it does not cover, and everything once the buffer is gone, are
//! decided by the policy it replaced (or the owner's).

use crate::bdf::Bdf;
use crate::direction::Direction;
use crate::port::{PolicyDecision, ProviderPolicy};
use crate::sync::RwLock;
use crate::types::{PhysAddr, SegKind};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What the buffer says about one of its ranges.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Rule {
    /// At home: the policy the buffer replaced decides.
    Home,
    /// Migrated: map this RAM range (same length) instead.
    Redirect(PhysAddr),
    /// Revoked.
    Refuse(String),
}

/// The installed policy.
pub(crate) struct SharePolicy {
    rules: RwLock<Vec<(PhysAddr, u64, Rule)>>,
    prev: Option<Arc<dyn ProviderPolicy>>,
}

impl SharePolicy {
    pub(crate) fn new(ranges: &[(PhysAddr, u64)]) -> Self {
        Self {
            rules: RwLock::new(ranges.iter().map(|&(p, l)| (p, l, Rule::Home)).collect()),
            prev: None,
        }
    }

    pub(crate) fn with_prev(mut self, prev: Option<Arc<dyn ProviderPolicy>>) -> Self {
        self.prev = prev;
        self
    }

    /// Sets the rule of the range starting at `phys`.
    pub(crate) fn set(&self, phys: PhysAddr, rule: Rule) {
        for r in self.rules.write().iter_mut().filter(|r| r.0 == phys) {
            r.2 = rule.clone();
        }
    }

    /// The buffer is gone: every range goes back to the replaced policy.
    pub(crate) fn retire(&self) {
        self.rules.write().clear();
    }
}

impl ProviderPolicy for SharePolicy {
    fn decide(
        &self,
        client: Bdf,
        phys: PhysAddr,
        len: u64,
        kind: SegKind,
        dir: Direction,
    ) -> PolicyDecision {
        let end = phys.raw().saturating_add(len);
        let rules = self.rules.read();
        for (start, rlen, rule) in rules.iter() {
            let (s, e) = (start.raw(), start.raw().saturating_add(*rlen));
            if phys.raw() >= e || end <= s {
                continue;
            }
            match rule {
                Rule::Home => {}
                Rule::Refuse(why) => return PolicyDecision::Refuse(why.clone()),
                Rule::Redirect(to) => {
                    // Only a mapping inside the range can be redirected
                    // byte for byte.
                    return match phys.raw().checked_sub(s) {
                        Some(off) if end <= e => {
                            PolicyDecision::Redirect(PhysAddr::new(to.raw() + off))
                        }
                        _ => PolicyDecision::Refuse(alloc::format!(
                            "[{phys}, +{len:#x}) straddles a migrated range of a shared buffer"
                        )),
                    };
                }
            }
        }
        drop(rules);
        match &self.prev {
            Some(p) => p.decide(client, phys, len, kind, dir),
            None => PolicyDecision::Allow,
        }
    }
}
