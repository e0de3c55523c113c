//! Helpers shared by the fuzz targets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use workteams_domain::ResourceTypeRegistry;

/// FNV-1a over `bytes`, the 32-bit checksum that ends consistency tokens and
/// sidecar page tokens. The crates keep their copy private, and the targets
/// need it to build tokens that pass the checksum and reach the checks
/// behind it.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// Builds `prefix` followed by `payload` and its FNV-1a checksum in
/// unpadded URL-safe base64, the layout of both checksummed token kinds.
pub fn checksummed_token(prefix: &str, payload: &[u8]) -> String {
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&fnv1a(payload).to_be_bytes());
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Returns the built-in resource types, which the CLI parsers check
/// resources and grants against.
pub fn builtin_registry() -> ResourceTypeRegistry {
    match ResourceTypeRegistry::with_builtins(Vec::new()) {
        Ok(registry) => registry,
        Err(error) => panic!("the built-in resource types are invalid: {error}"),
    }
}
