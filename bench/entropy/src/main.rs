//! Prints, in microseconds, how long the first and the second random draw of aws-lc-rs take in this
//! process: the first seeds aws-lc's random generator (with CPU jitter entropy unless aws-lc-sys was
//! built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`), as the first TLS handshake of a cold function does.

use std::time::Instant;

use aws_lc_rs::agreement::{EphemeralPrivateKey, X25519};
use aws_lc_rs::rand::{fill, SystemRandom};

fn main() {
    let mut bytes = [0u8; 32];
    let start = Instant::now();
    fill(&mut bytes).expect("random bytes");
    let first = start.elapsed();
    let start = Instant::now();
    fill(&mut bytes).expect("random bytes");
    let second = start.elapsed();
    let start = Instant::now();
    EphemeralPrivateKey::generate(&X25519, &SystemRandom::new()).expect("a key share");
    let key = start.elapsed();
    println!("{} {} {}", first.as_micros(), second.as_micros(), key.as_micros());
}
