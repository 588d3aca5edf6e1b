//! End-to-end tests live in `tests/tests/`; this library holds their shared
//! helpers.
#![deny(unsafe_code)]
#![warn(missing_docs)]
