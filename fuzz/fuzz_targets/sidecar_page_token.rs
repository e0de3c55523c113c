//! Decodes arbitrary text as a sidecar `ListEffectiveAccess` page token, and
//! arbitrary bytes as the payload of a token with a valid checksum, with or
//! without the expected query fingerprint in front. The checksummed modes
//! reach the length, revision and query checks behind the checksum. The
//! first input byte picks the mode. A token that decodes must encode back to
//! an equal token.

#![no_main]

use libfuzzer_sys::fuzz_target;
use workteams_authz::page_token::{PageToken, query_fingerprint};
use workteams_fuzz::checksummed_token;

const FIELD: &str = "page_token";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fingerprint = query_fingerprint(["user", "0190f0c2-7b1e-7c3a-9d4e-5f6a7b8c9d0e"]);
    let text = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => checksummed_token("wtp1.", rest),
        // Starting the payload with the expected fingerprint gets past the
        // query check, which random bytes almost never do.
        _ => {
            let mut payload = fingerprint.to_be_bytes().to_vec();
            payload.extend_from_slice(rest);
            checksummed_token("wtp1.", &payload)
        }
    };

    let token = match PageToken::decode(FIELD, &text, fingerprint) {
        Ok(token) => token,
        Err(error) => {
            assert_eq!(error.field, FIELD);
            return;
        }
    };

    assert!(token.revision.0 >= 0, "a decoded revision is never negative");
    let again = PageToken::decode(FIELD, &token.encode(), fingerprint).expect("an encoded token decodes");
    assert_eq!(again, token);
});
