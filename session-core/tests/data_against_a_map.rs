//! `Data` against `serde_json::Map<String, Value>` as the oracle.
//!
//! `Data::parse(x)` must succeed exactly when the map parse does, every
//! key's `get` must equal the map's value, and `insert` / `remove` must
//! produce text that parses to the expected map.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use session_core::Data;

/// Checks `Data` against the map oracle for one text, and returns the
/// parsed data when both accept it.
fn check(text: &str) -> Option<Data> {
    let oracle = serde_json::from_str::<Map<String, Value>>(text);
    let parsed = Data::parse(text);
    assert_eq!(
        parsed.is_ok(),
        oracle.is_ok(),
        "parse disagrees on {text:?}: data {parsed:?} vs map {oracle:?}"
    );
    let (Ok(data), Ok(map)) = (parsed, oracle) else {
        return None;
    };
    // The kept text must itself parse to the same map.
    let again: Map<String, Value> =
        serde_json::from_str(data.as_str()).expect("Data text parses as a map");
    assert_eq!(again, map, "kept text of {text:?}");
    assert_eq!(data.to_map(), map, "to_map of {text:?}");
    assert_eq!(data.len(), map.len(), "len of {text:?}");
    assert_eq!(data.is_empty(), map.is_empty(), "is_empty of {text:?}");
    let mut keys = data.keys();
    keys.sort();
    let mut want: Vec<String> = map.keys().cloned().collect();
    want.sort();
    assert_eq!(keys, want, "keys of {text:?}");
    for (key, value) in &map {
        assert_eq!(
            data.get(key).as_ref(),
            Some(value),
            "get({key:?}) of {text:?}"
        );
        assert!(data.contains_key(key), "contains_key({key:?}) of {text:?}");
    }
    // Keys that are prefixes / extensions of real keys, and odd ones.
    for key in map.keys() {
        for probe in [
            format!("{key}x"),
            format!("x{key}"),
            key.chars().skip(1).collect::<String>(),
            key.chars()
                .take(key.chars().count().saturating_sub(1))
                .collect(),
            format!("\"{key}\""),
            key.replace('"', "\\\""),
            key.replace('\\', "\\\\"),
        ] {
            assert_eq!(
                data.get(&probe).as_ref(),
                map.get(&probe),
                "get({probe:?}) of {text:?}"
            );
            assert_eq!(data.contains_key(&probe), map.contains_key(&probe));
        }
    }
    Some(data)
}

/// Inserting and removing give the map's answer, whatever the base text.
fn check_edits(data: &Data, key: &str, value: &Value) {
    let map = data.to_map();

    let mut inserted = data.clone();
    inserted.insert(key, value.clone());
    let mut want = map.clone();
    want.insert(key.to_owned(), value.clone());
    let got: Map<String, Value> =
        serde_json::from_str(inserted.as_str()).expect("inserted text parses");
    assert_eq!(got, want, "insert({key:?}) into {:?}", data.as_str());
    assert_eq!(inserted.get(key).as_ref(), Some(value));
    assert_eq!(inserted.len(), want.len());
    // Parsing the rendered text again agrees too.
    let reparsed = Data::parse(inserted.as_str()).expect("rendered text parses");
    assert_eq!(reparsed.to_map(), want);

    let mut removed = data.clone();
    let had = removed.remove(key);
    let mut want = map.clone();
    assert_eq!(had, want.remove(key).is_some(), "remove({key:?}) said");
    let got: Map<String, Value> =
        serde_json::from_str(removed.as_str()).expect("removed text parses");
    assert_eq!(got, want, "remove({key:?}) from {:?}", data.as_str());
    assert_eq!(removed.get(key), None);
}

const HOSTILE: &[&str] = &[
    // Escaped quotes and backslashes in keys and values.
    r#"{"a\"":1,"a":2}"#,
    r#"{"a\\":1,"a":2,"a\\\\":3}"#,
    r#"{"\\":"\\","\"":"\"","\\\"":"\"\\"}"#,
    r#"{"x":"\\\"}","y":"}"}"#,
    r#"{"a":"\\","b":"\\\\\"","c":"]\"["}"#,
    r#"{"k\"ey":{"k\"ey":"v\"al"},"key":1}"#,
    // Unicode escapes of ordinary characters equal their plain spelling.
    r#"{"\u0061":1}"#,
    r#"{"\u0061":1,"a":2}"#,
    r#"{"a":1,"\u0061":2}"#,
    r#"{"\u0061b":1,"a\u0062":2}"#,
    r#"{"\u00e9":1,"é":2}"#,
    r#"{"\u0000":1,"":2}"#,
    r#"{"\u0022":1,"\"":2}"#,
    r#"{"\/":1,"/":2}"#,
    r#"{"\b\f\n\r\t":"\b\f\n\r\t"}"#,
    r#"{"\uD83D\uDE00":"\ud83d\ude00","😀":3}"#,
    r#"{"\ud83d\ude00x":1}"#,
    // Surrogates, paired and not, in keys and values.
    r#"{"a":"\udc00"}"#,
    r#"{"\udc00":1}"#,
    r#"{"a":"\ud800\u0041"}"#,
    r#"{"a":"\ud800\ud800"}"#,
    r#"{"a":"\ud800\\"}"#,
    r#"{"a":"\uDBFF\uDFFF"}"#,
    r#"{"a":"\u"}"#,
    r#"{"a":"\u12"}"#,
    r#"{"a":"\u12G4"}"#,
    // Empty keys and keys that prefix each other.
    r#"{"":0}"#,
    r#"{"":0,"a":1,"ab":2,"abc":3,"b":4}"#,
    r#"{"abc":3,"ab":2,"a":1,"":0}"#,
    r#"{"":{"":{"":[]}}}"#,
    // Whitespace everywhere (and JSON's non-whitespace).
    " \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n1 \t\r\n, \t\r\n\"b\" \t\r\n: \t\r\n[ 1 , 2 ] \t\r\n} \t\r\n",
    "{\"a\":1\u{c}}",
    "\u{c}{}",
    "{\"a\":\u{b}1}",
    "{\"a\":1}\u{a0}",
    "\u{feff}{}",
    "{\"a\":1 }x",
    "{\"a\":1}}",
    "{\"a\":1,}",
    "{,\"a\":1}",
    "{\"a\"::1}",
    "{\"a\":1 \"b\":2}",
    "{'a':1}",
    "{a:1}",
    // Huge and odd numbers.
    r#"{"a":1e308,"b":-1e308,"c":1e-400,"d":-0,"e":0.0,"f":-0.0}"#,
    r#"{"a":1e309}"#,
    r#"{"a":-1e309}"#,
    r#"{"a":123456789012345678901234567890}"#,
    r#"{"a":-9223372036854775809}"#,
    r#"{"a":18446744073709551615,"b":-9223372036854775808}"#,
    r#"{"a":0.1e1,"b":1E2,"c":1e+2,"d":1.5E-2}"#,
    r#"{"a":01}"#,
    r#"{"a":1.}"#,
    r#"{"a":.1}"#,
    r#"{"a":+1}"#,
    r#"{"a":-}"#,
    r#"{"a":1e}"#,
    r#"{"a":NaN}"#,
    r#"{"a":Infinity}"#,
    r#"{"a":2.2250738585072011e-308}"#,
    r#"{"a":4.9406564584124654e-324,"b":1.7976931348623157e308}"#,
    // Literals.
    r#"{"a":true,"b":false,"c":null}"#,
    r#"{"a":nul}"#,
    r#"{"a":truex}"#,
    r#"{"a":True}"#,
    // Duplicate keys, top level and nested.
    r#"{"a":1,"a":2}"#,
    r#"{"a":1,"b":2,"a":{"a":1,"a":2}}"#,
    r#"{"a":[1],"a":"x","a":null}"#,
    r#"{"a":{"b":1,"b":2}}"#,
    // Not objects.
    "",
    " ",
    "null",
    "[]",
    "[{}]",
    "\"{}\"",
    "{}{}",
    "{} {}",
    "{\"a\":1}\n",
];

#[test]
fn hostile_texts_agree_with_a_map() {
    for text in HOSTILE {
        if let Some(data) = check(text) {
            for key in ["", "a", "\"", "\\", "a\"", "\u{0}", "😀", "new"] {
                check_edits(&data, key, &json!("v\"\\\u{0}😀\u{7f}"));
                check_edits(&data, key, &json!({"\"": ["\\", {"": null}]}));
            }
        }
    }
}

#[test]
fn nesting_at_and_around_the_recursion_limit_agrees_with_a_map() {
    for depth in [1, 2, 64, 125, 126, 127, 128, 129, 130, 200, 1000] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let text = format!("{{\"a\":{}1{}}}", open.repeat(depth), close.repeat(depth));
            check(&text);
            let text = format!(
                "{{\"a\":{}\"]}}\\\"\"{},\"b\":2}}",
                open.repeat(depth),
                close.repeat(depth)
            );
            check(&text);
        }
    }
}

#[test]
fn big_objects_with_repeated_keys_agree_with_a_map() {
    // More than 16 keys takes the hashing path of the repeat check.
    let mut text = String::from("{");
    for n in 0..40 {
        text.push_str(&format!("\"k{}\":{n},", n % 20));
    }
    text.push_str("\"\\u006b0\":\"last\"}");
    let data = check(&text).expect("an object");
    assert_eq!(data.get("k0"), Some(json!("last")));
}

#[test]
fn huge_strings_and_keys_agree_with_a_map() {
    let long = "\\\"".repeat(100_000);
    let text = format!("{{\"{long}\":\"{long}\",\"b\":1}}");
    check(&text);
}

/// A character set that stresses escaping.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just('"'),
        Just('\\'),
        Just('/'),
        Just('a'),
        Just('b'),
        Just(' '),
        Just('{'),
        Just('}'),
        Just('['),
        Just(']'),
        Just(':'),
        Just(','),
        Just('\u{0}'),
        Just('\u{1f}'),
        Just('\u{7f}'),
        Just('é'),
        Just('\u{2028}'),
        Just('😀'),
        Just('\u{ffff}'),
        Just('\u{10ffff}'),
    ]
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_char(), 0..6).prop_map(|c| c.into_iter().collect())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((hostile_string(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// One way of spelling a JSON string: some characters as `\uXXXX`
/// (surrogate pairs for astral ones), others as short escapes or raw.
fn spell_string(s: &str, style: &[u8], at: &mut usize, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let pick = style[*at % style.len()];
        *at += 1;
        let must = c == '"' || c == '\\' || (c as u32) < 0x20;
        if pick % 3 == 0 || (must && pick % 3 == 1) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                if pick % 2 == 0 {
                    out.push_str(&format!("\\u{unit:04x}"));
                } else {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        } else if must || (c == '/' && pick % 5 == 0) {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' => out.push_str("\\/"),
                '\n' => out.push_str("\\n"),
                '\u{8}' => out.push_str("\\b"),
                _ => out.push_str(&format!("\\u{:04x}", c as u32)),
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

fn space(style: &[u8], at: &mut usize, out: &mut String) {
    let pick = style[*at % style.len()];
    *at += 1;
    match pick % 7 {
        0 => out.push(' '),
        1 => out.push_str("\n\t"),
        2 => out.push_str(" \r\n "),
        _ => {}
    }
}

fn spell(value: &Value, style: &[u8], at: &mut usize, out: &mut String) {
    match value {
        Value::String(s) => spell_string(s, style, at, out),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    space(style, at, out);
                    out.push(',');
                }
                space(style, at, out);
                spell(item, style, at, out);
                space(style, at, out);
            }
            out.push(']');
        }
        Value::Object(map) => spell_object(map.iter(), style, at, out),
        other => out.push_str(&other.to_string()),
    }
}

fn spell_object<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a Value)>,
    style: &[u8],
    at: &mut usize,
    out: &mut String,
) {
    out.push('{');
    for (n, (key, value)) in pairs.enumerate() {
        if n > 0 {
            out.push(',');
        }
        space(style, at, out);
        spell_string(key, style, at, out);
        space(style, at, out);
        out.push(':');
        space(style, at, out);
        spell(value, style, at, out);
        space(style, at, out);
    }
    out.push('}');
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn spelled_objects_agree_with_a_map(
        pairs in prop::collection::vec((hostile_string(), value()), 0..8),
        repeat in prop::collection::vec(0usize..8, 0..3),
        style in prop::collection::vec(any::<u8>(), 1..16),
        edit_key in hostile_string(),
        edit_value in value(),
    ) {
        let mut pairs = pairs;
        // Repeat some keys (with new values), so the last one must win.
        for n in repeat {
            if let Some((key, _)) = pairs.get(n).cloned() {
                pairs.push((key, json!(n)));
            }
        }
        let mut text = String::new();
        let mut at = 0;
        space(&style, &mut at, &mut text);
        spell_object(pairs.iter().map(|(k, v)| (k, v)), &style, &mut at, &mut text);
        space(&style, &mut at, &mut text);

        let data = check(&text).expect("a spelled object parses");
        let want: Map<String, Value> = pairs.iter().cloned().collect();
        prop_assert_eq!(data.to_map(), want);
        check_edits(&data, &edit_key, &edit_value);
        if let Some((key, _)) = pairs.first() {
            check_edits(&data, key, &edit_value);
        }
    }

    #[test]
    fn mangled_texts_agree_with_a_map(
        pairs in prop::collection::vec((hostile_string(), value()), 0..5),
        style in prop::collection::vec(any::<u8>(), 1..16),
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec!["", "\"", "\\", "}", "{", "]", ",", ":", " ", "1", "\\u", "\u{c}"]),
    ) {
        let mut text = String::new();
        let mut at = 0;
        spell_object(pairs.iter().map(|(k, v)| (k, v)), &style, &mut at, &mut text);
        let boundaries: Vec<usize> = (0..=text.len()).filter(|&n| text.is_char_boundary(n)).collect();
        let n = boundaries[cut.index(boundaries.len())];
        let mangled = format!("{}{}{}", &text[..n], insert, &text[n..]);
        check(&mangled);
        let truncated = &text[..n];
        check(truncated);
    }
}
