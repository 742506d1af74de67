//! Random secrets (session cookies, API keys, invitation tokens) and the digests they are
//! stored under: the store keeps only the digest, so a copy of it opens nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A random secret: 32 bytes from the system's generator, URL-safe base64.
pub fn secret() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    // The system generator does not fail on supported platforms; if it ever did, a
    // zeroed secret would be unique-indexed and the second one refused.
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 digest of a secret, hex.
pub fn digest(secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
