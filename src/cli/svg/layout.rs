//! A deterministic tidy-tree layout of the PCI hierarchy: host bridges are
//! roots, functions hang below their bridge or port in BDF order. Leaves
//! take consecutive slots left to right; a parent is centred over its first
//! and last child. Subtrees occupy disjoint slot ranges, so no two boxes of
//! one level overlap, and the same machine always gets the same picture.

use dma_api::topology::{DeviceId, HostBridgeId, Topology};
use std::collections::BTreeMap;

/// A box of the picture.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Node {
    /// A host bridge (a root).
    Bridge(HostBridgeId),
    /// A PCI function.
    Device(DeviceId),
}

/// Where each box goes: its centre in slots (x) and its depth (y).
#[derive(Default, Debug)]
pub(crate) struct Layout {
    /// Centre x in slot units (a half when centred over an even span) and
    /// depth, per box, in drawing order (parents before children).
    pub placed: Vec<(Node, f64, usize)>,
    /// Parent → child links.
    pub links: Vec<(Node, Node)>,
    /// Slots used (the picture is this many boxes wide).
    pub slots: usize,
    /// Deepest level (0 for host bridges).
    pub depth: usize,
}

impl Layout {
    /// The centre and depth of `n`.
    pub(crate) fn position(&self) -> BTreeMap<Node, (f64, usize)> {
        self.placed.iter().map(|(n, x, d)| (*n, (*x, *d))).collect()
    }
}

fn children(t: &Topology, n: Node) -> Vec<Node> {
    match n {
        Node::Bridge(hb) => t.root_devices(hb).map(|(id, _)| Node::Device(id)).collect(),
        Node::Device(id) => t.device(id).map_or_else(Vec::new, |d| {
            d.children.iter().map(|c| Node::Device(*c)).collect()
        }),
    }
}

/// Places `n` and its subtree; returns its centre. Iterative over an
/// explicit stack, so a deep chain of bridges cannot overflow the call
/// stack.
fn place(t: &Topology, root: Node, next: &mut usize, out: &mut Layout) -> f64 {
    enum Step {
        Enter(Node, usize),
        Leave(Node, usize),
    }
    // Centres of finished children, per open parent.
    let mut done: Vec<Vec<f64>> = vec![Vec::new()];
    let mut stack = vec![Step::Enter(root, 0)];
    let mut order: Vec<(Node, f64, usize)> = Vec::new();
    while let Some(step) = stack.pop() {
        match step {
            Step::Enter(n, depth) => {
                out.depth = out.depth.max(depth);
                let kids = children(t, n);
                if kids.is_empty() {
                    let x = *next as f64;
                    *next += 1;
                    order.push((n, x, depth));
                    if let Some(top) = done.last_mut() {
                        top.push(x);
                    }
                    continue;
                }
                done.push(Vec::new());
                stack.push(Step::Leave(n, depth));
                for k in kids.iter().rev() {
                    out.links.push((n, *k));
                    stack.push(Step::Enter(*k, depth + 1));
                }
            }
            Step::Leave(n, depth) => {
                let xs = done.pop().unwrap_or_default();
                let x = match (xs.first(), xs.last()) {
                    (Some(a), Some(b)) => (a + b) / 2.0,
                    _ => *next as f64,
                };
                order.push((n, x, depth));
                if let Some(top) = done.last_mut() {
                    top.push(x);
                }
            }
        }
    }
    // Parents before children for drawing: by depth, then x.
    order.sort_by(|a, b| a.2.cmp(&b.2).then(a.1.total_cmp(&b.1)));
    let x = order
        .iter()
        .find(|(n, _, _)| *n == root)
        .map_or(0.0, |(_, x, _)| *x);
    out.placed.extend(order);
    x
}

/// The layout of every host bridge's tree, side by side in bridge order.
pub(crate) fn layout(t: &Topology) -> Layout {
    let mut out = Layout::default();
    let mut next = 0usize;
    for (hb, _) in t.host_bridge_ids() {
        place(t, Node::Bridge(hb), &mut next, &mut out);
    }
    out.links.sort();
    out.placed
        .sort_by(|a, b| a.2.cmp(&b.2).then(a.1.total_cmp(&b.1)));
    out.slots = next.max(1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dma_sim::machine::Machine;

    /// Every box has a place; boxes of one level never share a slot range
    /// (centres at least one slot apart); a parent is centred over its
    /// children.
    #[test]
    fn reference_layout_is_tidy() {
        let m = Machine::reference().unwrap();
        let t = &m.topology;
        let l = layout(t);
        assert_eq!(l.placed.len(), t.len() + t.host_bridges().len());
        let pos = l.position();
        for d in 0..=l.depth {
            let mut xs: Vec<f64> = l.placed.iter().filter(|p| p.2 == d).map(|p| p.1).collect();
            xs.sort_by(f64::total_cmp);
            for w in xs.windows(2) {
                assert!(w[1] - w[0] >= 1.0, "level {d}: {xs:?}");
            }
        }
        for (parent, _) in &l.links {
            let kids: Vec<f64> = l
                .links
                .iter()
                .filter(|(p, _)| p == parent)
                .map(|(_, c)| pos[c].0)
                .collect();
            let lo = kids.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = kids.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(pos[parent].0, (lo + hi) / 2.0);
        }
    }
}
