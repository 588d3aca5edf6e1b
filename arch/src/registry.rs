//! Backends by name, for machine files (`arch = "arm64"`) and the CLI.

use crate::{Arm64, Powerpc64, Riscv64, S390x, X86_64};
use dma_api::ArchDma;
use std::fmt;

/// The arch names [`by_name`] accepts, in table order.
pub const NAMES: [&str; 5] = ["x86_64", "arm64", "powerpc64", "riscv64", "s390x"];

static BACKENDS: [&dyn ArchDma; 5] = [
    &X86_64::new(),
    &Arm64::new(),
    &Powerpc64::new(),
    &Riscv64::new(),
    &S390x::new(),
];

/// An arch name no backend answers to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnknownArch {
    /// The name asked for.
    pub name: String,
}

impl fmt::Display for UnknownArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown architecture {:?} (known: {})",
            self.name,
            NAMES.join(", ")
        )
    }
}

impl core::error::Error for UnknownArch {}

/// The backend called `name` (exact, case-sensitive, as in [`NAMES`]).
pub fn by_name(name: &str) -> Result<&'static dyn ArchDma, UnknownArch> {
    BACKENDS
        .iter()
        .copied()
        .find(|b| b.name() == name)
        .ok_or_else(|| UnknownArch {
            name: name.to_owned(),
        })
}

/// Every backend, in table order.
pub fn all() -> impl Iterator<Item = &'static dyn ArchDma> {
    BACKENDS.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_backends_and_table() {
        for (i, n) in NAMES.iter().enumerate() {
            let b = by_name(n).unwrap();
            assert_eq!(b.name(), *n);
            assert_eq!(crate::table::ARCH_TABLE[i].name, *n);
        }
        assert_eq!(all().count(), NAMES.len());
    }

    #[test]
    fn unknown_names_are_typed_errors() {
        for bad in ["vax", "", "X86_64", "arm64 "] {
            let e = by_name(bad).err().unwrap();
            assert_eq!(e.name, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
