//! A session value holding an object whose key is serde_json's
//! private raw-value token.
//!
//! axum turns on serde_json's `raw_value` feature, so in every app that
//! uses the middleware `Value` (and `Map<String, Value>`) parses an object
//! whose only key is `$serde_json::private::RawValue` by parsing the
//! member's string as JSON. Session data is whatever users typed, so
//! `Data` parses values with its own visitor that gives no key a meaning;
//! these tests (which failed before it did) keep it that way.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use session_core::{Commit, Data, Session, SessionConfig, Store};
use store_memory::MemoryStore;

const TOKEN: &str = "$serde_json::private::RawValue";

#[test]
fn the_token_is_an_ordinary_key_to_data() {
    // Plain JSON, whatever serde_json's `Value` makes of it with
    // `raw_value` on: Data keeps and reads it as written.
    for (text, inner) in [
        (
            format!(r#"{{"a":{{"{TOKEN}":"not json"}}}}"#),
            json!("not json"),
        ),
        (format!(r#"{{"a":{{"{TOKEN}":"[1,2]"}}}}"#), json!("[1,2]")),
        (format!(r#"{{"a":{{"{TOKEN}":1}}}}"#), json!(1)),
    ] {
        let data = Data::parse(&text).expect("valid JSON");
        let mut expected = Map::new();
        expected.insert(TOKEN.to_owned(), inner);

        assert_eq!(
            data.get("a"),
            Some(Value::Object(expected.clone())),
            "{text}"
        );
        assert_eq!(data.to_map()["a"], Value::Object(expected), "{text}");
    }
}

#[tokio::test]
async fn a_stored_object_with_the_token_as_a_key_reads_back() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = Arc::new(SessionConfig::default());
    // E.g. an app that keeps a map of user-named fields.
    let mut fields = Map::new();
    fields.insert(TOKEN.to_owned(), json!("what the user typed"));
    let value = Value::Object(fields);

    let first = Session::new(store.clone(), config.clone(), vec![]);
    first.insert("fields", value.clone()).await.expect("insert");
    first.insert("other", 1).await.expect("insert");
    let Commit::Set { id, .. } = first.commit().await.expect("commit") else {
        panic!("a new session sets its cookie");
    };

    let next = Session::new(store.clone(), config, vec![id]);
    assert_eq!(next.get::<u64>("other").await.expect("get"), Some(1));
    let got = next.get_value("fields").await;
    assert_eq!(
        got.ok().flatten(),
        Some(value),
        "the stored value reads back"
    );
}

#[test]
fn data_holding_the_token_is_not_taken_for_empty_data() {
    // `to_map` falls back to an empty map when the text does not parse as
    // a map, so such data silently compares equal to `{}` and maps to `{}`.
    let text = format!(r#"{{"a":{{"{TOKEN}":"not json"}}}}"#);
    let Ok(data) = Data::parse(&text) else {
        return; // Refusing the text would be consistent too.
    };
    assert_eq!(data.len(), 1);
    assert!(!data.to_map().is_empty(), "to_map() of {text} is empty");
    assert_ne!(data, Data::new(), "{text} equals {{}}");
}
