//! Finding the members of a JSON object's text without parsing it.
//!
//! [`Data`](crate::Data) text has been checked when it was made, so
//! finding where each key and value sits only needs its structure: quotes,
//! escapes and brackets. A request that reads one value of a session pays
//! for this walk over the bytes, not for a parser's.

use std::ops::Range;

/// Where one member of the object sits in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    /// The key's characters, between its quotes.
    pub(crate) key: Range<usize>,
    /// Whether the key holds an escape, and so is not its own text.
    pub(crate) escaped: bool,
    /// The value's text.
    pub(crate) value: Range<usize>,
}

/// The members of the object `text`, in order, each as `each` makes it
/// of its span; `None` when `text` is not shaped as an object (which
/// checked text never is) or `each` refuses a member.
pub(crate) fn object_members<T>(
    text: &str,
    mut each: impl FnMut(Span) -> Option<T>,
) -> Option<Vec<T>> {
    let bytes = text.as_bytes();
    let mut at = skip_space(bytes, 0);
    if *bytes.get(at)? != b'{' {
        return None;
    }
    at = skip_space(bytes, at + 1);

    let mut members = Vec::new();
    if *bytes.get(at)? == b'}' {
        return Some(members);
    }
    loop {
        if *bytes.get(at)? != b'"' {
            return None;
        }
        let (end, escaped) = string_end(bytes, at)?;
        let key = at + 1..end - 1;

        at = skip_space(bytes, end);
        if *bytes.get(at)? != b':' {
            return None;
        }
        let start = skip_space(bytes, at + 1);
        let end = value_end(bytes, start)?;
        members.push(each(Span {
            key,
            escaped,
            value: start..end,
        })?);

        at = skip_space(bytes, end);
        match *bytes.get(at)? {
            b',' => at = skip_space(bytes, at + 1),
            b'}' => return Some(members),
            _ => return None,
        }
    }
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The index past the closing quote of the string opening at `at`, and
/// whether it held an escape.
fn string_end(bytes: &[u8], at: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    let mut next = at + 1;
    loop {
        let offset = bytes
            .get(next..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        next += offset;
        if bytes[next] == b'"' {
            return Some((next + 1, escaped));
        }
        // A backslash: the byte after it is escaped, a quote included.
        escaped = true;
        next += 2;
    }
}

/// The bytes that open or close a string or a container.
static STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'[' as usize] = true;
    table[b'}' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// The index past the end of the value starting at `at`.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at).map(|(end, _)| end),
        b'{' | b'[' => {
            let mut depth = 0_usize;
            let mut next = at;
            loop {
                // Most bytes are none of the five that matter: skip them
                // in a tight loop.
                next += bytes
                    .get(next..)?
                    .iter()
                    .position(|&b| STRUCTURAL[usize::from(b)])?;
                match bytes[next] {
                    b'"' => {
                        next = string_end(bytes, next)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(next + 1);
                        }
                    }
                    _ => {}
                }
                next += 1;
            }
        }
        _ => {
            // A number, `true`, `false` or `null`: up to what ends it.
            let len = bytes[at..]
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(bytes.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(&str, bool, &str)> {
        object_members(text, Some)
            .expect("an object")
            .into_iter()
            .map(|span| (&text[span.key], span.escaped, &text[span.value]))
            .collect()
    }

    #[test]
    fn members_are_found_whatever_the_spacing_and_nesting() {
        let text =
            " { \"a\" : 1 ,\"b\":[1,{\"c\":\"]}\"}],\n\"d\":{\"e\":[]},\"f\":-2.5e3,\"g\":null}";

        assert_eq!(
            pairs(text),
            [
                ("a", false, "1"),
                ("b", false, "[1,{\"c\":\"]}\"}]"),
                ("d", false, "{\"e\":[]}"),
                ("f", false, "-2.5e3"),
                ("g", false, "null"),
            ]
        );
        assert!(pairs("{}").is_empty());
        assert!(pairs(" {\n} ").is_empty());
    }

    #[test]
    fn escapes_are_flagged_and_an_escaped_quote_ends_nothing() {
        let text = r#"{"a\"b":"x\\","c":"\"}","\u00e9":true}"#;

        assert_eq!(
            pairs(text),
            [
                (r#"a\"b"#, true, r#""x\\""#),
                ("c", false, r#""\"}""#),
                (r"\u00e9", true, "true"),
            ]
        );
    }

    #[test]
    fn what_is_not_an_object_is_none_never_a_panic() {
        for bad in [
            "",
            "[]",
            "1",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\":[1}",
            "{\"a\" 1}",
            "{\"a\":1,",
            "{1:2}",
            "{\"a\":\"\\",
            "{\"a\":\"x",
        ] {
            assert_eq!(object_members(bad, Some), None, "{bad:?}");
        }
    }
}
