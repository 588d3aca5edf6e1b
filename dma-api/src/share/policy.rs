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
use alloc::collections::BTreeMap;
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

/// Per-importer redirects: `(importer, range start)` → the RAM pieces.
type ClientRedirects = BTreeMap<(Bdf, u64), Vec<(PhysAddr, u64)>>;

/// The installed policy.
pub(crate) struct SharePolicy {
    rules: RwLock<Vec<(PhysAddr, u64, Rule)>>,
    /// Per-importer redirects (the exporter's `Redirect` action): for
    /// `(importer, range start)`, the RAM pieces holding that range.
    clients: RwLock<ClientRedirects>,
    prev: Option<Arc<dyn ProviderPolicy>>,
}

/// The pieces of `pieces` (their concatenation) covering `[off, off + len)`.
pub(crate) fn slice(pieces: &[(PhysAddr, u64)], off: u64, len: u64) -> Vec<(PhysAddr, u64)> {
    let (mut at, end) = (0u64, off.saturating_add(len));
    let mut out = Vec::new();
    for &(p, l) in pieces {
        let (s, e) = (at.max(off), (at + l).min(end));
        if s < e {
            out.push((PhysAddr::new(p.raw() + (s - at)), e - s));
        }
        at += l;
    }
    out
}

impl SharePolicy {
    pub(crate) fn new(ranges: &[(PhysAddr, u64)]) -> Self {
        Self {
            rules: RwLock::new(ranges.iter().map(|&(p, l)| (p, l, Rule::Home)).collect()),
            clients: RwLock::new(BTreeMap::new()),
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

    /// True if the range starting at `phys` is one of this policy's.
    pub(crate) fn covers(&self, phys: PhysAddr) -> bool {
        self.rules.read().iter().any(|r| r.0 == phys)
    }

    /// Redirects `client`'s mappings of the range starting at `phys` to
    /// `pieces` (`None`: no longer).
    pub(crate) fn set_client(
        &self,
        client: Bdf,
        phys: PhysAddr,
        pieces: Option<Vec<(PhysAddr, u64)>>,
    ) {
        let mut c = self.clients.write();
        match pieces {
            Some(p) => c.insert((client, phys.raw()), p),
            None => c.remove(&(client, phys.raw())),
        };
    }

    /// The buffer is gone: every range goes back to the replaced policy.
    pub(crate) fn retire(&self) {
        self.rules.write().clear();
        self.clients.write().clear();
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
            if let Rule::Refuse(why) = rule {
                return PolicyDecision::Refuse(why.clone());
            }
            let inside = phys.raw() >= s && end <= e;
            if let Some(pieces) = self.clients.read().get(&(client, s)) {
                return match (
                    inside,
                    slice(pieces, phys.raw() - s.min(phys.raw()), len).as_slice(),
                ) {
                    (true, [(to, _)]) => PolicyDecision::Redirect(*to),
                    (true, many) => PolicyDecision::RedirectRanges(many.to_vec()),
                    (false, _) => PolicyDecision::Refuse(alloc::format!(
                        "[{phys}, +{len:#x}) straddles a redirected range of a shared buffer"
                    )),
                };
            }
            match rule {
                Rule::Home | Rule::Refuse(_) => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn p(x: u64) -> PhysAddr {
        PhysAddr::new(x)
    }

    #[test]
    fn slice_cuts_the_concatenation_of_pieces() {
        let pieces = [
            (p(0x1000), 0x1000),
            (p(0x8000), 0x2000),
            (p(0x3000), 0x1000),
        ];
        assert_eq!(slice(&pieces, 0, 0x4000), pieces.to_vec());
        assert_eq!(
            slice(&pieces, 0x800, 0x1000),
            vec![(p(0x1800), 0x800), (p(0x8000), 0x800)]
        );
        assert_eq!(slice(&pieces, 0x3000, 0x1000), vec![(p(0x3000), 0x1000)]);
        assert_eq!(slice(&pieces, 0x4000, 0x1000), vec![]);
    }

    #[test]
    fn revoke_wins_over_a_client_redirect_and_others_defer() {
        let me: Bdf = "01:00.0".parse().unwrap();
        let other: Bdf = "02:00.0".parse().unwrap();
        let pol = SharePolicy::new(&[(p(0x10_000), 0x2000)]);
        let k = SegKind::Ram;
        let d = Direction::ToDevice;
        pol.set_client(
            me,
            p(0x10_000),
            Some(vec![(p(0x1000), 0x1000), (p(0x5000), 0x1000)]),
        );
        assert_eq!(
            pol.decide(me, p(0x10_000), 0x2000, k, d),
            PolicyDecision::RedirectRanges(vec![(p(0x1000), 0x1000), (p(0x5000), 0x1000)])
        );
        assert_eq!(
            pol.decide(me, p(0x11_000), 0x1000, k, d),
            PolicyDecision::Redirect(p(0x5000))
        );
        assert_eq!(
            pol.decide(other, p(0x10_000), 0x2000, k, d),
            PolicyDecision::Allow
        );
        pol.set(p(0x10_000), Rule::Refuse("revoked".into()));
        assert_eq!(
            pol.decide(me, p(0x10_000), 0x1000, k, d),
            PolicyDecision::Refuse("revoked".into())
        );
        pol.retire();
        assert_eq!(
            pol.decide(me, p(0x10_000), 0x1000, k, d),
            PolicyDecision::Allow
        );
    }
}
