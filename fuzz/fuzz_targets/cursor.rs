//! Cursors: any string is refused or opened without a panic; a cursor opens only for the list it was made
//! for; and every position signed comes back unchanged.
#![no_main]

use callrecords::cursor::{CursorKeys, MAX_CURSOR_LEN};
use callrecords::TenantId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, String)| {
    let (cursor, position) = input;
    let keys = CursorKeys::new("a fuzzing secret of more than 32 bytes", None).expect("long enough");
    let tenant = TenantId::parse("acme").expect("valid tenant");
    let other = TenantId::parse("globex").expect("valid tenant");

    if let Ok(opened) = keys.open(&tenant, "binding", &cursor) {
        // Only a cursor this key signed opens; it then fails for any other list.
        assert_eq!(keys.sign(&tenant, "binding", &opened), cursor);
        assert!(keys.open(&other, "binding", &cursor).is_err());
    }

    let signed = keys.sign(&tenant, "binding", &position);
    if signed.len() <= MAX_CURSOR_LEN {
        assert_eq!(keys.open(&tenant, "binding", &signed).expect("own cursor"), position);
        assert!(keys.open(&other, "binding", &signed).is_err());
        assert!(keys.open(&tenant, "other binding", &signed).is_err());
    } else {
        assert!(keys.open(&tenant, "binding", &signed).is_err());
    }
});
