//! Generated protobuf and gRPC code for every Meisa package, in modules that mirror the proto
//! packages: `meisa_proto::meisa::contacts::v1`, and short aliases below.

#![allow(clippy::all, clippy::pedantic)]

/// `meisa::<package>::v1`, one module per proto package, from the code build.rs generated.
macro_rules! packages {
    ($($package:ident),+) => {
        pub mod meisa {
            $(
                pub mod $package {
                    pub mod v1 {
                        include!(concat!(
                            env!("OUT_DIR"),
                            "/meisa.",
                            stringify!($package),
                            ".v1.rs"
                        ));
                    }
                }
            )+
        }
    };
}

packages!(common, events, contacts, mailer, automations);

pub use meisa::automations::v1 as automations;
pub use meisa::common::v1 as common;
pub use meisa::contacts::v1 as contacts;
pub use meisa::events::v1 as events;
pub use meisa::mailer::v1 as mailer;

/// The encoded `FileDescriptorSet` of every Meisa proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/meisa_descriptor.bin"));

mod convert;
pub use convert::{
    FieldTypeError, datetime, field_type, field_type_of, json_to_value, timestamp, value_to_json,
};
