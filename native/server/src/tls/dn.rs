//! RFC 4514 string form of a certificate's subject name.

use std::fmt::Write as _;

use x509_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Attribute types with a short name in RFC 4514 section 3, plus the two
/// LDAP ones it lists (DC, UID); other types print as a dotted OID.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The RFC 4514 form of the subject of the DER certificate `cert`, or `None`
/// if it does not parse.
pub(super) fn subject_of(cert: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(rfc4514(parsed.subject()))
}

/// Formats `name` per RFC 4514 section 2.1: RDNs last to first, joined by
/// `,`; the attributes of a multi-valued RDN joined by `+` in encoded order.
pub(super) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_attribute(&mut out, attr);
        }
    }
    out
}

/// Writes `type=value` (RFC 4514 section 2.3).
fn write_attribute(out: &mut String, attr: &AttributeTypeAndValue<'_>) {
    let oid = attr.attr_type().to_id_string();
    let short = SHORT_NAMES.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n);
    let text = short.and_then(|_| string_value(attr.attr_value()));
    match (short, text) {
        (Some(short), Some(text)) => {
            out.push_str(short);
            out.push('=');
            escape_into(out, &text);
        }
        // Section 2.4: a dotted type, or a value that is not a string, is
        // written as '#' and the hex of the value's BER (here DER) encoding.
        _ => {
            out.push_str(short.unwrap_or(&oid));
            out.push_str("=#");
            let der = attr.attr_value().to_der_vec().unwrap_or_default();
            for byte in der {
                // Writing to a String cannot fail.
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
}

/// The text of a directory string, or `None` for a non-string value.
fn string_value(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_owned),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// Appends `value` escaped per RFC 4514 section 2.4.
fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn escapes_specials_anywhere() {
        assert_eq!(escaped(r#"a,b+c"d\e<f>g;h"#), r#"a\,b\+c\"d\\e\<f\>g\;h"#);
    }

    #[test]
    fn escapes_leading_space_and_hash_and_trailing_space() {
        assert_eq!(escaped(" #a# "), "\\ #a#\\ ");
        assert_eq!(escaped("#x"), "\\#x");
        assert_eq!(escaped(" "), "\\ ");
        assert_eq!(escaped("a\0b"), "a\\00b");
        assert_eq!(escaped("plain text"), "plain text");
        assert_eq!(escaped(""), "");
    }
}
