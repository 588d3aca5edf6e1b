//! Names of buffers, attachments and mappings: opaque numbers that errors
//! and reports can print.

use core::fmt;

macro_rules! id {
    ($(#[$m:meta])* $name:ident, $pfx:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(pub(crate) u64);

        impl $name {
            /// The number.
            pub const fn raw(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($pfx, "#{}"), self.0)
            }
        }
    };
}

id!(
    /// One exported buffer.
    BufferId,
    "buffer"
);
id!(
    /// One importer's attachment to a buffer.
    AttachId,
    "attachment"
);
id!(
    /// One live mapping of an attachment.
    MapId,
    "mapping"
);
