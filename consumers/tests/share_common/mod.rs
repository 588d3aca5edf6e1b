//! What the buffer-sharing tests share: the reference server assembled,
//! devices by name, patterns, and a device moving bytes through a shared
//! mapping's DMA segments on the fabric.

#![allow(dead_code)]

use dma_api::share::ShareMapping;
use dma_api::topology::Acs;
use dma_api::{Bdf, PhysAddr};
use dma_sim::assembly::{AssemblyOptions, IommuMode};
use dma_sim::fabric::FabricFault;
use dma_sim::machine::Machine;
use dma_sim::Assembly;
use std::sync::Arc;

/// gpu0's VRAM BAR (BAR 1, 64 GiB; the first 256 MiB registered).
pub const GPU_BAR: u64 = 0x50_0000_0000;
/// nvme0's CMB (BAR 2, 64 MiB, registered and published).
pub const NVME0_CMB: u64 = 0x40_0000_0000;
/// The APU's aperture (BAR 2, 512 KiB, registered).
pub const APU_APERTURE: u64 = 0xc200_0000;
/// The APU's stolen-RAM carve-out.
pub const APU_CARVE: u64 = 0x8000_0000;

pub fn reference(iommu: IommuMode) -> Assembly {
    let opts = AssemblyOptions {
        iommu,
        ..AssemblyOptions::default()
    };
    Assembly::build(Machine::reference().unwrap(), opts).unwrap()
}

pub fn bdf(a: &Assembly, name: &str) -> Bdf {
    a.find(name).unwrap_or_else(|| panic!("{name}")).bdf
}

pub fn dev(a: &Assembly, name: &str) -> Arc<dma_api::DmaDevice> {
    a.find(name).unwrap().device.clone()
}

/// Turns ACS redirect off on gpu0's downstream port: gpu0 then reaches its
/// switch peers by bus address.
pub fn gpu_port_without_redirect(a: &Assembly) {
    let mut t = a.ctx.topology.write();
    let dp3 = t.lookup("02:03.0".parse().unwrap()).unwrap();
    t.set_acs_ctrl(dp3, Acs::SV | Acs::UF).unwrap();
}

pub fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

pub fn cpu_read(a: &Assembly, phys: PhysAddr, len: u64) -> Vec<u8> {
    let mut b = vec![0; len as usize];
    a.fabric.cpu_read(phys, &mut b).unwrap();
    b
}

pub fn cpu_write(a: &Assembly, phys: PhysAddr, data: &[u8]) {
    a.fabric.cpu_write(phys, data).unwrap();
}

/// The device `who` writes `data` through the mapping, segment by segment.
pub fn dev_write(a: &Assembly, who: Bdf, m: &ShareMapping, data: &[u8]) -> Result<(), FabricFault> {
    let mut at = 0usize;
    for s in m.segments() {
        let n = s.len as usize;
        a.fabric.dma_write(who, s.dma, &data[at..at + n])?;
        at += n;
    }
    Ok(())
}

/// The device `who` reads the whole mapping, segment by segment.
pub fn dev_read(a: &Assembly, who: Bdf, m: &ShareMapping) -> Result<Vec<u8>, FabricFault> {
    let mut out = Vec::new();
    for s in m.segments() {
        let mut b = vec![0; s.len as usize];
        a.fabric.dma_read(who, s.dma, &mut b)?;
        out.extend_from_slice(&b);
    }
    Ok(out)
}

/// Bytes of every link touching `who`.
pub fn bytes_at(a: &Assembly, who: Bdf) -> u64 {
    use dma_sim::fabric::Node;
    a.fabric
        .links()
        .iter()
        .filter(|(l, _)| l.lower == Node::Device(who) || l.upper == Node::Device(who))
        .map(|(_, b)| b.total())
        .sum()
}
