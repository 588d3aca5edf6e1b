//! Operation sequences over a generated machine.
//!
//! Every operation names its device, memory and live mapping by small
//! numbers taken modulo what exists when it runs, so any sequence is valid
//! to run: an operation with nothing to act on is a no-op, and one the code
//! under test refuses must leave nothing behind (the invariants check it).

use super::machine_gen::MachineSpec;
use crate::IommuMode;
use arbitrary::{Arbitrary, Unstructured};
use core::fmt;
use dma_api::Direction;

/// Which kind of memory an operation uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemPick {
    /// Low RAM (the assembly's scratch region).
    Scratch,
    /// RAM above 4 GiB.
    High,
    /// A device's stolen-RAM carve-out.
    Stolen,
    /// A registered p2pmem range.
    P2p,
    /// Any memory BAR (registered or not).
    Bar,
}

/// A place in memory: `which` range of kind `pick`, page and in-page offset
/// (all modulo what exists).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MemRef {
    /// The kind.
    pub pick: MemPick,
    /// Which range of that kind.
    pub which: u8,
    /// Page inside it.
    pub page: u16,
    /// Offset inside the page.
    pub offset: u16,
}

impl<'a> Arbitrary<'a> for MemRef {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick = *u.choose(&[
            MemPick::Scratch,
            MemPick::Scratch,
            MemPick::Scratch,
            MemPick::High,
            MemPick::Stolen,
            MemPick::P2p,
            MemPick::P2p,
            MemPick::Bar,
        ])?;
        let offset = if u.ratio(1, 2)? {
            0
        } else {
            u.int_in_range(0..=4095)?
        };
        Ok(Self {
            pick,
            which: u.arbitrary()?,
            page: u.arbitrary()?,
            offset,
        })
    }
}

/// A provider policy the sequence installs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PolicyPick {
    /// Allow every peer mapping.
    Allow,
    /// Refuse every peer mapping.
    Refuse,
    /// Redirect every range to a RAM range of the harness's choosing.
    Redirect,
}

/// One step.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    /// `dma_map_phys`.
    MapSingle {
        /// Device index.
        dev: u8,
        /// Memory.
        mem: MemRef,
        /// Length - 1 (modulo 3 pages).
        len: u16,
        /// Direction.
        dir: Direction,
    },
    /// `dma_map_sgtable` of a table over 1..=4 ranges of mixed kinds.
    MapTable {
        /// Device index.
        dev: u8,
        /// The ranges, each with its length - 1 (modulo 3 pages).
        parts: Vec<(MemRef, u16)>,
        /// Direction.
        dir: Direction,
    },
    /// Unmap a live single, table or coherent allocation.
    Unmap {
        /// Live mapping index.
        which: u8,
    },
    /// Sync a live mapping for the CPU or the device.
    Sync {
        /// Live mapping index.
        which: u8,
        /// `for_cpu` or `for_device`.
        for_cpu: bool,
    },
    /// `dma_iova_try_alloc` of `pages` pages at `mem`'s offset.
    IovaAlloc {
        /// Device index.
        dev: u8,
        /// Memory whose in-page offset starts the reservation.
        mem: MemRef,
        /// Pages (1..=8).
        pages: u8,
    },
    /// `dma_iova_link` + `dma_iova_sync` of page-aligned memory at a
    /// page of a live reservation.
    IovaLink {
        /// Live reservation index.
        which: u8,
        /// Memory.
        mem: MemRef,
        /// Page of the reservation.
        at_page: u8,
        /// Pages to link (1..=4).
        pages: u8,
        /// Direction.
        dir: Direction,
    },
    /// `dma_iova_unlink` of one link.
    IovaUnlink {
        /// Live reservation index.
        which: u8,
        /// Link index.
        link: u8,
    },
    /// `dma_iova_destroy`.
    IovaDestroy {
        /// Live reservation index.
        which: u8,
    },
    /// `dma_alloc_coherent`.
    CoherentAlloc {
        /// Device index.
        dev: u8,
        /// Pages (1..=4).
        pages: u8,
    },
    /// Installs an owner policy on a provider.
    SetPolicy {
        /// Provider index (devices with memory).
        provider: u8,
        /// The policy.
        policy: PolicyPick,
    },
    /// Sets the ACS control bits of a port (inside its capability).
    SetAcs {
        /// Port index (functions with an ACS capability).
        port: u8,
        /// Control bits (masked by the capability).
        ctrl: u8,
    },
    /// Hot-removes an endpoint and re-adds it at the same BDF.
    Replug {
        /// Device index.
        dev: u8,
    },
    /// Advances the IOMMU clock (flush-queue timers).
    Advance {
        /// Milliseconds (0..=15).
        ms: u8,
    },
}

fn dir(u: &mut Unstructured<'_>) -> arbitrary::Result<Direction> {
    Ok(*u.choose(&[
        Direction::ToDevice,
        Direction::FromDevice,
        Direction::Bidirectional,
    ])?)
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=19)? {
            0..=4 => Op::MapSingle {
                dev: u.arbitrary()?,
                mem: u.arbitrary()?,
                len: u.arbitrary()?,
                dir: dir(u)?,
            },
            5..=6 => {
                let n = u.int_in_range(1..=4)?;
                let parts = (0..n)
                    .map(|_| Ok((u.arbitrary()?, u.arbitrary()?)))
                    .collect::<arbitrary::Result<Vec<_>>>()?;
                Op::MapTable {
                    dev: u.arbitrary()?,
                    parts,
                    dir: dir(u)?,
                }
            }
            7..=9 => Op::Unmap {
                which: u.arbitrary()?,
            },
            10 => Op::Sync {
                which: u.arbitrary()?,
                for_cpu: u.arbitrary()?,
            },
            11 => Op::IovaAlloc {
                dev: u.arbitrary()?,
                mem: u.arbitrary()?,
                pages: u.int_in_range(1..=8)?,
            },
            12 => Op::IovaLink {
                which: u.arbitrary()?,
                mem: u.arbitrary()?,
                at_page: u.arbitrary()?,
                pages: u.int_in_range(1..=4)?,
                dir: dir(u)?,
            },
            13 => Op::IovaUnlink {
                which: u.arbitrary()?,
                link: u.arbitrary()?,
            },
            14 => Op::IovaDestroy {
                which: u.arbitrary()?,
            },
            15 => Op::CoherentAlloc {
                dev: u.arbitrary()?,
                pages: u.int_in_range(1..=4)?,
            },
            16 => Op::SetPolicy {
                provider: u.arbitrary()?,
                policy: *u.choose(&[
                    PolicyPick::Allow,
                    PolicyPick::Refuse,
                    PolicyPick::Redirect,
                ])?,
            },
            17 => Op::SetAcs {
                port: u.arbitrary()?,
                ctrl: u.arbitrary()?,
            },
            18 => Op::Replug {
                dev: u.arbitrary()?,
            },
            _ => Op::Advance {
                ms: u.int_in_range(0..=15)?,
            },
        })
    }
}

/// A whole fuzz input: the machine, how it is assembled, and the steps.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FuzzCase {
    /// The machine.
    pub machine: MachineSpec,
    /// IOMMU mode (`off`, `strict`, `lazy`).
    pub mode: IommuMode,
    /// Wrap every backend in dma-debug.
    pub debug: bool,
    /// `swiotlb=force` for direct backends.
    pub force_bounce: bool,
    /// The operations (at most 64).
    pub ops: Vec<Op>,
}

/// Longest operation sequence generated.
pub const MAX_OPS: usize = 64;

impl<'a> Arbitrary<'a> for FuzzCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let machine = u.arbitrary()?;
        let mode = *u.choose(&[
            IommuMode::Strict,
            IommuMode::Strict,
            IommuMode::Lazy,
            IommuMode::Lazy,
            IommuMode::Off,
        ])?;
        let debug = u.arbitrary()?;
        let force_bounce = u.ratio(1, 5)?;
        let mut ops = Vec::new();
        while ops.len() < MAX_OPS && !u.is_empty() {
            ops.push(u.arbitrary()?);
        }
        Ok(Self {
            machine,
            mode,
            debug,
            force_bounce,
            ops,
        })
    }
}

impl FuzzCase {
    /// Decodes a fuzz input (the bytes libFuzzer hands a target).
    pub fn from_bytes(data: &[u8]) -> arbitrary::Result<Self> {
        Self::arbitrary(&mut Unstructured::new(data))
    }
}

/// The replay form: the machine file, the assembly options and the
/// numbered operation list.
impl fmt::Display for FuzzCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# machine file")?;
        writeln!(f, "{}", self.machine.to_toml())?;
        writeln!(
            f,
            "# iommu = {}, debug = {}, force_bounce = {}",
            self.mode.name(),
            self.debug,
            self.force_bounce
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "# step {i}: {op:?}")?;
        }
        Ok(())
    }
}
