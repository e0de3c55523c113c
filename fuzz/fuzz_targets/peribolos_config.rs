//! Feeds arbitrary text to the Peribolos configuration parser as a
//! single-file configuration (a top-level `orgs:` map). It may reject the
//! text with diagnostics, but must not panic, loop or exhaust memory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use workteams_cli::peribolos::parse_peribolos;
use workteams_fuzz::builtin_registry;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = builtin_registry();

    if let Err(diagnostics) = parse_peribolos("config.yaml", text, &registry) {
        assert!(
            diagnostics.has_errors(),
            "a rejected configuration reports at least one error"
        );
    }
});
