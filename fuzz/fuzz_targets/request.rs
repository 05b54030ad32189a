//! Fuzzes request -> hook parsing: method, path, query, Authorization,
//! Content-Type and body, as the HTTP boundary hands them over.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    banlight::request::fuzz_one(data);
});
