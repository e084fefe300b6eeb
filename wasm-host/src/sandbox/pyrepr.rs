//! Guest JSON values printed as Python would print them, so a report
//! shows the offending message the way the app's author wrote it.

use serde_json::Value;

use super::message::type_name;

fn quote(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => quote(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => match (type_name(v).as_str(), m.get("$bytes")) {
            ("bytes", Some(Value::String(s))) => {
                out.push('b');
                // Each char is one byte (latin-1): escape as Python does.
                let ascii: String = s
                    .chars()
                    .map(|c| match c {
                        ' '..='~' => c.to_string(),
                        c => format!("\\x{:02x}", c as u32),
                    })
                    .collect();
                let escaped = ascii.replace('\'', "\\'");
                out.push('\'');
                out.push_str(&escaped);
                out.push('\'');
            }
            ("dict", _) => {
                out.push('{');
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(k, out);
                    out.push_str(": ");
                    write(item, out);
                }
                out.push('}');
            }
            (other, _) => out.push_str(&format!("<{other} object>")),
        },
    }
}

/// `repr()` of the value the guest JSON stands for.
pub(crate) fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_like_python() {
        let v = json!({"type": "http.response.body", "body": {"$bytes": "a'\u{0}\u{ff}"}, "more_body": true});
        assert_eq!(
            py_repr(&v),
            r"{'type': 'http.response.body', 'body': b'a\'\x00\xff', 'more_body': True}"
        );
        assert_eq!(
            py_repr(&json!([null, 1.5, {"$type": "Response"}])),
            "[None, 1.5, <Response object>]"
        );
    }
}
