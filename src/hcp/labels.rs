//! HCP's labeled holds (manual, "Holding an object using labeled holds"): named holds, each
//! placed and released on its own, beside the one unlabeled hold. An object stays on hold while
//! any of them holds.
//!
//! The request header `x-hcp-labelretentionhold` is a JSON array of `{"id": …, "hold": …}`;
//! the limits and the 400 reasons are the manual's PUT status table: an id of 1 to 64
//! characters, at most 100 entries in a request and 100 active labels on an object, no id both
//! placed and released, `id` and `hold` in every entry. Placing a label twice and releasing one
//! that is not there are no errors.
//!
//! What an object's holds are is a [`Holds`] record: the unlabeled hold and the active labels.

use std::collections::BTreeSet;

/// HCP's limits.
pub const MAX_LABEL_CHARS: usize = 64;
pub const MAX_LABELS: usize = 100;

/// One entry of `x-hcp-labelretentionhold`: place (`hold: true`) or release a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelChange {
    pub id: String,
    pub hold: bool,
}

/// Parses `x-hcp-labelretentionhold`; the error says which of HCP's rules the value breaks.
pub fn parse(raw: &[u8]) -> Result<Vec<LabelChange>, String> {
    let entries: Vec<serde_json::Value> = serde_json::from_slice(raw).map_err(|_| {
        "x-hcp-labelretentionhold is a JSON array of {\"id\":…,\"hold\":…} entries".to_string()
    })?;
    if entries.is_empty() {
        return Err("The request must specify the labeled hold id and hold values".into());
    }
    if entries.len() > MAX_LABELS {
        return Err(format!(
            "The request contains over {MAX_LABELS} labeled holds"
        ));
    }
    let mut changes = Vec::with_capacity(entries.len());
    for entry in &entries {
        let (Some(id), Some(hold)) = (
            entry.get("id").and_then(serde_json::Value::as_str),
            entry.get("hold").and_then(serde_json::Value::as_bool),
        ) else {
            return Err("The request must specify the labeled hold id and hold values".into());
        };
        let chars = id.chars().count();
        if chars == 0 {
            return Err("A label hold ID must have at least one character".into());
        }
        if chars > MAX_LABEL_CHARS {
            return Err(format!(
                "The labeled hold ID length exceeds {MAX_LABEL_CHARS} characters"
            ));
        }
        if id.chars().any(char::is_control) {
            return Err("A label hold ID holds no control characters".into());
        }
        changes.push(LabelChange {
            id: id.to_string(),
            hold,
        });
    }
    for c in &changes {
        if changes.iter().any(|o| o.id == c.id && o.hold != c.hold) {
            return Err(
                "A request cannot specify the same labeled hold ID as both active and inactive"
                    .into(),
            );
        }
    }
    Ok(changes)
}

/// An object's holds: the unlabeled one (`x-hcp-retentionhold`) and the active labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holds {
    pub hold: bool,
    pub labels: BTreeSet<String>,
}

impl Holds {
    /// Whether anything holds the object.
    pub fn any(&self) -> bool {
        self.hold || !self.labels.is_empty()
    }

    /// The labels after `changes`: placed ones added, released ones removed; more than HCP's
    /// 100 active labels is an error.
    pub fn apply(&self, changes: &[LabelChange]) -> Result<BTreeSet<String>, String> {
        let mut labels = self.labels.clone();
        for c in changes {
            if c.hold {
                labels.insert(c.id.clone());
            } else {
                labels.remove(&c.id);
            }
        }
        if labels.len() > MAX_LABELS {
            return Err(format!(
                "The active labeled hold limit exceeds {MAX_LABELS} labels"
            ));
        }
        Ok(labels)
    }

    /// Whether a hold that holds now still holds once `after` is in place: the unlabeled one
    /// kept, or a label kept.
    pub fn still_held(&self, after: &Holds) -> bool {
        (self.hold && after.hold) || self.labels.iter().any(|l| after.labels.contains(l))
    }
}

/// `x-hcp-labelretentionhold-labels` as HCP answers it: the active labels as a JSON array of
/// `{"id":…,"hold":true}`.
pub fn answer(labels: &BTreeSet<String>) -> String {
    let entries: Vec<String> = labels
        .iter()
        .map(|id| {
            let id = serde_json::Value::String(id.clone());
            format!("{{\"id\":{id},\"hold\":true}}")
        })
        .collect();
    format!("[{}]", entries.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Vec<(String, bool)> {
        parse(raw.as_bytes())
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.hold))
            .collect()
    }

    fn err(raw: &str) -> String {
        parse(raw.as_bytes()).unwrap_err()
    }

    #[test]
    fn the_manual_s_examples_parse() {
        assert_eq!(
            ok(
                r#"[{"id":"UniqueLabelHold-1","hold":true},{"id":"UniqueLabelHold-2","hold":true}]"#
            ),
            [
                ("UniqueLabelHold-1".into(), true),
                ("UniqueLabelHold-2".into(), true)
            ]
        );
        assert_eq!(
            ok(r#"[{"id":"LabelHold-2","hold":false}]"#),
            [("LabelHold-2".into(), false)]
        );
        // Whitespace, other key order, the same label placed twice, a non-ASCII label of 64
        // characters.
        let long = "é".repeat(64);
        assert_eq!(
            ok(&format!(
                r#" [ {{"hold":true, "id":"a"}}, {{"id":"a","hold":true}}, {{"id":"{long}","hold":true}} ] "#
            )),
            [("a".into(), true), ("a".into(), true), (long, true)]
        );
    }

    #[test]
    fn the_manual_s_400_reasons_are_refused() {
        assert!(err("true").contains("JSON array"));
        assert!(err("[{\"id\":\"a\",\"hold\":true}").contains("JSON array"));
        assert!(err("[]").contains("must specify"));
        assert!(err(r#"[{"id":"a"}]"#).contains("must specify"));
        assert!(err(r#"[{"hold":true}]"#).contains("must specify"));
        assert!(err(r#"[{"id":"a","hold":"true"}]"#).contains("must specify"));
        assert!(err(r#"[{"id":7,"hold":true}]"#).contains("must specify"));
        assert!(err(r#"[{"id":"","hold":true}]"#).contains("at least one"));
        let long = "x".repeat(65);
        assert!(err(&format!(r#"[{{"id":"{long}","hold":true}}]"#)).contains("exceeds 64"));
        assert!(err(r#"[{"id":"a\nb","hold":true}]"#).contains("control"));
        assert!(err(r#"[{"id":"a","hold":true},{"id":"a","hold":false}]"#).contains("both active"));
        let many: Vec<String> = (0..101)
            .map(|i| format!(r#"{{"id":"l{i}","hold":true}}"#))
            .collect();
        assert!(err(&format!("[{}]", many.join(","))).contains("over 100"));
    }

    #[test]
    fn labels_are_placed_released_and_limited() {
        let now = Holds {
            hold: false,
            labels: ["a".to_string(), "b".to_string()].into(),
        };
        let changes =
            parse(br#"[{"id":"b","hold":false},{"id":"c","hold":true},{"id":"z","hold":false}]"#)
                .unwrap();
        let after = now.apply(&changes).unwrap();
        assert_eq!(after, ["a".to_string(), "c".to_string()].into());
        let full = Holds {
            hold: false,
            labels: (0..100).map(|i| format!("l{i}")).collect(),
        };
        let one_more = parse(br#"[{"id":"new","hold":true}]"#).unwrap();
        assert!(full.apply(&one_more).unwrap_err().contains("limit"));
        // Released and placed in one request stays within the limit.
        let swap = parse(br#"[{"id":"l0","hold":false},{"id":"new","hold":true}]"#).unwrap();
        assert_eq!(full.apply(&swap).unwrap().len(), 100);
    }

    #[test]
    fn still_held_is_a_hold_kept() {
        let now = Holds {
            hold: true,
            labels: ["a".to_string()].into(),
        };
        let released = Holds::default();
        assert!(!now.still_held(&released));
        let label_kept = Holds {
            hold: false,
            labels: ["a".to_string(), "b".to_string()].into(),
        };
        assert!(now.still_held(&label_kept));
        // A hold placed by the same request is not one that holds now.
        let only_new = Holds {
            hold: false,
            labels: ["b".to_string()].into(),
        };
        assert!(!now.still_held(&only_new));
        assert!(!Holds::default().still_held(&now));
    }

    #[test]
    fn the_answer_is_hcp_s_json() {
        let labels = ["UniqueLabelHold-1".to_string(), "x\"y".to_string()].into();
        assert_eq!(
            answer(&labels),
            r#"[{"id":"UniqueLabelHold-1","hold":true},{"id":"x\"y","hold":true}]"#
        );
    }
}
