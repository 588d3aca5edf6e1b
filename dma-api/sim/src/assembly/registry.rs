//! The backend registry: the one place that turns a backend *name* into a
//! concrete [`DmaBackend`]. Drivers and consumers only ever see the trait.
//!
//! | name | backend | IOMMU group domain |
//! |---|---|---|
//! | `direct` | [`DirectBackend`] (arch `phys_to_dma`, swiotlb when needed) | identity (passthrough) when the host bridge has an IOMMU |
//! | `iommu` | [`IommuDmaBackend`] (untrusted devices bounce through swiotlb) | `Dma` (strict invalidation) |
//! | `iommu-lazy` | [`IommuDmaBackend`] | `DmaFq` (flush queue); untrusted groups are forced strict by the domain code |

use super::error::AssemblyError;
use dma_api::device::DmaContext;
use dma_api::direct::{DirectBackend, DirectConfig};
use dma_api::port::DmaBackend;
use dma_api::swiotlb::Swiotlb;
use dma_api::Bdf;
use dma_iommu::dma::{DmaDomain, IommuDevice, IommuDmaBackend};
use dma_iommu::{DomainType, GroupId};
use std::sync::Arc;

/// The domain type a backend needs for its device's IOMMU group.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DomainNeed {
    /// No translation: identity domain if an IOMMU is present, else nothing.
    Passthrough,
    /// A translating domain with strict invalidation.
    Strict,
    /// A translating domain with lazy invalidation (flush queue).
    Lazy,
}

impl DomainNeed {
    /// The IOMMU domain type.
    pub fn domain_type(self) -> DomainType {
        match self {
            Self::Passthrough => DomainType::Identity,
            Self::Strict => DomainType::Dma,
            Self::Lazy => DomainType::DmaFq,
        }
    }
}

/// A backend as built, with its concrete type kept for inspection (stats,
/// swiotlb, domain).
#[derive(Clone, Debug)]
pub enum Concrete {
    /// The direct backend.
    Direct(Arc<DirectBackend>),
    /// The IOMMU backend.
    Iommu(Arc<IommuDmaBackend>),
}

impl Concrete {
    /// As the trait object drivers use.
    pub fn as_dyn(&self) -> Arc<dyn DmaBackend> {
        match self {
            Self::Direct(b) => b.clone(),
            Self::Iommu(b) => b.clone(),
        }
    }
}

/// What a backend constructor gets.
pub struct BackendEnv<'a> {
    /// The machine context.
    pub ctx: &'a Arc<DmaContext>,
    /// The machine's swiotlb pool.
    pub swiotlb: &'a Arc<Swiotlb>,
    /// `swiotlb=force` for direct backends.
    pub force_bounce: bool,
    /// The device.
    pub bdf: Bdf,
    /// Its IOMMU group and the group's DMA domain, if it has a translating
    /// one.
    pub domain: Option<(GroupId, Arc<DmaDomain>)>,
}

/// One registry entry.
#[derive(Clone, Copy)]
pub struct BackendSpec {
    /// The name (`--backend NAME`, machine assembly options).
    pub name: &'static str,
    /// The group domain it needs.
    pub need: DomainNeed,
    /// One line for `--help` and docs.
    pub summary: &'static str,
    /// The constructor.
    pub build: fn(&BackendEnv<'_>) -> Result<Concrete, AssemblyError>,
}

impl core::fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BackendSpec")
            .field("name", &self.name)
            .field("need", &self.need)
            .finish()
    }
}

/// Backends by name.
#[derive(Clone, Debug)]
pub struct Registry {
    specs: Vec<BackendSpec>,
}

fn build_direct(env: &BackendEnv<'_>) -> Result<Concrete, AssemblyError> {
    let cfg = DirectConfig {
        force_bounce: env.force_bounce,
        ..DirectConfig::default()
    };
    let b = env
        .ctx
        .direct_backend(env.bdf, Some(env.swiotlb.clone()), cfg)?;
    Ok(Concrete::Direct(Arc::new(b)))
}

fn build_iommu(env: &BackendEnv<'_>) -> Result<Concrete, AssemblyError> {
    let Some((group, dom)) = &env.domain else {
        return Err(AssemblyError::NoIommu {
            bdf: env.bdf,
            backend: "iommu".into(),
        });
    };
    let (adev, _) = env.ctx.arch_device(env.bdf)?;
    let topo = env.ctx.topology.read();
    let d = topo
        .lookup(env.bdf)
        .and_then(|id| topo.device(id))
        .ok_or(AssemblyError::UnknownDevice { bdf: env.bdf })?;
    let mut dev = IommuDevice::pci(env.bdf, *group);
    dev.trusted = !d.untrusted;
    dev.coherent = env.ctx.arch.coherent(&adev);
    dev.dma_mask = d.dma_mask;
    drop(topo);
    let mut b = IommuDmaBackend::new(dom.clone(), dev)?;
    // Untrusted devices bounce sub-granule RAM through the machine's pool
    // (drivers/iommu/dma-iommu.c `dev_use_swiotlb`).
    if !dev.trusted {
        b = b.with_swiotlb(env.swiotlb.clone());
    }
    Ok(Concrete::Iommu(Arc::new(b)))
}

impl Registry {
    /// The standard backends: `direct`, `iommu`, `iommu-lazy`.
    pub fn standard() -> Self {
        Self {
            specs: vec![
                BackendSpec {
                    name: "direct",
                    need: DomainNeed::Passthrough,
                    summary: "arch phys_to_dma, swiotlb bouncing (kernel/dma/direct.c)",
                    build: build_direct,
                },
                BackendSpec {
                    name: "iommu",
                    need: DomainNeed::Strict,
                    summary: "IOMMU DMA domain, strict invalidation (drivers/iommu/dma-iommu.c)",
                    build: build_iommu,
                },
                BackendSpec {
                    name: "iommu-lazy",
                    need: DomainNeed::Lazy,
                    summary: "IOMMU DMA domain, flush-queue invalidation (iommu.strict=0)",
                    build: build_iommu,
                },
            ],
        }
    }

    /// Adds (or replaces) a backend.
    pub fn register(&mut self, spec: BackendSpec) {
        self.specs.retain(|s| s.name != spec.name);
        self.specs.push(spec);
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&BackendSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Every name, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.specs.iter().map(|s| s.name).collect()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::standard()
    }
}
