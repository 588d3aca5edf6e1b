//! Zero-copy buffers between domains (the xen-zcopy / hyper_dmabuf
//! designs, and Linux drivers/xen/gntdev-dmabuf.c): the exporting domain
//! grants every page of a buffer to the importing domain, stores the
//! references in chained directory pages (drivers/xen/xen-front-pgdir-shbuf.c)
//! and announces one reference — the first directory page's — on the
//! channel; the importing domain walks the directory, maps the granted
//! pages into its own physical space and DMA-maps them for its device.
//! Revocation completes only after the importer unmapped.

mod exporter;
mod importer;

pub use exporter::ZcopyExport;
pub use importer::ZcopyImport;
