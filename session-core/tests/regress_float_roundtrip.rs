//! Found by the `record_decode` fuzz target: without exact float parsing,
//! a large number in session data read back one unit in the last place
//! off after a store wrote it out and read it in again, so a value drifted
//! on every save. Stores keep data as JSON text; it must round-trip.

use session_core::Data;

#[test]
fn a_large_float_survives_a_store_round_trip() {
    let stored = r#"{"n":-444444644444444444444422220}"#;

    let data = Data::parse(stored).expect("an object");
    let record_text = serde_json::to_string(&data).expect("serializes");
    let again = Data::parse(&record_text).expect("an object");

    assert_eq!(again, data, "{stored} became {record_text}");
}

#[test]
fn floats_near_the_edges_of_the_range_round_trip() {
    for text in [
        "1.7976931348623157e308",
        "5e-324",
        "2.2250738585072014e-308",
        "0.1",
    ] {
        let stored = format!(r#"{{"n":{text}}}"#);

        let data = Data::parse(&stored).expect("an object");
        let again = Data::parse(&serde_json::to_string(&data).expect("serializes"));

        assert_eq!(again.expect("an object"), data, "{text}");
    }
}

#[test]
fn stored_text_is_kept_exactly() {
    let stored = r#"{"n":-444444644444444444444422220,"f":0.1}"#;

    let data = Data::parse(stored).expect("an object");

    assert_eq!(data.as_str(), stored);
}
