//! Event ids are UUID v7: time-ordered (so the edge's index on them stays
//! append-mostly) and random enough to be unique without coordination. The
//! caller brings the clock and the randomness; this only lays out the bits.

/// A UUID v7 (RFC 9562) from a Unix time in milliseconds and 10 random bytes,
/// in canonical lower-case hyphenated form.
pub fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random);
    bytes[6] = 0x70 | (bytes[6] & 0x0f); // version 7
    bytes[8] = 0x80 | (bytes[8] & 0x3f); // RFC 9562 variant
    // Laid out by hand: the uuid crate's formatting costs the SDK's wasm
    // more than these lines.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_version_7_with_the_time_in_front() {
        let id = uuid_v7(0x0190_f3c2_8e4b, [0xff; 10]);
        assert_eq!(&id[..13], "0190f3c2-8e4b");
        assert_eq!(&id[14..15], "7", "version nibble");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "RFC variant: {id}");
        let parsed = uuid::Uuid::try_parse(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(
            id,
            uuid::Builder::from_unix_timestamp_millis(0x0190_f3c2_8e4b, &[0xff; 10])
                .into_uuid()
                .hyphenated()
                .to_string(),
            "the same bits as the uuid crate lays out"
        );
    }

    #[test]
    fn later_times_sort_later() {
        assert!(uuid_v7(1_000, [0xff; 10]) < uuid_v7(1_001, [0; 10]));
    }
}
