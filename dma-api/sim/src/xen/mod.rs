//! A simulated hypervisor with Xen grant-table semantics: several domains
//! on one machine, each with its own guest-physical space translated to host
//! physical by a second-stage table (the IOMMU crate's ARM LPAE stage-2
//! format on the shared page-table engine), a grant table per domain, and
//! grant mappings that install second-stage entries in the mapper
//! (xen/common/grant_table.c semantics: `GNTST_bad_gntref`,
//! `GNTST_permission_denied`, deferred end of a busy grant). Drivers reach
//! it only through [`dma_api::xdomain::GrantOps`].

mod domain;
mod grant_table;
mod hypervisor;

pub use hypervisor::Hypervisor;
