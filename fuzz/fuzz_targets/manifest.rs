//! Feeds arbitrary text to the manifest parser. It may reject the text with
//! diagnostics, but must not panic, loop or exhaust memory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use workteams_cli::manifest::parse_manifest;
use workteams_fuzz::builtin_registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = builtin_registry();

    if let Err(diagnostics) = parse_manifest("manifest.yaml", text, &registry) {
        assert!(
            diagnostics.has_errors(),
            "a rejected manifest reports at least one error"
        );
    }
});
