//! Generated protobuf messages, clients and servers for Work Teams.

pub mod directory {
    pub mod v1 {
        tonic::include_proto!("workteams.directory.v1");
    }
}

pub mod authz {
    pub mod v1 {
        tonic::include_proto!("workteams.authz.v1");
    }
}

/// Serialized file descriptors of every Work Teams contract, for gRPC
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("workteams_descriptor");
