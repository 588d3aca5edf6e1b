//! The target port: the NIC, the namespace devices, the p2pmem setting and
//! the provider choice (drivers/nvme/target/core.c
//! `nvmet_p2pmem_ns_add_p2p`).

use super::buffer::Fallback;
use super::error::NvmetError;
use super::setting::P2pMemSetting;
use dma_api::p2p::oracle::distance_many;
use dma_api::{Bdf, DmaContext};
use std::sync::Arc;

/// Where the port's I/O buffers come from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ProviderChoice {
    /// This provider's p2pmem, at this total distance to the clients.
    Provider {
        /// The provider.
        device: Bdf,
        /// `pci_p2pdma_distance_many` over the clients.
        distance: u32,
    },
    /// System memory, and why.
    SystemMemory(Fallback),
}

/// An nvmet port over RDMA.
#[derive(Clone, Debug)]
pub struct NvmetPort {
    ctx: Arc<DmaContext>,
    /// The RDMA NIC (`ctrl->p2p_client`).
    pub nic: Bdf,
    /// The namespaces' devices.
    pub namespaces: Vec<Bdf>,
    /// The p2pmem attribute.
    pub setting: P2pMemSetting,
}

impl NvmetPort {
    /// A port of `nic` exporting namespaces on `namespaces`.
    pub fn new(
        ctx: Arc<DmaContext>,
        nic: Bdf,
        namespaces: Vec<Bdf>,
        setting: P2pMemSetting,
    ) -> Self {
        Self {
            ctx,
            nic,
            namespaces,
            setting,
        }
    }

    /// The context.
    pub fn context(&self) -> &Arc<DmaContext> {
        &self.ctx
    }

    /// The clients every buffer must suit: the NIC, then the namespace
    /// devices.
    pub fn clients(&self) -> Vec<Bdf> {
        let mut c = vec![self.nic];
        c.extend(self.namespaces.iter().copied());
        c
    }

    /// The provider for this port's I/O: "0" → system memory; a device →
    /// that device if `distance_many` accepts every client, else
    /// [`NvmetError::NotReachable`]; "1" → `find_many` over the clients,
    /// system memory when none suits them.
    pub fn choose(&self) -> Result<ProviderChoice, NvmetError> {
        let topo = self.ctx.topology.read();
        let ids = self
            .clients()
            .into_iter()
            .map(|b| {
                topo.lookup(b)
                    .ok_or(NvmetError::UnknownDevice { device: b })
            })
            .collect::<Result<Vec<_>, _>>()?;
        match self.setting {
            P2pMemSetting::Off => Ok(ProviderChoice::SystemMemory(Fallback::Disabled)),
            P2pMemSetting::Device(device) => {
                let id = topo
                    .lookup(device)
                    .ok_or(NvmetError::UnknownDevice { device })?;
                match distance_many(&topo, id, &ids) {
                    Ok(distance) => Ok(ProviderChoice::Provider { device, distance }),
                    Err(e) => Err(NvmetError::NotReachable {
                        provider: device,
                        why: e.to_string(),
                    }),
                }
            }
            P2pMemSetting::Auto => {
                let found = self.ctx.p2pmem.read().find_many(&topo, &ids);
                match found {
                    Ok(Some((id, distance))) => {
                        let device = topo
                            .device(id)
                            .map(|d| d.bdf)
                            .ok_or(NvmetError::UnknownDevice { device: self.nic })?;
                        Ok(ProviderChoice::Provider { device, distance })
                    }
                    Ok(None) | Err(_) => Ok(ProviderChoice::SystemMemory(Fallback::NoProvider {
                        clients: self.clients(),
                    })),
                }
            }
        }
    }
}
