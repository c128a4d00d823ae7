//! Identifiers: container, network, volume and exec IDs and random hex,
//! from the kernel's generator. One module that the container, network
//! and volume code all import (none of them imports another for an ID).

use std::io::Read;

/// `N` random bytes from /dev/urandom; if it cannot be read, a hash of
/// the time and the process ID (never all zeros twice).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        use sha2::Digest;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut seed = format!("{t}-{}", std::process::id()).into_bytes();
        for chunk in b.chunks_mut(32) {
            let h = sha2::Sha256::digest(&seed);
            chunk.copy_from_slice(&h[..chunk.len()]);
            seed = h.to_vec();
        }
    }
    b
}

/// Random lowercase hex of `bytes` bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    let mut left = bytes;
    while left > 0 {
        let b: [u8; 32] = random_bytes();
        let n = left.min(32);
        out.push_str(&berth_actors::image::hex(&b[..n]));
        left -= n;
    }
    out
}

/// A 64-hex-digit object ID (containers, networks, anonymous volumes,
/// exec instances). dockerd avoids short IDs that look like numbers.
pub fn new_id() -> String {
    loop {
        let id = random_hex(32);
        if !id[..12].chars().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

/// Whether `s` has the shape of an object ID (64 lowercase hex digits).
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_distinct_and_not_numeric() {
        let a = super::new_id();
        let b = super::new_id();
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert!(!a[..12].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(super::random_hex(40).len(), 80);
    }
}
