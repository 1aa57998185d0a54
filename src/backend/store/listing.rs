//! S3's listing rules over keys in byte order, for the embedded store: a prefix, a delimiter
//! that rolls keys up into common prefixes (any length; empty means none), an exclusive start
//! (V1's marker, V2's start-after or continuation token), and a page size that counts keys and
//! common prefixes alike.
//!
//! The page is computed from an iterator over the bucket's keys in ascending byte order that
//! starts at or before the first key the page may hold ([`Page::start`] says where), so that a
//! store can seek instead of scanning.

/// What a listing asks for.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub prefix: &'a [u8],
    /// Empty: no delimiter (S3 treats `delimiter=` as none).
    pub delimiter: &'a [u8],
    /// List only what sorts after this (marker, start-after, or the last entry of the previous
    /// page); a common prefix given here skips the keys it rolled up.
    pub after: Option<&'a [u8]>,
    /// Keys and common prefixes on one page (S3's max-keys, at most 1,000).
    pub max: usize,
}

/// One entry of a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<T> {
    Key(Vec<u8>, T),
    Prefix(Vec<u8>),
}

impl<T> Entry<T> {
    /// The key or common prefix: what the next page starts after.
    pub fn name(&self) -> &[u8] {
        match self {
            Entry::Key(k, _) | Entry::Prefix(k) => k,
        }
    }
}

/// A source's opening at a key (`Page::of_seeking`).
type Opener<'o, I> = &'o mut dyn FnMut(&[u8]) -> I;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub entries: Vec<Entry<T>>,
    /// More entries follow; the next page starts after the last entry's name.
    pub truncated: bool,
}

impl<T> Page<T> {
    /// The first key a page for `query` can hold: where a store seeks before iterating.
    pub fn start(query: &Query<'_>) -> Vec<u8> {
        match query.after {
            Some(after) if after > query.prefix => after.to_vec(),
            _ => query.prefix.to_vec(),
        }
    }

    /// The page of `keys` (ascending, starting at or before [`Page::start`]) that `query` asks
    /// for.
    pub fn of(keys: impl IntoIterator<Item = (Vec<u8>, T)>, query: &Query<'_>) -> Page<T> {
        Page::read(query, keys.into_iter(), None)
    }

    /// As [`Page::of`], over a source that seeks: `open(from)` iterates the keys from `from`
    /// on, in ascending order. It is opened at [`Page::start`], and again past a common prefix
    /// (the marker's, and each one the page holds), so that the keys a common prefix stands
    /// for are never read: a million keys under `logs/` cost a delimited page one step.
    pub fn of_seeking<I: Iterator<Item = (Vec<u8>, T)>>(
        query: &Query<'_>,
        mut open: impl FnMut(&[u8]) -> I,
    ) -> Page<T> {
        let keys = open(&Page::<T>::start(query));
        Page::read(query, keys, Some(&mut open))
    }

    fn read<I: Iterator<Item = (Vec<u8>, T)>>(
        query: &Query<'_>,
        mut keys: I,
        mut seek: Option<Opener<'_, I>>,
    ) -> Page<T> {
        let mut entries: Vec<Entry<T>> = Vec::new();
        // S3 answers max-keys=0 with an empty page that is not truncated (s3-tests
        // test_bucket_list_maxkeys_zero).
        if query.max == 0 {
            return Page {
                entries,
                truncated: false,
            };
        }
        // After a common prefix (a start that is itself what its keys roll up into), the keys
        // it rolled up are skipped.
        let skip_under = query.after.filter(|a| {
            a.starts_with(query.prefix) && rolled_up(a, query.prefix, query.delimiter) == Some(*a)
        });
        // Past a common prefix: where the source seeks, the keys it stands for are not read.
        // False where no key can follow (a prefix of 0xFF bytes is above every other key).
        let mut past = |common: &[u8], keys: &mut I| match (seek.as_mut(), successor(common)) {
            (Some(open), Some(from)) => {
                *keys = open(&from);
                true
            }
            (Some(_), None) => false,
            (None, _) => true,
        };
        if let Some(p) = skip_under {
            if !past(p, &mut keys) {
                return Page {
                    entries,
                    truncated: false,
                };
            }
        }
        while let Some((key, value)) = keys.next() {
            if !key.starts_with(query.prefix) {
                if key.as_slice() > query.prefix {
                    break;
                }
                continue;
            }
            if query.after.is_some_and(|a| key.as_slice() <= a) {
                continue;
            }
            if skip_under.is_some_and(|p| key.starts_with(p)) {
                continue;
            }
            let entry = match rolled_up(&key, query.prefix, query.delimiter).map(<[u8]>::to_vec) {
                Some(common) => {
                    if matches!(entries.last(), Some(Entry::Prefix(p)) if *p == common) {
                        continue;
                    }
                    Entry::Prefix(common)
                }
                None => Entry::Key(key, value),
            };
            if entries.len() == query.max {
                return Page {
                    entries,
                    truncated: true,
                };
            }
            let seek_past = match &entry {
                Entry::Prefix(common) => Some(common.clone()),
                Entry::Key(..) => None,
            };
            entries.push(entry);
            if seek_past.is_some_and(|common| !past(&common, &mut keys)) {
                break;
            }
        }
        Page {
            entries,
            truncated: false,
        }
    }
}

/// The least byte string above every string that starts with `prefix`: the prefix without its
/// trailing 0xFF bytes, its last byte one up; `None` where it is all 0xFF bytes.
pub(super) fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let end = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut next = prefix[..=end].to_vec();
    next[end] += 1;
    Some(next)
}

/// The common prefix `key` rolls up into: the prefix, then everything up to and including the
/// first delimiter after it (an empty delimiter is none). Uploads listings roll up by it too.
pub(super) fn rolled_up<'k>(key: &'k [u8], prefix: &[u8], delimiter: &[u8]) -> Option<&'k [u8]> {
    if delimiter.is_empty() {
        return None;
    }
    let rest = key.get(prefix.len()..)?;
    let at = rest.windows(delimiter.len()).position(|w| w == delimiter)?;
    Some(&key[..prefix.len() + at + delimiter.len()])
}

#[cfg(test)]
mod tests {
    #[test]
    fn successors_sort_above_every_key_of_their_prefix() {
        assert_eq!(successor(b"logs/"), Some(b"logs0".to_vec()));
        assert_eq!(successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff"), None);
    }

    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    fn keys(names: &[&str]) -> Vec<(Vec<u8>, ())> {
        let mut v: Vec<(Vec<u8>, ())> = names.iter().map(|k| (k.as_bytes().to_vec(), ())).collect();
        v.sort();
        v
    }

    fn names(page: &Page<()>) -> Vec<String> {
        page.entries
            .iter()
            .map(|e| match e {
                Entry::Key(k, _) => String::from_utf8_lossy(k).into_owned(),
                Entry::Prefix(p) => format!("{}*", String::from_utf8_lossy(p)),
            })
            .collect()
    }

    fn query<'a>(
        prefix: &'a str,
        delimiter: &'a str,
        after: Option<&'a str>,
        max: usize,
    ) -> Query<'a> {
        Query {
            prefix: prefix.as_bytes(),
            delimiter: delimiter.as_bytes(),
            after: after.map(str::as_bytes),
            max,
        }
    }

    #[test]
    fn listings_follow_s3() {
        let all = keys(&[
            "a", "b/", "b/c", "b/d/e", "bb", "c//d", "dir/", "x", "xay", "xbz",
        ]);
        let page = |q: Query<'_>| names(&Page::of(all.clone(), &q));
        // An empty delimiter is no delimiter: every key, none rolled up.
        assert_eq!(page(query("", "", None, 1000)).len(), 10);
        assert_eq!(
            page(query("", "/", None, 1000)),
            ["a", "b/*", "bb", "c/*", "dir/*", "x", "xay", "xbz"]
        );
        // A folder key is listed under its own prefix.
        assert_eq!(page(query("b/", "/", None, 1000)), ["b/", "b/c", "b/d/*"]);
        assert_eq!(page(query("dir/", "/", None, 1000)), ["dir/"]);
        // Multi-character delimiters.
        assert_eq!(page(query("x", "ay", None, 1000)), ["x", "xay*", "xbz"]);
        assert_eq!(page(query("c", "//", None, 1000)), ["c//*"]);
        // A common prefix as the marker skips what it rolled up.
        assert_eq!(
            page(query("", "/", Some("b/"), 1000)),
            ["bb", "c/*", "dir/*", "x", "xay", "xbz"]
        );
        // A key as the marker inside a group lists the group's prefix again (as S3 does).
        assert_eq!(page(query("", "/", Some("b/c"), 2)), ["b/*", "bb"]);
        let p = Page::of(all.clone(), &query("", "/", None, 2));
        assert!(p.truncated);
        assert_eq!(names(&p), ["a", "b/*"]);
        let last = Page::of(all.clone(), &query("", "/", Some("xay"), 1));
        assert_eq!(
            (names(&last), last.truncated),
            (vec!["xbz".to_string()], false)
        );
        assert_eq!(page(query("", "", None, 0)), Vec::<String>::new());
        assert!(!Page::of(all, &query("", "", None, 0)).truncated);
    }

    /// The listing, independently: each key's entry (itself, or the common prefix it rolls up
    /// into), those after the start, as a sorted set.
    fn model(all: &[(Vec<u8>, ())], q: &Query<'_>) -> Vec<Vec<u8>> {
        let mut set = BTreeSet::new();
        for (k, _) in all {
            if !k.starts_with(q.prefix) || q.after.is_some_and(|a| k.as_slice() <= a) {
                continue;
            }
            let entry =
                rolled_up(k, q.prefix, q.delimiter).map_or_else(|| k.clone(), <[u8]>::to_vec);
            let skipped = q.after.is_some_and(|a| {
                !q.delimiter.is_empty() && a.ends_with(q.delimiter) && a == entry.as_slice()
            });
            if !skipped {
                set.insert(entry);
            }
        }
        set.into_iter().collect()
    }

    fn random_key(rng: &mut StdRng) -> Vec<u8> {
        let len = rng.gen_range(0..7);
        (0..len)
            .map(|_| b"ab/-z\xff"[rng.gen_range(0..6)])
            .collect()
    }

    /// Any listing, read page by page (each starting after the last entry of the one before),
    /// is the whole listing once, in order, and the whole listing is the model's.
    #[test]
    fn pages_concatenate_to_the_listing_the_model_gives() {
        let mut rng = StdRng::seed_from_u64(18);
        for _ in 0..3000 {
            let mut set = BTreeSet::new();
            for _ in 0..rng.gen_range(0..30) {
                set.insert(random_key(&mut rng));
            }
            let all: Vec<(Vec<u8>, ())> = set.into_iter().map(|k| (k, ())).collect();
            let prefix = random_key(&mut rng);
            let prefix = &prefix[..prefix.len().min(2)];
            let delimiter: &[u8] =
                [&b""[..], b"/", b"a", b"/a", b"zz", b"\xff"][rng.gen_range(0..6)];
            let whole = Page::of(
                all.clone(),
                &Query {
                    prefix,
                    delimiter,
                    after: None,
                    max: usize::MAX,
                },
            );
            let whole_names: Vec<Vec<u8>> =
                whole.entries.iter().map(|e| e.name().to_vec()).collect();
            let q = Query {
                prefix,
                delimiter,
                after: None,
                max: usize::MAX,
            };
            assert_eq!(
                whole_names,
                model(&all, &q),
                "prefix {prefix:?} delimiter {delimiter:?}"
            );
            let max = rng.gen_range(1..5);
            let mut read: Vec<Vec<u8>> = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let q = Query {
                    prefix,
                    delimiter,
                    after: after.as_deref(),
                    max,
                };
                let start = Page::<()>::start(&q);
                let from: Vec<(Vec<u8>, ())> =
                    all.iter().filter(|(k, _)| *k >= start).cloned().collect();
                let page = Page::of(from, &q);
                assert!(page.entries.len() <= max);
                // A source that seeks gives the same page, reading no key a common prefix
                // stands for but the first: at most one key per entry, the start's own key and
                // the one that ends the page.
                let reads = std::cell::Cell::new(0);
                let seeking = Page::of_seeking(&q, |from| {
                    let from = from.to_vec();
                    all.iter()
                        .filter(move |(k, _)| *k >= from)
                        .cloned()
                        .inspect(|_| reads.set(reads.get() + 1))
                });
                assert_eq!(seeking, page, "prefix {prefix:?} delimiter {delimiter:?}");
                assert!(
                    reads.get() <= page.entries.len() + 2,
                    "{} keys read for {} entries: {q:?} {:?}",
                    reads.get(),
                    page.entries.len(),
                    all.iter()
                        .map(|(k, _)| String::from_utf8_lossy(k))
                        .collect::<Vec<_>>()
                );
                read.extend(page.entries.iter().map(|e| e.name().to_vec()));
                if !page.truncated {
                    break;
                }
                after = page.entries.last().map(|e| e.name().to_vec());
            }
            assert_eq!(
                read, whole_names,
                "max {max} prefix {prefix:?} delimiter {delimiter:?}"
            );
        }
    }
}
