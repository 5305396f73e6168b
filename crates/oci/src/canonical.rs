//! The bytes of a JSON document, written as Go's `encoding/json` writes the image-spec
//! structs: indexes and manifests (documents with `schemaVersion`) in the structs' field
//! order, maps (annotations) and every other object with sorted keys, no whitespace, and
//! `<`, `>`, `&` escaped. Tools that read a document into those structs and write it again
//! (containers/image in skopeo, containerd) then reproduce it byte for byte, so they can copy
//! it with its digest kept; and the same document always has the same digest.

use serde_json::Value;

/// Field order of `ocispec.Index` and `ocispec.Manifest` (and Docker's schema 2 manifest).
const DOCUMENT: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "manifests",
    "subject",
    "annotations",
];
/// Field order of `ocispec.Descriptor`.
const DESCRIPTOR: &[&str] = &[
    "mediaType",
    "digest",
    "size",
    "urls",
    "annotations",
    "data",
    "platform",
    "artifactType",
];
/// Field order of `ocispec.Platform`.
const PLATFORM: &[&str] = &["architecture", "os", "os.version", "os.features", "variant"];

/// How the keys of an object are ordered.
#[derive(Clone, Copy)]
enum Kind {
    Sorted,
    Document,
    Descriptor,
    Platform,
}

/// `v` as bytes; see the module documentation.
pub fn canonical(v: &Value) -> Vec<u8> {
    let kind = if v.get("schemaVersion").is_some() {
        Kind::Document
    } else {
        Kind::Sorted
    };
    let mut out = String::new();
    write(v, kind, &mut out);
    out.into_bytes()
}

fn write(v: &Value, kind: Kind, out: &mut String) {
    match v {
        Value::Object(map) => {
            let order: &[&str] = match kind {
                Kind::Sorted => &[],
                Kind::Document => DOCUMENT,
                Kind::Descriptor => DESCRIPTOR,
                Kind::Platform => PLATFORM,
            };
            // Known fields in struct order, then the rest by key (serde_json's map is sorted).
            let known = order.iter().filter_map(|k| map.get_key_value(*k));
            let rest = map.iter().filter(|(k, _)| !order.contains(&k.as_str()));
            out.push('{');
            for (i, (key, value)) in known.chain(rest).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(key, out);
                out.push(':');
                write(value, child_kind(kind, key), out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, kind, out);
            }
            out.push(']');
        }
        Value::String(s) => string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

/// The kind of the value under `key` of an object of `kind`; an array's items are of the
/// kind the array was given.
fn child_kind(kind: Kind, key: &str) -> Kind {
    match (kind, key) {
        (Kind::Document, "config" | "layers" | "manifests" | "subject" | "[]") => Kind::Descriptor,
        (Kind::Descriptor, "platform") => Kind::Platform,
        _ => Kind::Sorted,
    }
}

/// A JSON string as Go writes it: HTML-significant characters and the JavaScript line
/// separators escaped.
fn string(s: &str, out: &mut String) {
    let quoted = Value::from(s).to_string();
    for c in quoted.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;
    use serde_json::json;

    #[test]
    fn an_index_is_written_in_the_go_structs_field_order() {
        let index = json!({"manifests": [{"size": 3, "platform": {"os": "linux", "architecture": "amd64"},
            "digest": "sha256:x", "mediaType": "m", "artifactType": "a", "annotations": {"b": "1", "a": "<&>"}}],
            "mediaType": "i", "schemaVersion": 2});
        assert_eq!(
            String::from_utf8(canonical(&index)).unwrap(),
            r#"{"schemaVersion":2,"mediaType":"i","manifests":[{"mediaType":"m","digest":"sha256:x","size":3,"annotations":{"a":"\u003c\u0026\u003e","b":"1"},"platform":{"architecture":"amd64","os":"linux"},"artifactType":"a"}]}"#
        );
    }

    #[test]
    fn a_config_has_sorted_keys() {
        let config = json!({"rootfs": {"type": "layers", "diff_ids": []}, "architecture": "amd64"});
        assert_eq!(
            String::from_utf8(canonical(&config)).unwrap(),
            r#"{"architecture":"amd64","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
    }
}
