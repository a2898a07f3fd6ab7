//! JSON values parsed as plain JSON.
//!
//! serde_json's own `Value` reads an object whose key is its private
//! raw-value marker as embedded JSON text when the `raw_value` feature is
//! on, which axum turns on for every crate in the build. Session data is
//! whatever a user typed (a form field may be named anything), so values
//! are parsed here by a visitor that gives no key a meaning.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Number, Value};

/// Parses `text` as one JSON value.
pub(crate) fn parse_value(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = deserializer.deserialize_any(Plain)?;
    deserializer.end()?;
    Ok(value)
}

/// Parses `text` as one JSON object; a repeated key keeps its last value.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let map = deserializer.deserialize_map(PlainObject)?;
    deserializer.end()?;
    Ok(map)
}

/// Any JSON value.
#[derive(Clone, Copy)]
struct Plain;

impl<'de> DeserializeSeed<'de> for Plain {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Plain {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity; this is what serde_json does
        // with one from elsewhere.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(Plain)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        PlainObject.visit_map(map).map(Value::Object)
    }
}

/// A JSON object of values.
#[derive(Clone, Copy)]
pub(crate) struct PlainObject;

impl<'de> Visitor<'de> for PlainObject {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Plain)?;
            object.insert(key, value);
        }
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The marker serde_json gives a meaning to with `raw_value` on.
    const MARKER: &str = "$serde_json::private::RawValue";

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        for text in [
            "null",
            "true",
            "-1",
            "18446744073709551615",
            "1.5e300",
            r#""a\u00e9\n""#,
            r#"[1,[2,{"a":[]}],{}]"#,
            r#"{"a":1,"a":2}"#,
        ] {
            let expected: Value = serde_json::from_str(text).expect("json");
            assert_eq!(parse_value(text).expect("parses"), expected, "{text}");
        }
        for bad in ["", "[1,]", "{\"a\"}", "1e400", "\"\\ud800\"", "1 2"] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_key_has_a_meaning() {
        let text = format!(r#"{{"outer":{{"{MARKER}":"[1,2]"}}}}"#);

        let object = parse_object(&text).expect("an object");

        assert_eq!(object["outer"], json!({ MARKER: "[1,2]" }));
    }
}
