//! Drivers written against the `dma-api` traits only: block/NVMe/nvmet, RDMA,
//! dma-buf exporters and importers, HMM. They prove the API is usable by the
//! code it is meant for.
#![deny(unsafe_code)]
#![warn(missing_docs)]
