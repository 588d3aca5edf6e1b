//! Every built-in backend runs the bring-up kit unchanged.

use dma_arch::{Arm64, Powerpc64, Riscv64, S390x, X86_64};

dma_arch::conformance_tests!(x86_64, || Box::new(X86_64::new()));
dma_arch::conformance_tests!(arm64, || Box::new(Arm64::new()));
dma_arch::conformance_tests!(powerpc64, || Box::new(Powerpc64::new()));
dma_arch::conformance_tests!(riscv64, || Box::new(Riscv64::new()));
dma_arch::conformance_tests!(s390x, || Box::new(S390x::new()));
// The explicit-decoder form, with the same decoder the kit would pick.
dma_arch::conformance_tests!(
    arm64_explicit_decoder,
    || Box::new(Arm64::new()),
    decoder = dma_arch::conformance::decode::decode_a64
);
