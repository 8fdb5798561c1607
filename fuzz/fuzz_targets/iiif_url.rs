//! IIIF paths: parsing never panics, and image parameters printed back parse to the same;
//! the input read as a query string (the `channels` composite extension) never panics.
#![no_main]

use iipsrv_core::protocol::composite;
use iipsrv_core::protocol::iiif::{self, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let _ = composite::from_query(path, true);
    let Ok(request) = iiif::parse(path) else {
        return;
    };
    if let Target::Image(params) = &request.target {
        let printed = params.to_path();
        let again = iiif::parse(&format!("id/{printed}")).expect("a printed path parses");
        assert_eq!(again.target, request.target, "{printed}");
    }
});
