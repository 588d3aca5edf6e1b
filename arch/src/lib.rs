//! Per-architecture DMA backends: CPU→bus translation, coherency, cache
//! maintenance lowered to machine code, and which P2P routes each arch
//! supports. The `conformance` kit (see RFC.md) lets a new arch prove itself.
#![deny(unsafe_code)]
#![warn(missing_docs)]
