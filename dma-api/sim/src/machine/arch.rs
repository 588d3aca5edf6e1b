//! The machine-level architecture name (validated here, interpreted by the
//! arch backends).

use core::fmt;

/// Architectures a machine file may name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ArchName {
    /// `x86_64`.
    X86_64,
    /// `arm64`.
    Arm64,
    /// `powerpc64`.
    Powerpc64,
    /// `riscv64`.
    Riscv64,
    /// `s390x`.
    S390x,
}

impl ArchName {
    /// All names, in documentation order.
    pub const ALL: [ArchName; 5] = [
        ArchName::X86_64,
        ArchName::Arm64,
        ArchName::Powerpc64,
        ArchName::Riscv64,
        ArchName::S390x,
    ];

    /// The machine-file spelling.
    pub const fn name(self) -> &'static str {
        match self {
            ArchName::X86_64 => "x86_64",
            ArchName::Arm64 => "arm64",
            ArchName::Powerpc64 => "powerpc64",
            ArchName::Riscv64 => "riscv64",
            ArchName::S390x => "s390x",
        }
    }

    /// Parses [`ArchName::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for ArchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
