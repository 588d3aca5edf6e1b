//! The arch bring-up kit: tests a new architecture runs unchanged.
//!
//! ```ignore
//! // arch/tests/conformance.rs (or your crate's tests/)
//! dma_arch::conformance_tests!(my_arch, || Box::new(MyArch::new()));
//! // An ISA the kit has no decoder for brings its own:
//! dma_arch::conformance_tests!(my_arch, || Box::new(MyArch::new()), decoder = my_decode);
//! ```
//!
//! The macro expands to one `#[test]` per check in [`checks`]: translation
//! round-trips, window edges ±1, wrap at the top of the address space, mask
//! limits, the memory-encryption bit, P2P verdicts per the declared
//! support, coherency, sound sync rules, exact cache lines for unaligned
//! ranges, zero length → no code, MMIO refused, the lowered code decoded
//! back and compared with the program, foreign programs refused, huge ranges
//! refused, a sane table row and bad dma-ranges rejected.
//!
//! Built-in decoders ([`decode`]) cover exactly the instructions the five
//! backends emit: iced-x86 for x86_64, and small field decoders for A64,
//! RV64 and POWER that emulate the address register.

pub mod checks;
pub mod decode;

pub use decode::{builtin_decoder, Decoder};
pub use dma_api::ArchDma;

/// Expands to the conformance `#[test]`s for one backend.
///
/// `$ctor` is any expression callable with no arguments returning a
/// `Box<T>` where `T: ArchDma` (usually a closure). With `decoder = f`, `f`
/// (a [`Decoder`]) decodes the lowered code instead of the kit's built-in
/// decoder for the arch's name.
#[macro_export]
macro_rules! conformance_tests {
    ($name:ident, $ctor:expr) => {
        $crate::conformance_tests!(@impl $name, $ctor, ::core::option::Option::None);
    };
    ($name:ident, $ctor:expr, decoder = $dec:expr) => {
        $crate::conformance_tests!(
            @impl $name,
            $ctor,
            ::core::option::Option::Some($dec as $crate::conformance::Decoder)
        );
    };
    (@impl $name:ident, $ctor:expr, $dec:expr) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::conformance::checks as kit;

            fn arch() -> ::std::boxed::Box<dyn $crate::conformance::ArchDma> {
                let ctor = $ctor;
                let b: ::std::boxed::Box<dyn $crate::conformance::ArchDma> = ctor();
                b
            }

            fn decoder() -> ::core::option::Option<$crate::conformance::Decoder> {
                $dec
            }

            #[test]
            fn translation_round_trip() {
                kit::translation_round_trip(&*arch());
            }
            #[test]
            fn window_edges() {
                kit::window_edges(&*arch());
            }
            #[test]
            fn top_of_address_space() {
                kit::top_of_address_space(&*arch());
            }
            #[test]
            fn mask_limits() {
                kit::mask_limits(&*arch());
            }
            #[test]
            fn memory_encryption() {
                kit::memory_encryption(&*arch());
            }
            #[test]
            fn p2p_verdicts() {
                kit::p2p_verdicts(&*arch());
            }
            #[test]
            fn coherency() {
                kit::coherency(&*arch());
            }
            #[test]
            fn sync_rules_are_sound() {
                kit::sync_rules_are_sound(&*arch());
            }
            #[test]
            fn cache_lines_exact() {
                kit::cache_lines_exact(&*arch());
            }
            #[test]
            fn zero_length_no_code() {
                kit::zero_length_no_code(&*arch());
            }
            #[test]
            fn mmio_never_maintained() {
                kit::mmio_never_maintained(&*arch());
            }
            #[test]
            fn lowered_code_decodes_back() {
                kit::lowered_code_decodes_back(&*arch(), decoder());
            }
            #[test]
            fn foreign_program_refused() {
                kit::foreign_program_refused(&*arch());
            }
            #[test]
            fn huge_range_refused() {
                kit::huge_range_refused(&*arch());
            }
            #[test]
            fn table_sane() {
                kit::table_sane(&*arch());
            }
            #[test]
            fn bad_dma_ranges_rejected() {
                kit::bad_dma_ranges_rejected(&*arch());
            }
        }
    };
}
