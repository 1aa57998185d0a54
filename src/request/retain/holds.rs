//! Where HCP's holds are recorded in a namespace with labeled holds: one small object per hold
//! in the tenant's labeled-holds bucket (`labeled_holds_bucket`), a bucket of the tenant's
//! backend that only the gateway uses — `route` refuses it to clients and listings leave it
//! out — so that labels are read only where the gateway shows them (to privileged readers).
//!
//! The holds of one object version live under `labeled-holds/<digest>/`, the digest of the
//! version's backend bucket, key and version id: `hold` for the unlabeled hold and
//! `label-<hex of the label>` for each label (each body names the object, for an operator
//! reading the bucket). One object per hold means that no change reads, edits and writes back a
//! shared record: two custodians placing labels at once each write their own, and a release
//! removes only its own. The backend's one legal hold is on while anything is recorded there —
//! see `retain::change` for the order that keeps it so under concurrent changes.

use super::*;
use crate::hcp::labels::Holds;
use crate::request::records::Records;

/// The unlabeled hold's record name.
const HOLD: &str = "hold";
/// The prefix of a label's record name (the label's UTF-8 in hex follows).
const LABEL: &str = "label-";
/// The most hex digits of a label in one path segment of its record's name: MinIO refuses an
/// object name with a segment over 255 characters (its names are paths), and a label of 64
/// four-byte characters is 512 digits — written in segments of at most 240.
const SEGMENT_HEX: usize = 240;
/// The prefix of a label's record name whose hex is cut into segments, and its last segment
/// (no hex digit: so that no record's name is the folder of another's, which MinIO cannot
/// keep beside it).
const CUT_LABEL: &str = "label+";
const CUT_END: &str = "/end";

/// A hold's record.
#[derive(serde::Serialize)]
struct Record<'a> {
    bucket: &'a str,
    key: String,
    version: &'a str,
    /// `null` for the unlabeled hold.
    label: Option<&'a str>,
}

/// The records' place for `version` of the object at `at`: the labeled-holds bucket (same
/// backend, same credentials) and the version's prefix there.
fn place<'r>(at: At<'r>, version: Option<&str>) -> Option<(Records<'r>, String)> {
    let bucket = at.route.tenant.retention.labels_bucket.clone()?;
    let object_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
    let mut name = Vec::with_capacity(object_bucket.len() + 128);
    name.extend_from_slice(object_bucket.as_bytes());
    name.push(0);
    name.extend_from_slice(&at.target.key().unwrap_or_default());
    name.push(0);
    name.extend_from_slice(version.unwrap_or("null").as_bytes());
    Some((
        Records::at(at, bucket),
        format!("labeled-holds/{}/", sigv4::sha256_hex(&name)),
    ))
}

fn no_place() -> String {
    "the namespace has no labeled_holds_bucket".into()
}

/// A record's name within the version's prefix: `hold`; `label-` and the label's hex; or,
/// for a label of more than [`SEGMENT_HEX`] digits, `label+`, its hex in segments of that
/// many, and `/end`.
fn record_name(label: Option<&str>) -> String {
    let Some(label) = label else {
        return HOLD.to_string();
    };
    let hex = hex::encode(label);
    if hex.len() <= SEGMENT_HEX {
        return one_segment(&hex);
    }
    let mut name = String::with_capacity(CUT_LABEL.len() + hex.len() + 8);
    name.push_str(CUT_LABEL);
    for (i, digits) in hex.as_bytes().chunks(SEGMENT_HEX).enumerate() {
        if i > 0 {
            name.push('/');
        }
        name.push_str(std::str::from_utf8(digits).expect("hex"));
    }
    name.push_str(CUT_END);
    name
}

/// The name a long label's record had before names were cut (`label-` and all its hex, one
/// segment), which a release removes too — where the backend could keep it: MinIO refuses to
/// name it at all (400), which then says it holds none.
fn uncut_name(label: Option<&str>) -> Option<String> {
    let label = label.filter(|l| l.len() * 2 > SEGMENT_HEX)?;
    Some(one_segment(&hex::encode(label)))
}

/// `label-` and a label's hex, in one segment.
fn one_segment(hex: &str) -> String {
    format!("{LABEL}{hex}")
}

/// The holds of a change, as `record_name` takes them: `None` for the unlabeled one.
fn holds_named<'l>(hold: bool, labels: &'l [&'l str]) -> impl Iterator<Item = Option<&'l str>> {
    hold.then_some(None)
        .into_iter()
        .chain(labels.iter().map(|l| Some(*l)))
}

/// The holds that record names stand for (names of no hold are ignored).
fn holds_of_names<'n>(names: impl Iterator<Item = &'n str>) -> Holds {
    let mut holds = Holds::default();
    for name in names {
        if name == HOLD {
            holds.hold = true;
        } else if let Some(label) = name
            .strip_prefix(LABEL)
            .or_else(|| name.strip_prefix(CUT_LABEL)?.strip_suffix(CUT_END))
            .and_then(|h| hex::decode(h.replace('/', "")).ok())
            .and_then(|b| String::from_utf8(b).ok())
        {
            holds.labels.insert(label);
        }
    }
    holds
}

impl Gateway {
    /// The holds recorded for `version` of the object at `at` (`None`: nothing recorded).
    pub(in crate::request) async fn read_holds(
        &self,
        at: At<'_>,
        version: Option<&str>,
    ) -> Result<Option<Holds>, String> {
        let (records, prefix) = place(at, version).ok_or_else(no_place)?;
        let keys = self.list_records(&records, &prefix, 1000).await?;
        let names = keys.iter().filter_map(|k| k.strip_prefix(prefix.as_str()));
        Ok(Some(holds_of_names(names)).filter(|_| !keys.is_empty()))
    }

    /// Records holds placed on `version` of the object at `at`: the unlabeled one (`hold`) and
    /// `labels`.
    pub(in crate::request) async fn record_holds(
        &self,
        at: At<'_>,
        version: Option<&str>,
        (hold, labels): (bool, &[&str]),
    ) -> Result<(), String> {
        let (records, prefix) = place(at, version).ok_or_else(no_place)?;
        for label in holds_named(hold, labels) {
            let record = Record {
                bucket: at.route.backend_bucket.as_deref().unwrap_or_default(),
                key: at.target.key_lossy().unwrap_or_default(),
                version: version.unwrap_or("null"),
                label,
            };
            let body = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
            let key = format!("{prefix}{}", record_name(label));
            self.put_record(&records, key, &body)
                .await
                .map_err(|e| format!("recording a hold: {e}"))?;
        }
        Ok(())
    }

    /// Removes the records of holds released on `version` of the object at `at`.
    pub(in crate::request) async fn remove_holds(
        &self,
        at: At<'_>,
        version: Option<&str>,
        (hold, labels): (bool, &[&str]),
    ) -> Result<(), String> {
        let (records, prefix) = place(at, version).ok_or_else(no_place)?;
        for label in holds_named(hold, labels) {
            // (The uncut name first: where it fails, the record the release is for is still
            // there, and the release can be asked again.)
            let names = uncut_name(label).map(|n| (n, true));
            let names = names.into_iter().chain([(record_name(label), false)]);
            for (name, maybe_unnameable) in names {
                let key = format!("{prefix}{name}");
                self.delete_record_named(&records, key, maybe_unnameable)
                    .await
                    .map_err(|e| format!("removing a hold's record: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_stand_for_their_holds() {
        let names = [
            record_name(None),
            record_name(Some("UniqueLabelHold-1")),
            record_name(Some("é/\"x\"")),
            "stray".to_string(),
        ];
        let holds = holds_of_names(names.iter().map(String::as_str));
        assert!(holds.hold);
        let labels: Vec<&str> = holds.labels.iter().map(String::as_str).collect();
        assert_eq!(labels, ["UniqueLabelHold-1", "é/\"x\""]);
        // The longest label (64 characters of four bytes) keeps the name short enough for any
        // backend (1,024 bytes).
        let long = "😀".repeat(64);
        assert!(
            format!(
                "labeled-holds/{}/{}",
                "0".repeat(64),
                record_name(Some(&long))
            )
            .len()
                <= 1024
        );
    }

    /// The oracle: for labels of 1 to 64 characters of every UTF-8 width (HCP counts a label's
    /// characters), every segment of a record's name is at most 255 characters (MinIO's
    /// bound: a label of 64 `é` was refused there, its hold left on without a record), no
    /// name is the folder of another (MinIO keeps no object beside a folder of its name: a
    /// label of 40 `日` beside one of 40 `日` and more), and the names read back as the labels;
    /// a long label's record of one segment (before names were cut) reads as the label too.
    #[test]
    fn record_names_fit_every_backend_s_segments_and_read_back() {
        let widths = ['a', 'é', '日', '😀', '/', '"'];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut labels = vec!["日".repeat(40), format!("{}x", "日".repeat(40))];
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let length = 1 + (seed % 64) as usize;
            let label: String = (0..length)
                .map(|i| widths[((seed >> (i % 48)) as usize + i) % widths.len()])
                .collect();
            labels.push(label);
        }
        let prefix = format!("labeled-holds/{}/", "0".repeat(64));
        let mut names = Vec::new();
        for label in &labels {
            let name = format!("{prefix}{}", record_name(Some(label)));
            assert!(name.split('/').all(|s| s.len() <= 255), "{name}");
            assert!(name.len() <= 1024, "{name}");
            let read = holds_of_names(std::iter::once(&name[prefix.len()..]));
            assert!(read.labels.iter().eq([label]), "{name}");
            if let Some(uncut) = uncut_name(Some(label)) {
                let read = holds_of_names(std::iter::once(uncut.as_str()));
                assert!(read.labels.iter().eq([label]), "{uncut}");
            }
            names.push(name);
        }
        let all: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        for name in &names {
            let folders = name.match_indices('/').map(|(at, _)| &name[..at]);
            for folder in folders {
                assert!(!all.contains(folder), "{folder} beside {name}");
            }
        }
    }
}
