//! Configuration text: any input is either a configuration or a list of errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) =
            hcp_s3_gateway::config::Config::parse(text, std::path::Path::new("/nonexistent"))
        {
            assert!(!errors.is_empty());
        }
    }
});
