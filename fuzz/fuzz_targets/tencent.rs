//! The Tencent `/v4` layer: request bodies and TLSSigAPIv2 usersigs.
//!
//! Input: a first line with the call (`all_member_push/im_push`), a second line with a usersig
//! (possibly empty), then the request body. Checked, besides "no panic, no hang": every refusal
//! has a Tencent code; a usersig that verifies decodes to the identifier and app it was checked
//! against, and one signed by the layer for the decoded fields verifies.
#![no_main]

use std::collections::BTreeMap;

use herald_server::compat::tencent::auth::{self, UserSig};
use herald_server::compat::tencent::check_request;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "s3cret";
const SDKAPPID: u64 = 1_400_000_000;
const ADMIN: &str = "admin";
const NOW: i64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let (Some(path), Some(usersig)) = (lines.next(), lines.next()) else { return };
    let body = lines.next().unwrap_or_default();
    let (Ok(path), Ok(usersig)) = (std::str::from_utf8(path), std::str::from_utf8(usersig)) else {
        return;
    };

    let names: BTreeMap<u8, String> =
        [(0, "sex"), (1, "tier"), (3, "city")].map(|(slot, name)| (slot, name.to_owned())).into();
    if let Err(err) = check_request(path, body, &names, ADMIN) {
        let _ = (err.code(), err.to_string());
    }

    match auth::verify(usersig, ADMIN, SDKAPPID, [SECRET], NOW) {
        Ok(()) => {
            let sig = UserSig::decode(usersig).expect("a verified usersig decodes");
            assert_eq!((sig.identifier.as_str(), sig.sdkappid), (ADMIN, SDKAPPID));
            assert!(sig.expires_at() >= NOW);
        }
        Err(err) => {
            let _ = (err.code(), err.to_string());
        }
    }
    // Real identifiers are short; a long one may not fit a signed usersig's size cap.
    if let Some(sig) = UserSig::decode(usersig).ok().filter(|sig| sig.identifier.len() < 8_192) {
        let signed = auth::sign(SECRET, sig.sdkappid, &sig.identifier, sig.time, sig.expire);
        let again = UserSig::decode(&signed).expect("a signed usersig decodes");
        assert_eq!((&again.identifier, again.sdkappid), (&sig.identifier, sig.sdkappid));
        assert_eq!((again.time, again.expire), (sig.time, sig.expire));
        assert!(again.signed_with_any([SECRET]));
        assert!(!again.signed_with_any(["another secret"]));
    }
});
