//! UUID parsing and formatting, as libvirt accepts and prints them.
//!
//! Parsing is liberal: the canonical 36-character form, 32 bare hex digits (as
//! Xen reports them), and any number of `-` or ` ` separators *between* byte
//! pairs (never inside one), with surrounding blanks ignored. Output is always
//! canonical: lower-case, 8-4-4-4-12 with dashes. Formatting, byte handling
//! and version-4 generation (from the operating system's randomness through
//! `getrandom`) come from the `uuid` crate.

use crate::error::{CoreError, CoreResult};
use uuid::Uuid;

/// Length of a UUID in bytes.
pub const UUID_LEN: usize = 16;
/// Length of the canonical string form.
pub const UUID_STRING_LEN: usize = 36;

#[inline]
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn describe(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

/// Parse any spelling libvirt accepted into the 16 raw bytes.
pub fn parse(text: &str) -> CoreResult<[u8; UUID_LEN]> {
    let bytes = text.as_bytes();
    // Fast path: the canonical form, which is what nearly every caller passes.
    if bytes.len() == UUID_STRING_LEN {
        if let Ok(u) = Uuid::try_parse_ascii(bytes) {
            return Ok(*u.as_bytes());
        }
    }
    parse_liberal(bytes)
}

fn parse_liberal(bytes: &[u8]) -> CoreResult<[u8; UUID_LEN]> {
    let is_blank = |c: u8| c == b' ' || c == b'\t' || c == b'\n' || c == b'\r';
    let mut pos = 0;
    while pos < bytes.len() && is_blank(bytes[pos]) {
        pos += 1;
    }
    let start = pos;
    let mut out = [0u8; UUID_LEN];
    for (index, slot) in out.iter_mut().enumerate() {
        // Separators are allowed between byte pairs, not before the first one.
        if index > 0 {
            while pos < bytes.len() && (bytes[pos] == b'-' || bytes[pos] == b' ') {
                pos += 1;
            }
        }
        let hi = match bytes.get(pos) {
            None => {
                return Err(CoreError::InvalidUuid {
                    reason: format!(
                        "too short: found {index} of 16 bytes ({} hex digits of 32)",
                        index * 2
                    ),
                })
            }
            Some(&c) => hex_value(c).ok_or_else(|| CoreError::InvalidUuid {
                reason: format!(
                    "expected a hex digit at offset {pos}, found {}",
                    describe(c)
                ),
            })?,
        };
        let lo = match bytes.get(pos + 1) {
            None => {
                return Err(CoreError::InvalidUuid {
                    reason: format!(
                        "too short: input ends inside byte {} (odd number of hex digits)",
                        index + 1
                    ),
                })
            }
            Some(&c) => hex_value(c).ok_or_else(|| CoreError::InvalidUuid {
                reason: format!(
                    "expected the second hex digit of a byte at offset {}, found {}",
                    pos + 1,
                    describe(c)
                ),
            })?,
        };
        *slot = (hi << 4) | lo;
        pos += 2;
    }
    let digits_end = pos;
    while pos < bytes.len() && is_blank(bytes[pos]) {
        pos += 1;
    }
    if pos != bytes.len() {
        return Err(CoreError::InvalidUuid {
            reason: format!(
                "unexpected {} at offset {digits_end} after 32 hex digits",
                describe(bytes[digits_end])
            ),
        });
    }
    debug_assert!(digits_end > start);
    Ok(out)
}

/// Canonical form of 16 raw bytes: lower-case, dashed, 36 characters.
pub fn format(raw: &[u8; UUID_LEN]) -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    Uuid::from_bytes(*raw)
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// Interpret a byte slice as a raw UUID; it must be exactly 16 bytes.
pub fn from_slice(raw: &[u8]) -> CoreResult<[u8; UUID_LEN]> {
    <[u8; UUID_LEN]>::try_from(raw).map_err(|_| CoreError::InvalidUuid {
        reason: format!("raw form must be exactly 16 bytes, got {}", raw.len()),
    })
}

/// A random (version 4, variant RFC 4122) UUID from the operating system's randomness.
pub fn generate_v4() -> [u8; UUID_LEN] {
    *Uuid::new_v4().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: [u8; 16] = [
        0x4d, 0xea, 0x22, 0xb3, 0x1d, 0x52, 0xd8, 0xf3, 0x25, 0x16, 0x78, 0x2e, 0x98, 0xab,
        0x3f, 0xa0,
    ];

    #[test]
    fn every_spelling_parses_to_the_same_bytes() {
        for text in [
            "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
            "4DEA22B3-1D52-D8F3-2516-782E98AB3FA0",
            "4dea22b31d52d8f32516782e98ab3fa0",
            "4d-ea-22-b3-1d-52-d8-f3-25-16-78-2e-98-ab-3f-a0",
            "4d ea 22 b3 1d 52 d8 f3 25 16 78 2e 98 ab 3f a0",
            "  4dea22b3-1d52-d8f3-2516-782e98ab3fa0\n",
            "4dea22b3--1d52 d8f3-2516782e98ab3fa0",
        ] {
            assert_eq!(parse(text).unwrap(), RAW, "{text:?}");
        }
    }

    #[test]
    fn format_is_canonical() {
        assert_eq!(format(&RAW), "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
    }

    #[test]
    fn near_misses_are_refused_with_a_reason() {
        let cases = [
            ("", "too short"),
            ("4dea22b3-1d52-d8f3-2516-782e98ab3fa", "odd number"),
            ("4dea22b3-1d52-d8f3-2516-782e98ab3f", "too short"),
            ("4dea22b3-1d52-d8f3-2516-782e98ab3fa0a", "after 32 hex digits"),
            ("4dea22b3-1d52-d8f3-2516-782e98ab3fg0", "hex digit at offset 34"),
            ("4dea22b3-1d52-d8f3-2516-782e98ab3f0g", "second hex digit of a byte at offset 35"),
            ("4d-e-a22b3-1d52-d8f3-2516-782e98ab3fa0", "second hex digit"),
            ("-4dea22b31d52d8f32516782e98ab3fa0", "expected a hex digit at offset 0"),
            ("{4dea22b3-1d52-d8f3-2516-782e98ab3fa0}", "offset 0"),
            ("4dea22b3_1d52_d8f3_2516_782e98ab3fa0", "offset 8"),
        ];
        for (text, needle) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn raw_form_round_trips() {
        assert_eq!(from_slice(&RAW).unwrap(), RAW);
        assert!(from_slice(&RAW[..15]).is_err());
    }

    #[test]
    fn generated_uuids_are_version_4_and_distinct() {
        let a = generate_v4();
        let b = generate_v4();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] & 0xc0, 0x80);
    }
}
