//! Showing bytes to a human.
//!
//! Network data is bytes, not text: it may hold `\r`, `\0`, or sequences that are not valid UTF-8.
//! Every transcript, log line and checker message in the workbook prints bytes through
//! [`escape_bytes`], so that what you see is exactly what went over the wire.

/// Escapes `bytes` as a double-quoted string: printable ASCII as itself, `\n` `\r` `\t` `\0` `\\`
/// `\"` as their escapes, and every other byte (including each byte of non-ASCII UTF-8) as `\xNN`.
///
/// ```
/// use socket_workbook::escape::escape_bytes;
/// assert_eq!(escape_bytes(b"SET a 1\r\n"), r#""SET a 1\r\n""#);
/// assert_eq!(escape_bytes(&[0, 0xff]), r#""\0\xff""#);
/// ```
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    push_escaped(&mut out, bytes);
    out.push('"');
    out
}

/// Like [`escape_bytes`], but a value longer than `max` bytes shows only its first `max` bytes,
/// followed by the total length: `"aaaa"... (1048576 bytes)`. Used where a megabyte of payload
/// would drown the story a transcript tells.
pub fn escape_abbreviated(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        return escape_bytes(bytes);
    }
    let mut out = escape_bytes(&bytes[..max]);
    out.push_str(&format!("... ({} bytes)", bytes.len()));
    out
}

/// Like [`escape_bytes`], but a value whose escaped form is longer than `max` characters keeps
/// its start and its end (about two thirds and one third of `max`) and says how many bytes in the
/// middle are left out: `"ERROR what is AAAA" ... 61600 bytes left out ... "AAAA\n"`. The end is
/// kept because it is where a reply most often goes wrong (a missing `\n`). It says nothing about
/// the total length: the caller shows that once, next to it.
///
/// ```
/// use socket_workbook::escape::escape_shortened;
/// assert_eq!(escape_shortened(b"abcdefghij", 6), r#""abcd" ... 4 bytes left out ... "ij""#);
/// assert_eq!(escape_shortened(b"abc\n", 6), r#""abc\n""#);
/// assert_eq!(escape_shortened(&[0xff; 10], 12), r#""\xff\xff" ... 7 bytes left out ... "\xff""#);
/// ```
pub fn escape_shortened(bytes: &[u8], max: usize) -> String {
    let width = |b: &u8| escaped_width(*b);
    if bytes.iter().map(width).sum::<usize>() <= max {
        return escape_bytes(bytes);
    }
    let take = |bytes: &mut dyn Iterator<Item = &u8>, budget: usize| {
        let mut used = 0;
        bytes
            .take_while(|b| {
                used += width(b);
                used <= budget
            })
            .count()
    };
    let tail_budget = max / 3;
    let head = take(&mut bytes.iter(), max - tail_budget);
    let tail = take(&mut bytes[head..].iter().rev(), tail_budget);
    format!(
        "{} ... {} bytes left out ... {}",
        escape_bytes(&bytes[..head]),
        bytes.len() - head - tail,
        escape_bytes(&bytes[bytes.len() - tail..])
    )
}

/// How many characters [`escape_bytes`] writes for `b`.
fn escaped_width(b: u8) -> usize {
    match b {
        b'\n' | b'\r' | b'\t' | 0 | b'\\' | b'"' => 2,
        0x20..=0x7e => 1,
        _ => 4,
    }
}

/// Joins arguments into one line a shell would read back the same way, quoting where needed:
/// `python3 'my server.py' --port {port}`.
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:{}=@%+,".contains(c))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each byte as two hex digits, separated by spaces: how the workbook shows binary headers.
///
/// ```
/// use socket_workbook::escape::hex_bytes;
/// assert_eq!(hex_bytes(&256u32.to_be_bytes()), "00 00 01 00");
/// ```
pub fn hex_bytes(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

fn push_escaped(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0 => out.push_str("\\0"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_is_visible_and_ascii() {
        let all: Vec<u8> = (0..=255).collect();
        let escaped = escape_bytes(&all);
        assert!(escaped.is_ascii());
        assert!(escaped.contains(r"\0\x01"));
        assert!(escaped.contains(r"\t\n\x0b\x0c\r"));
        assert!(escaped.contains(r##" !\"#"##));
        assert!(escaped.contains(r"[\\]"));
        assert!(escaped.ends_with(r#"\xfe\xff""#));
    }

    #[test]
    fn utf8_is_shown_byte_by_byte() {
        assert_eq!(escape_bytes("é".as_bytes()), r#""\xc3\xa9""#);
    }

    #[test]
    fn long_values_are_abbreviated_with_their_length() {
        assert_eq!(escape_abbreviated(b"abcdef", 3), r#""abc"... (6 bytes)"#);
        assert_eq!(escape_abbreviated(b"abc", 3), r#""abc""#);
    }
}
