//! Secrets handed out once (device tokens, API tokens, passwords): random, printed once,
//! stored only as SHA-256.

use sha2::{Digest, Sha256};

/// A new random token: 32 bytes from the OS, as 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

/// What is stored of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
