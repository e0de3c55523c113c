//! Decodes arbitrary text as a consistency token, and arbitrary bytes as the
//! payload of a token with a valid checksum, which reaches the length and
//! revision checks behind the checksum. The first input byte picks the mode. A token that decodes must encode back to an equal token.

#![no_main]

use libfuzzer_sys::fuzz_target;
use workteams_domain::ConsistencyToken;
use workteams_fuzz::checksummed_token;

const FIELD: &str = "consistency_token";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        checksummed_token("wt1.", rest)
    };

    let token = match ConsistencyToken::decode(FIELD, &text) {
        Ok(token) => token,
        Err(error) => {
            assert_eq!(error.field, FIELD);
            return;
        }
    };

    assert!(token.revision.0 >= 0, "a decoded revision is never negative");
    let again = ConsistencyToken::decode(FIELD, &token.encode()).expect("an encoded token decodes");
    assert_eq!(again, token);
});
