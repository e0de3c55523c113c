//! Decodes arbitrary text as a directory page token, and arbitrary bytes as
//! the payload of a correctly signed one (the fuzzer cannot forge the
//! HMAC, so the second mode is the only way to reach the JSON decoding
//! behind it). The first input byte picks the mode.

#![no_main]

use libfuzzer_sys::fuzz_target;
use workteams_storage::fuzzing::{decode_page_token, encode_page_token, sign_page_token_payload};

const SECRET: &[u8] = b"fuzzing secret, 32 bytes long...";
const KIND: &str = "teams";
const FILTER: &str = "organization=0190f0c2-7b1e-7c3a-9d4e-5f6a7b8c9d0e";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        sign_page_token_payload(SECRET, rest).expect("any key length is valid for HMAC")
    };

    let Ok(Some(last_key)) = decode_page_token(SECRET, &token, KIND, FILTER) else {
        return;
    };

    let encoded = encode_page_token(SECRET, KIND, FILTER, last_key.clone())
        .expect("any key length is valid for HMAC");
    let decoded = decode_page_token(SECRET, &encoded, KIND, FILTER)
        .expect("a token the codec built decodes");
    assert_eq!(decoded, Some(last_key));
});
