//! Reading `config.toml` into the file layer with every structural problem reported, not just
//! the first: serde stops at the first unknown key, wrong type or missing field, so after each
//! one the offending key (or, for a missing field, the table that lacks it) is taken out of the
//! document and the rest is read again. What remains is validated as usual, so one run reports
//! the structure's problems and then the settings' problems of everything that could be read.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

use serde::de::DeserializeOwned;

/// More problems than anyone fixes in one sitting; the rest are reported next time.
const MAX_PROBLEMS: usize = 50;

/// One step of a path into the document: a key of a table, or an element of an array.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The file read, and the structural problems met on the way (each `line N: path: message`).
/// A syntax error, which leaves nothing to read, is the only problem then.
pub(super) fn read<T: DeserializeOwned>(text: &str) -> Result<(T, Vec<String>), Vec<String>> {
    // A syntax error is reported by its line and message, without the line itself, which
    // could hold a secret.
    let syntax = |e: toml_edit::TomlError, text: &str| {
        let line = e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        format!("line {line}: {}", e.message().trim_end())
    };
    let original = ImDocument::parse(text.to_string()).map_err(|e| vec![syntax(e, text)])?;
    let mut current = text.to_string();
    let mut problems = Vec::new();
    let mut removed = Removed::default();
    while problems.len() < MAX_PROBLEMS {
        let error = match toml::from_str::<T>(&current) {
            Ok(file) => return Ok((file, problems)),
            Err(e) => e,
        };
        let doc = match ImDocument::parse(current.clone()) {
            Ok(doc) => doc,
            Err(e) => {
                problems.push(syntax(e, &current));
                return Err(problems);
            }
        };
        let path = error
            .span()
            .map(|span| locate(doc.as_table(), &span))
            .unwrap_or_default();
        let in_original = removed.original(&path);
        problems.push(describe(&original, text, &in_original, error.message()));
        let mut doc = doc.into_mut();
        if path.is_empty() || !remove(doc.as_table_mut(), &path) {
            return Err(problems);
        }
        removed.note(in_original);
        current = doc.to_string();
    }
    Err(problems)
}

/// The array elements taken out so far, by their path in the file as written, so that a later
/// problem's path (in the edited document, where the elements after them moved up) is reported
/// with the indices the file has.
#[derive(Default)]
struct Removed(Vec<Vec<Step>>);

impl Removed {
    fn note(&mut self, path: Vec<Step>) {
        if matches!(path.last(), Some(Step::Index(_))) {
            self.0.push(path);
        }
    }

    /// `path` of the edited document as a path of the file as written.
    fn original(&self, path: &[Step]) -> Vec<Step> {
        let mut out: Vec<Step> = Vec::with_capacity(path.len());
        for step in path {
            match step {
                Step::Key(_) => out.push(step.clone()),
                Step::Index(edited) => {
                    // The edited index counts the elements still there: skip the removed ones.
                    let gone = |i: usize| {
                        self.0.iter().any(|r| {
                            r.len() == out.len() + 1
                                && r[..out.len()] == out[..]
                                && r[out.len()] == Step::Index(i)
                        })
                    };
                    let mut left = *edited;
                    let mut i = 0;
                    loop {
                        if !gone(i) {
                            if left == 0 {
                                break;
                            }
                            left -= 1;
                        }
                        i += 1;
                    }
                    out.push(Step::Index(i));
                }
            }
        }
        out
    }
}

/// Keys whose values are secrets (or may be written inline): a problem with one never repeats
/// the value, since problems are printed and, on a reload, logged.
const SECRET_KEYS: &[&str] = &[
    "password",
    "access_key",
    "secret_key",
    "security_token",
    "upload_binding_secret",
];

/// `line N: a.b[2].c: message`, the line found in the file as written.
fn describe(original: &ImDocument<String>, text: &str, path: &[Step], message: &str) -> String {
    let secret = path
        .iter()
        .any(|step| matches!(step, Step::Key(k) if SECRET_KEYS.contains(&k.as_str())));
    let message = if secret && !message.starts_with("unknown field") {
        "not a valid value (a string, or { file = … } or { env = … }); the value is a secret and not shown"
    } else {
        message
    };
    // A backend's `credentials` names how they are found; a key pasted there is not repeated.
    let named = |key: &str| matches!(path.last(), Some(Step::Key(k)) if k == key);
    let unshown;
    let message = match message.strip_prefix("unknown variant `") {
        Some(rest) if named("credentials") => {
            let expected = rest.split_once('`').map_or("", |(_, tail)| tail);
            unshown = format!("unknown variant (not shown: it may be a secret){expected}");
            unshown.as_str()
        }
        _ => message,
    };
    let mut name = String::new();
    for step in path {
        match step {
            Step::Key(k) if name.is_empty() => name.push_str(k),
            Step::Key(k) => {
                name.push('.');
                name.push_str(k);
            }
            Step::Index(i) => name.push_str(&format!("[{i}]")),
        }
    }
    let line = span_of(original.as_table(), path)
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    match (line, name.is_empty()) {
        (Some(line), false) => format!("line {line}: {name}: {message}"),
        (Some(line), true) => format!("line {line}: {message}"),
        (None, false) => format!("{name}: {message}"),
        (None, true) => message.to_string(),
    }
}

fn contains(span: Option<Range<usize>>, at: usize) -> bool {
    span.is_some_and(|s| s.start <= at && at < s.end.max(s.start + 1))
}

/// The deepest key or element whose key or value holds `span`'s start.
fn locate(table: &Table, span: &Range<usize>) -> Vec<Step> {
    let mut path = Vec::new();
    locate_table(table, span.start, &mut path);
    path
}

fn locate_table(table: &Table, at: usize, path: &mut Vec<Step>) -> bool {
    for (key, item) in table.iter() {
        path.push(Step::Key(key.to_string()));
        let key_span = table.key(key).and_then(|k| k.span());
        if locate_item(item, at, path) || contains(key_span, at) {
            return true;
        }
        path.pop();
    }
    contains(table.span(), at)
}

fn locate_item(item: &Item, at: usize, path: &mut Vec<Step>) -> bool {
    match item {
        Item::Table(t) => locate_table(t, at, path),
        Item::ArrayOfTables(tables) => tables.iter().enumerate().any(|(i, t)| {
            path.push(Step::Index(i));
            let found = locate_table(t, at, path);
            if !found {
                path.pop();
            }
            found
        }),
        Item::Value(v) => locate_value(v, at, path),
        Item::None => false,
    }
}

fn locate_value(value: &Value, at: usize, path: &mut Vec<Step>) -> bool {
    let inner = match value {
        Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
            path.push(Step::Index(i));
            let found = locate_value(v, at, path);
            if !found {
                path.pop();
            }
            found
        }),
        Value::InlineTable(t) => t.iter().any(|(key, v)| {
            path.push(Step::Key(key.to_string()));
            let key_span = t.key(key).and_then(|k| k.span());
            let found = locate_value(v, at, path) || contains(key_span, at);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    };
    inner || contains(value.span(), at)
}

/// Where `path` is in the file as written (its key, else its value or table).
fn span_of(table: &Table, path: &[Step]) -> Option<Range<usize>> {
    match path.split_first() {
        None => table.span(),
        Some((Step::Key(k), rest)) => {
            let key_span = table.key(k).and_then(|key| key.span());
            let item = table.get(k)?;
            if rest.is_empty() {
                return key_span.or_else(|| item.span());
            }
            span_in_item(item, rest).or(key_span)
        }
        Some((Step::Index(_), _)) => None,
    }
}

fn span_in_item(item: &Item, path: &[Step]) -> Option<Range<usize>> {
    match (item, path.split_first()) {
        (Item::Table(t), _) => span_of(t, path),
        (Item::ArrayOfTables(a), Some((Step::Index(i), rest))) => {
            let t = a.get(*i)?;
            span_of(t, rest).or_else(|| t.span())
        }
        (Item::Value(v), _) => span_in_value(v, path),
        _ => None,
    }
}

fn span_in_value(value: &Value, path: &[Step]) -> Option<Range<usize>> {
    match (value, path.split_first()) {
        (_, None) => value.span(),
        (Value::Array(a), Some((Step::Index(i), rest))) => span_in_value(a.get(*i)?, rest),
        (Value::InlineTable(t), Some((Step::Key(k), rest))) => {
            let key_span = t.key(k).and_then(|key| key.span());
            if rest.is_empty() {
                return key_span.or_else(|| t.get(k).and_then(Value::span));
            }
            span_in_value(t.get(k)?, rest).or(key_span)
        }
        _ => None,
    }
}

/// Takes the key or element at `path` out of the document; false if there is none.
fn remove(table: &mut Table, path: &[Step]) -> bool {
    match path {
        [Step::Key(k)] => table.remove(k).is_some(),
        [Step::Key(k), rest @ ..] => match table.get_mut(k) {
            Some(item) => remove_in_item(item, rest),
            None => false,
        },
        _ => false,
    }
}

fn remove_in_item(item: &mut Item, path: &[Step]) -> bool {
    match (item, path) {
        (Item::Table(t), _) => remove(t, path),
        (Item::ArrayOfTables(a), [Step::Index(i)]) if *i < a.len() => {
            a.remove(*i);
            true
        }
        (Item::ArrayOfTables(a), [Step::Index(i), rest @ ..]) => match a.get_mut(*i) {
            Some(t) => remove(t, rest),
            None => false,
        },
        (Item::Value(v), _) => remove_in_value(v, path),
        _ => false,
    }
}

fn remove_in_value(value: &mut Value, path: &[Step]) -> bool {
    match (value, path) {
        (Value::Array(a), [Step::Index(i)]) if *i < a.len() => {
            a.remove(*i);
            true
        }
        (Value::Array(a), [Step::Index(i), rest @ ..]) => match a.get_mut(*i) {
            Some(v) => remove_in_value(v, rest),
            None => false,
        },
        (Value::InlineTable(t), [Step::Key(k)]) => t.remove(k).is_some(),
        (Value::InlineTable(t), [Step::Key(k), rest @ ..]) => match t.get_mut(k) {
            Some(v) => remove_in_value(v, rest),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::file::FileConfig;

    fn problems(text: &str) -> Vec<String> {
        match read::<FileConfig>(text) {
            Ok((_, problems)) => problems,
            Err(problems) => problems,
        }
    }

    #[test]
    fn every_structural_problem_is_reported_with_its_line_and_key() {
        let text = r#"
[server]
listen = "127.0.0.1:8080"
threads = "two"
colour = "blue"

[[users]]
username = "a"
password = "p"
permissions = [{ tenant = "t", buckets = "*", allow = ["read"], extra = 1 }]

[[backends]]
name = "b"
kind = "s3"
endpont = "http://x"

[[backends]]
kind = "local"
"#;
        let found = problems(text);
        let expect = [
            ("line 4: server.threads:", "invalid type"),
            ("line 5: server.colour:", "unknown field `colour`"),
            (
                "line 10: users[0].permissions[0].extra:",
                "unknown field `extra`",
            ),
            ("line 15: backends[0].endpont:", "unknown field `endpont`"),
            ("line 17: backends[1]:", "missing field `name`"),
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for ((prefix, message), problem) in expect.iter().zip(&found) {
            assert!(
                problem.starts_with(prefix) && problem.contains(message),
                "{problem:?} should start with {prefix:?} and hold {message:?}"
            );
        }
    }

    #[test]
    fn problems_after_a_removed_element_keep_the_file_s_indices_and_lines() {
        let text = "[[backends]]\nkind = \"s3\"\n\n[[backends]]\nname = \"b\"\nkind = \"s3\"\nendpont = \"x\"\n\n\
                    [[users]]\nusername = 7\n[[users]]\nusername = \"v\"\npassword = \"p\"\ncolour = 1\n";
        let found = problems(text);
        let expect = [
            "line 1: backends[0]: missing field `name`",
            "line 7: backends[1].endpont: unknown field",
            "line 10: users[0].username: invalid type",
            "line 14: users[1].colour: unknown field",
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for (prefix, problem) in expect.iter().zip(&found) {
            assert!(
                problem.starts_with(prefix),
                "{problem:?} should start with {prefix:?}"
            );
        }
    }

    #[test]
    fn a_secret_of_the_wrong_shape_is_not_repeated() {
        let text = "[[users]]\nusername = \"u\"\npassword = 918273645\n\
                    [auth]\nupload_binding_secret = [\"s3cr3t-binding\"]\n";
        let found = problems(text).join("\n");
        assert!(found.contains("users[0].password"), "{found}");
        assert!(found.contains("auth.upload_binding_secret"), "{found}");
        assert!(
            !found.contains("918273645") && !found.contains("s3cr3t"),
            "{found}"
        );
    }

    #[test]
    fn a_sound_file_has_no_problems_and_a_syntax_error_is_one() {
        assert!(read::<FileConfig>("[server]\nlisten = \"127.0.0.1:1\"\n")
            .unwrap()
            .1
            .is_empty());
        let broken = read::<FileConfig>("[server\n").map(|_| ()).unwrap_err();
        assert_eq!(broken.len(), 1, "{broken:?}");
        // Its line is named, not shown: it could hold a secret.
        let broken = read::<FileConfig>("[[users]]\nusername = \"u\"\npassword = \"s3cr3t\n")
            .map(|_| ())
            .unwrap_err();
        assert!(broken[0].starts_with("line 3:"), "{broken:?}");
        assert!(!broken[0].contains("s3cr3t"), "{broken:?}");
    }
}
