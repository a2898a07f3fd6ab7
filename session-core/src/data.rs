//! Session data: a JSON object kept as its text.
//!
//! Most stores keep the data as JSON text, and most requests read one or
//! two values and write one. Parsing the whole object into a map on every
//! load and printing it again on every save was most of what a session
//! cost, so [`Data`] keeps the text itself, shared, and the session finds
//! the values it is asked for in place (see [`Members`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The data of a session: a JSON object with string keys.
///
/// It holds the object's text, shared: cloning is a reference count, and
/// a store that keeps text stores [`as_str`](Self::as_str) as it is. The
/// text always parses as a JSON object, and no key appears twice in it.
///
/// Equality compares the values, not the spelling: `{"a": 1}` equals
/// `{"a":1}`. `Debug` prints the keys, never the values, which may be
/// secrets.
#[derive(Clone)]
pub struct Data {
    text: Arc<str>,
}

impl Data {
    /// An empty object.
    #[must_use]
    pub fn new() -> Self {
        Self::from_trusted("{}")
    }

    /// Checks that `text` is a JSON object and keeps it.
    ///
    /// When a key appears more than once, the last value wins, as it
    /// would for a JSON parser building a map; the text is rewritten
    /// without the earlier ones.
    ///
    /// # Errors
    ///
    /// The JSON error when `text` is not a JSON object.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        // Every value is parsed as a map of values would parse it (a
        // number too large for a float fails here too), but nothing is
        // built: only the keys are kept, to find repeats.
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let keys = deserializer.deserialize_map(TopKeys)?;
        deserializer.end()?;

        if has_repeats(&keys) {
            let map = crate::value::parse_object(text)?;
            return Ok(Self::from(map));
        }
        Ok(Self::from_trusted(text))
    }

    /// The object as JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The object's length in bytes of JSON text.
    #[must_use]
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Whether the object has no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members().is_empty()
    }

    /// How many keys the object has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// The value under `key`, parsed.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Value> {
        let members = self.members();
        let raw = members.find(key)?;
        crate::value::parse_value(raw).ok()
    }

    /// Whether the object has `key`.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.members().find(key).is_some()
    }

    /// The object's keys, in the order of the text.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let members = self.members();
        members
            .iter()
            .map(|member| member.key(&self.text).into_owned())
            .collect()
    }

    /// Sets `key` to `value`, rewriting the text.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let mut view = View::new(self.clone());
        view.set(key.into(), value);
        *self = view.render();
    }

    /// Removes `key`, rewriting the text, and says whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let mut view = View::new(self.clone());
        let had = view.remove(key);
        *self = view.render();
        had
    }

    /// The object parsed into a map.
    #[must_use]
    pub fn to_map(&self) -> Map<String, Value> {
        // Every Data parses as an object (see `parse`).
        crate::value::parse_object(&self.text).unwrap_or_default()
    }

    /// Deserializes the whole object into `T`.
    ///
    /// # Errors
    ///
    /// The serde error when the object is not a `T`.
    pub fn deserialize<T: de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.text)
    }

    /// Text known to be a JSON object without repeated keys.
    pub(crate) fn from_trusted(text: &str) -> Self {
        Self {
            text: Arc::from(text),
        }
    }

    fn from_text(text: String) -> Self {
        Self {
            text: Arc::from(text),
        }
    }

    /// Where each key and value sits in the text.
    pub(crate) fn members(&self) -> Members {
        Members::of(self)
    }

    fn same_text(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.text, &other.text) || self.text == other.text
    }
}

impl Default for Data {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.same_text(other) || self.to_map() == other.to_map()
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("keys", &self.keys())
            .field("bytes", &self.text.len())
            .finish()
    }
}

impl From<Map<String, Value>> for Data {
    fn from(map: Map<String, Value>) -> Self {
        // A map of JSON values always serializes, and a map has no
        // repeated keys.
        let text = serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned());
        Self::from_text(text)
    }
}

/// Builds data from key-value pairs; a repeated key keeps its last value.
impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(pairs: I) -> Self {
        Self::from(pairs.into_iter().collect::<Map<String, Value>>())
    }
}

impl TryFrom<Value> for Data {
    type Error = Value;

    /// An object becomes its data; anything else is handed back.
    fn try_from(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(map) => Ok(Self::from(map)),
            other => Err(other),
        }
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Through a map, so that any serializer, not only JSON, gets
        // the values rather than a blob of text.
        self.to_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(crate::value::PlainObject)
            .map(Self::from)
    }
}

/// Where a key is found: in the text when it has no escapes, otherwise
/// unescaped on its own.
#[derive(Debug, Clone)]
enum KeyText {
    /// The key's characters, between its quotes, as a range of the text.
    Plain(Range<usize>),
    /// A key with escapes, unescaped.
    Escaped(Box<str>),
}

/// One key and value of the object, as places in its text.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    key: KeyText,
    value: Range<usize>,
}

impl Member {
    fn key<'a>(&'a self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.key {
            KeyText::Plain(range) => text.get(range.clone()).unwrap_or_default().into(),
            KeyText::Escaped(key) => key.as_ref().into(),
        }
    }

    fn is(&self, text: &str, key: &str) -> bool {
        match &self.key {
            KeyText::Plain(range) => text.get(range.clone()) == Some(key),
            KeyText::Escaped(own) => &**own == key,
        }
    }
}

/// The members of one [`Data`], found by one pass over its text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Members {
    text: Arc<str>,
    list: Vec<Member>,
}

impl Members {
    /// The members of `data`, sharing its text.
    pub(crate) fn of(data: &Data) -> Self {
        // Every Data scans (see `Data::parse`); no members is the safe
        // answer if that were ever broken.
        let list = scan_members(&data.text).unwrap_or_default();
        Self {
            text: Arc::clone(&data.text),
            list,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &Member> {
        self.list.iter()
    }

    /// The raw JSON text of the value under `key`.
    pub(crate) fn find(&self, key: &str) -> Option<&str> {
        let member = self.list.iter().rev().find(|m| m.is(&self.text, key))?;
        self.text.get(member.value.clone())
    }
}

fn scan_members(text: &str) -> Option<Vec<Member>> {
    crate::scan::object_members(text, |span| {
        let key = if span.escaped {
            // The key with its quotes, as JSON: the parser unescapes.
            let quoted = text.get(span.key.start - 1..span.key.end + 1)?;
            KeyText::Escaped(serde_json::from_str::<String>(quoted).ok()?.into())
        } else {
            KeyText::Plain(span.key)
        };
        Some(Member {
            key,
            value: span.value,
        })
    })
}

fn has_repeats(keys: &[Cow<'_, str>]) -> bool {
    // Sessions hold a handful of keys: comparing pairs beats hashing.
    if keys.len() <= 16 {
        return keys
            .iter()
            .enumerate()
            .any(|(n, key)| keys[n + 1..].contains(key));
    }
    let mut seen = HashSet::with_capacity(keys.len());
    !keys.iter().all(|key| seen.insert(key))
}

/// The top-level object: its keys, with every value checked.
struct TopKeys;

impl<'de> Visitor<'de> for TopKeys {
    type Value = Vec<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key_seed(OwnedOrBorrowed)? {
            map.next_value_seed(Checked)?;
            keys.push(key);
        }
        Ok(keys)
    }
}

/// A key, borrowed from the text unless it had escapes.
struct OwnedOrBorrowed;

impl<'de> DeserializeSeed<'de> for OwnedOrBorrowed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for OwnedOrBorrowed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

/// Any JSON value, parsed as `Value` would parse it and then dropped.
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Keys are parsed too: an escape a map would refuse fails here.
        while map.next_key_seed(OwnedOrBorrowed)?.is_some() {
            map.next_value_seed(Checked)?;
        }
        Ok(())
    }
}

/// A value as the session sees it: from the stored text or from a change.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot<'a> {
    /// Stored, as its JSON text.
    Raw(&'a str),
    /// Set by this request.
    Value(&'a Value),
}

impl Slot<'_> {
    /// The value, parsed when it is stored text.
    pub(crate) fn to_value(self) -> Option<Value> {
        match self {
            Self::Raw(raw) => crate::value::parse_value(raw).ok(),
            Self::Value(value) => Some(value.clone()),
        }
    }

    /// Whether the slot holds exactly `value`.
    pub(crate) fn is(self, value: &Value) -> bool {
        match self {
            Self::Raw(raw) => crate::value::parse_value(raw).is_ok_and(|own| own == *value),
            Self::Value(own) => own == value,
        }
    }

    /// Deserializes the value into `T`.
    pub(crate) fn deserialize<T: de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Self::Raw(raw) => serde_json::from_str(raw),
            Self::Value(value) => T::deserialize(value),
        }
    }
}

/// Data as one request changes it: the stored text, read in place, and
/// the keys the request set or removed on top of it.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    base: Data,
    /// The base's members, found on first use.
    members: Option<Members>,
    /// The base counts for nothing (`clear` or `set` of a whole object).
    cleared: bool,
    /// Keys set (`Some`) or removed (`None`) by this request, each once.
    overlay: Vec<(String, Option<Value>)>,
}

impl View {
    pub(crate) fn new(base: Data) -> Self {
        Self {
            base,
            members: None,
            cleared: false,
            overlay: Vec::new(),
        }
    }

    fn members(&mut self) -> &Members {
        let base = &self.base;
        self.members.get_or_insert_with(|| Members::of(base))
    }

    /// The value under `key`.
    pub(crate) fn get(&mut self, key: &str) -> Option<Slot<'_>> {
        if let Some(at) = self.overlay.iter().position(|(own, _)| own == key) {
            return self.overlay[at].1.as_ref().map(Slot::Value);
        }
        if self.cleared {
            return None;
        }
        self.members();
        let members = self.members.as_ref()?;
        members.find(key).map(Slot::Raw)
    }

    pub(crate) fn set(&mut self, key: String, value: Value) {
        self.put(key, Some(value));
    }

    /// Removes `key`; says whether it had a value.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        let had = self.get(key).is_some();
        if had {
            self.put(key.to_owned(), None);
        }
        had
    }

    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.overlay.clear();
    }

    pub(crate) fn replace(&mut self, map: &Map<String, Value>) {
        self.clear();
        self.overlay.extend(
            map.iter()
                .map(|(key, value)| (key.clone(), Some(value.clone()))),
        );
    }

    fn put(&mut self, key: String, value: Option<Value>) {
        match self.overlay.iter_mut().find(|(own, _)| *own == key) {
            Some(slot) => slot.1 = value,
            None => self.overlay.push((key, value)),
        }
    }

    /// Whether the view holds no value at all.
    pub(crate) fn is_empty(&mut self) -> bool {
        if self.overlay.iter().any(|(_, value)| value.is_some()) {
            return false;
        }
        if self.cleared {
            return true;
        }
        // What is left are removals: empty when they removed every key.
        self.members();
        let (Some(members), overlay) = (&self.members, &self.overlay) else {
            return true;
        };
        members
            .iter()
            .all(|member| overlay.iter().any(|(own, _)| member.is(&members.text, own)))
    }

    /// Whether the view differs from its base in what it says.
    pub(crate) fn is_changed(&self) -> bool {
        self.cleared || !self.overlay.is_empty()
    }

    /// The data as the request left it.
    pub(crate) fn render(&mut self) -> Data {
        if !self.is_changed() {
            return self.base.clone();
        }

        let overlay_len: usize = self.overlay.iter().map(|(key, _)| key.len() + 16).sum();
        // Bytes, checked as UTF-8 once at the end: every piece is text
        // already, and serde_json writes UTF-8.
        let mut out = Vec::with_capacity(self.base.text_len() + overlay_len);
        out.push(b'{');
        if !self.cleared {
            self.members();
            if let Some(members) = &self.members {
                for member in members.iter() {
                    let key = member.key(&members.text);
                    if self.overlay.iter().any(|(own, _)| *own == *key) {
                        continue;
                    }
                    separate(&mut out);
                    push_key(&mut out, &members.text, member);
                    out.push(b':');
                    let value = members.text.get(member.value.clone()).unwrap_or("null");
                    out.extend_from_slice(value.as_bytes());
                }
            }
        }
        for (key, value) in &self.overlay {
            let Some(value) = value else {
                continue;
            };
            separate(&mut out);
            // Writing into a Vec cannot fail, nor can serializing a Value.
            let _ = serde_json::to_writer(&mut out, key);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, value);
        }
        out.push(b'}');
        let text = String::from_utf8(out)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        Data::from_text(text)
    }
}

fn separate(out: &mut Vec<u8>) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
}

fn push_key(out: &mut Vec<u8>, text: &str, member: &Member) {
    match &member.key {
        KeyText::Plain(range) => {
            out.push(b'"');
            out.extend_from_slice(text.get(range.clone()).unwrap_or_default().as_bytes());
            out.push(b'"');
        }
        KeyText::Escaped(key) => {
            let _ = serde_json::to_writer(out, &**key);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data(value: Value) -> Data {
        Data::try_from(value).expect("an object")
    }

    #[test]
    fn pairs_collect_into_data_and_the_last_of_a_key_wins() {
        let data: Data = [("a".to_owned(), json!(1)), ("a".to_owned(), json!(2))]
            .into_iter()
            .collect();
        assert_eq!(data.get("a"), Some(json!(2)));
        assert_eq!(data.len(), 1);
    }

    #[test]
    fn parse_keeps_the_text_and_refuses_what_is_not_an_object() {
        let text = r#"{ "a": 1, "b" : [1, {"c": null}] }"#;

        let parsed = Data::parse(text).expect("an object");

        assert_eq!(parsed.as_str(), text);
        assert_eq!(parsed, data(json!({"a": 1, "b": [1, {"c": null}]})));
        for bad in [
            "[]",
            "1",
            "\"x\"",
            "{",
            "{\"a\":}",
            "",
            "{} {}",
            "{\"a\":1e400}",
        ] {
            assert!(Data::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_accepts_exactly_what_a_map_of_values_accepts() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let cases = [
            r#"{"a":{"b":1e400}}"#,
            r#"{"a":[1,2,-1.5e300,18446744073709551616]}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":{"\ud800":1}}"#,
            r#"{"\ud800":1}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":tru}"#,
            r#"{"a":{"b":[{},[],null,true,"\n"]}}"#,
            "{\"a\":\"\u{7}\"}",
            &deep,
        ];
        for text in cases {
            let map = serde_json::from_str::<Map<String, Value>>(text);
            let parsed = Data::parse(text);
            assert_eq!(
                parsed.is_ok(),
                map.is_ok(),
                "{text:?}: {parsed:?} vs {map:?}"
            );
            if let (Ok(parsed), Ok(map)) = (parsed, map) {
                assert_eq!(parsed.to_map(), map, "{text:?}");
            }
        }
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let parsed = Data::parse(r#"{"a":1,"b":2,"a":3}"#).expect("an object");

        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed.get("a"), Some(json!(3)));
        assert_eq!(parsed.to_map().len(), 2);
    }

    #[test]
    fn escaped_keys_are_found_and_written_back() {
        let mut parsed = Data::parse(r#"{"a\"b":1,"\u00e9":2,"plain":3}"#).expect("an object");

        assert_eq!(parsed.get("a\"b"), Some(json!(1)));
        assert_eq!(parsed.get("é"), Some(json!(2)));
        parsed.insert("plain", json!(4));

        assert_eq!(parsed, data(json!({"a\"b": 1, "é": 2, "plain": 4})));
    }

    #[test]
    fn a_view_reads_in_place_and_renders_its_changes() {
        let base = data(json!({"n": 1, "profile": {"user": "u"}, "gone": true}));
        let mut view = View::new(base.clone());

        assert!(matches!(view.get("n"), Some(Slot::Raw("1"))));
        view.set("n".into(), json!(2));
        assert!(view.remove("gone"));
        assert!(!view.remove("never"));
        view.set("new".into(), json!("x"));
        let rendered = view.render();

        assert_eq!(
            rendered,
            data(json!({"n": 2, "profile": {"user": "u"}, "new": "x"}))
        );
        assert_eq!(base.get("n"), Some(json!(1)));
    }

    #[test]
    fn an_unchanged_view_renders_its_base_without_copying() {
        let base = data(json!({"n": 1}));
        let mut view = View::new(base.clone());
        let _ = view.get("n");

        let rendered = view.render();

        assert!(Arc::ptr_eq(&rendered.text, &base.text));
    }

    #[test]
    fn clear_and_replace_drop_the_base() {
        let base = data(json!({"a": 1, "b": 2}));
        let mut view = View::new(base);

        view.clear();
        assert!(view.get("a").is_none());
        assert!(view.is_empty());
        let mut map = Map::new();
        map.insert("c".into(), json!(3));
        view.replace(&map);

        assert_eq!(view.render(), data(json!({"c": 3})));
    }

    #[test]
    fn removing_every_key_leaves_an_empty_view() {
        let mut view = View::new(data(json!({"a": 1})));

        view.remove("a");

        assert!(view.is_empty());
        assert_eq!(view.render().as_str(), "{}");
    }

    #[test]
    fn equality_is_by_value_and_serde_round_trips() {
        let spaced = Data::parse(r#"{ "b": 2, "a": 1 }"#).expect("an object");
        let compact = data(json!({"a": 1, "b": 2}));

        assert_eq!(spaced, compact);
        assert_ne!(compact, data(json!({"a": 1})));
        let text = serde_json::to_string(&spaced).expect("text");
        assert_eq!(Data::parse(&text).expect("an object"), compact);
        let back: Data = serde_json::from_str(r#"{"x":[1]}"#).expect("data");
        assert_eq!(back, data(json!({"x": [1]})));
    }

    #[test]
    fn debug_shows_keys_but_never_values() {
        let secret = data(json!({"token": "hunter2"}));

        let shown = format!("{secret:?}");

        assert!(shown.contains("token"));
        assert!(!shown.contains("hunter2"));
    }
}
