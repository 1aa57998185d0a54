//! HCP's retention values (manual, "Retention" through "Offset examples"): what a client may
//! write in `x-hcp-retention`, how it resolves to a setting, which changes HCP allows, how a
//! setting is read back, and how it is kept as S3 Object Lock at the backend.
//!
//! Values, not case sensitive: `0` / `-0` / `Deletion Allowed`, `-1` / `Deletion Prohibited`,
//! `-2` / `Initial Unspecified`, seconds since 1970, `yyyy-MM-ddThh:mm:ss(+|-)hhmm` (lenient as
//! HCP is: `2015-11-33` is 3 December), an offset `[R|A|N](±n y)(±n M)(±n w)(±n d)(±n h)(±n m)
//! (±n s)` with each n from 0 to 9,999, and `C+name` for a retention class of the tenant.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Now, in seconds since 1970: what retention settings are resolved and judged against.
pub fn now() -> i64 {
    seconds(std::time::SystemTime::now())
}

/// A time in seconds since 1970 (0 before it).
pub fn seconds(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A retention setting, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `0`: deletable at any time.
    Allowed,
    /// `-1`: never deletable (but by a privileged delete), never changed.
    Prohibited,
    /// `-2`: not deletable (but by a privileged delete) until a setting is given.
    Unspecified,
    /// Not deletable (but by a privileged delete) until this time (seconds since 1970).
    Until(i64),
}

/// What an offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `A`: when the object was added.
    Added,
    /// `R`: the object's current retention setting.
    Current,
    /// `N`: now.
    Now,
}

impl Setting {
    /// Whether the setting keeps the object from being deleted at `now` (but by a privileged
    /// delete).
    pub fn in_force(self, now: i64) -> bool {
        match self {
            Setting::Allowed => false,
            Setting::Until(t) => t > now,
            Setting::Prohibited | Setting::Unspecified => true,
        }
    }
}

/// A value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Special(Setting),
    /// A date and time, or seconds since 1970.
    At(i64),
    /// An offset: years, months, weeks, days, hours, minutes, seconds (signed).
    Offset(Base, [i64; 7]),
    /// `C+name`.
    Class(String),
}

/// Why a value or a change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The value is not one of HCP's forms (400 InvalidArgument).
    Invalid(String),
    /// The value is HCP's, but not allowed over the object's current setting (403).
    NotAllowed(String),
}

/// The largest number in an offset term.
const MAX_TERM: i64 = 9_999;

impl Value {
    pub fn parse(raw: &str) -> Result<Value, Refusal> {
        let v = raw.trim();
        let invalid = || Refusal::Invalid(format!("{v:?} is not a retention value"));
        match v.to_ascii_lowercase().as_str() {
            "0" | "-0" | "deletion allowed" => return Ok(Value::Special(Setting::Allowed)),
            "-1" | "deletion prohibited" => return Ok(Value::Special(Setting::Prohibited)),
            "-2" | "initial unspecified" => return Ok(Value::Special(Setting::Unspecified)),
            _ => {}
        }
        if let Some(name) = v.strip_prefix("C+").or_else(|| v.strip_prefix("c+")) {
            return if name.is_empty() {
                Err(invalid())
            } else {
                Ok(Value::Class(name.to_string()))
            };
        }
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            return v.parse().map(Value::At).map_err(|_| invalid());
        }
        if let Some(at) = parse_datetime(v) {
            return Ok(Value::At(at));
        }
        parse_offset(v).ok_or_else(invalid)
    }
}

/// `yyyy-MM-ddThh:mm:ss` and a zone, `+hhmm`, `-hhmm` (HCP's) or `Z`; fields beyond their
/// range carry over as HCP's lenient parser does (`2015-11-33` → `2015-12-03`).
fn parse_datetime(v: &str) -> Option<i64> {
    let (date, rest) = v.split_once(['T', 't'])?;
    let (clock, zone) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, z) = rest.split_at(at);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let digits = &z[1..];
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
        (c, sign * (h * 3600 + m * 60))
    };
    let fields = |s: &str, widths: &[usize]| -> Option<Vec<i64>> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        (parts.len() == widths.len()
            && parts
                .iter()
                .zip(widths)
                .all(|(p, w)| p.len() == *w && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| parts.iter().map(|p| p.parse().unwrap_or(0)).collect())
    };
    let d = fields(date, &[4, 2, 2])?;
    let c = fields(clock, &[2, 2, 2])?;
    let (year, month, day) = (i32::try_from(d[0]).ok()?, d[1], d[2]);
    if month == 0 || day == 0 {
        return None;
    }
    let first = Date::from_calendar_date(year, Month::January, 1).ok()?;
    let date = add_months(first, month - 1)?.checked_add(Duration::days(day - 1))?;
    let at = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(UtcOffset::UTC);
    let seconds = c[0] * 3600 + c[1] * 60 + c[2];
    Some(at.unix_timestamp() + seconds - zone)
}

/// `^([RAN])?([+-]\d+y)?([+-]\d+M)?([+-]\d+w)?([+-]\d+d)?([+-]\d+h)?([+-]\d+m)?([+-]\d+s)?$`,
/// at least one part present.
fn parse_offset(v: &str) -> Option<Value> {
    let (base, mut rest) = match v.as_bytes().first()? {
        b'R' | b'r' => (Base::Current, &v[1..]),
        b'A' | b'a' => (Base::Added, &v[1..]),
        b'N' | b'n' => (Base::Now, &v[1..]),
        // Without a base, HCP counts from when the object was added.
        _ => (Base::Added, v),
    };
    // A base alone is an offset of nothing.
    let bare = rest.is_empty() && v.len() == 1;
    let mut terms = [0i64; 7];
    let mut next = 0;
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[1..=digits].parse().ok()?;
        let unit = *rest.as_bytes().get(digits + 1)?;
        let slot = b"yMwdhms".iter().position(|&u| u == unit)?;
        // In order, each unit once, each number up to 9,999.
        if slot < next || n > MAX_TERM {
            return None;
        }
        terms[slot] = sign * n;
        next = slot + 1;
        rest = &rest[digits + 2..];
    }
    (next > 0 || bare).then_some(Value::Offset(base, terms))
}

/// `date` plus `months` calendar months, the day kept or, past the month's end, its last day.
fn add_months(date: Date, months: i64) -> Option<Date> {
    let total = i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let last = month.length(year);
    Date::from_calendar_date(year, month, date.day().min(last)).ok()
}

/// What a value is resolved against.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: i64,
    /// When the object was added (for a new object, now).
    pub added: i64,
    /// The object's setting before this change (`Allowed` for a new object).
    pub current: Setting,
}

/// A tenant's retention classes: name → value (an `A+` offset or a special value).
pub type Classes = std::collections::BTreeMap<String, Value>;

/// The setting `value` gives an object in `ctx`.
pub fn resolve(value: &Value, ctx: &Context, classes: &Classes) -> Result<Setting, Refusal> {
    match value {
        Value::Special(s) => Ok(*s),
        Value::At(t) => Ok(Setting::Until(*t)),
        Value::Offset(base, terms) => {
            let from = match base {
                Base::Added => ctx.added,
                Base::Now => ctx.now,
                Base::Current => match ctx.current {
                    Setting::Until(t) => t,
                    _ => {
                        return Err(Refusal::NotAllowed(
                            "R counts from a retention date; the object has none".into(),
                        ))
                    }
                },
            };
            offset(from, terms)
                .map(Setting::Until)
                .ok_or_else(|| Refusal::Invalid("the offset leaves the calendar".into()))
        }
        Value::Class(_) => resolve(&expand(value.clone(), classes)?, ctx, classes),
    }
}

/// `value` with a class replaced by the class's value (an `A+` offset or a special value).
pub fn expand(value: Value, classes: &Classes) -> Result<Value, Refusal> {
    match value {
        Value::Class(name) => match classes.get(&name) {
            Some(Value::Class(_)) | None => Err(Refusal::Invalid(format!(
                "{name:?} is not a retention class of this namespace"
            ))),
            Some(class) => Ok(class.clone()),
        },
        v => Ok(v),
    }
}

/// `from` moved by an offset's terms: years and months by the calendar, the rest by length.
fn offset(from: i64, t: &[i64; 7]) -> Option<i64> {
    let at = OffsetDateTime::from_unix_timestamp(from).ok()?;
    let date = add_months(at.date(), t[0] * 12 + t[1])?;
    let moved = at
        .replace_date(date)
        .checked_add(Duration::weeks(t[2]))?
        .checked_add(Duration::days(t[3]))?
        .checked_add(Duration::hours(t[4]))?
        .checked_add(Duration::minutes(t[5]))?
        .checked_add(Duration::seconds(t[6]))?;
    Some(moved.unix_timestamp())
}

/// Whether HCP lets an object's setting go from `current` to `new` at time `now` (manual,
/// "Specifying retention settings"): `-1` never changes; a date in force is only lengthened
/// (or made `-1`); `0` is given only where the setting is `-2`; `-2` only where it is `0`;
/// an object not under retention takes any setting.
pub fn may_change(current: Setting, new: Setting, now: i64) -> Result<(), Refusal> {
    use Setting::*;
    let refuse = |why: &str| Err(Refusal::NotAllowed(why.into()));
    match (current, new) {
        (a, b) if a == b => Ok(()),
        (Prohibited, _) => refuse("a Deletion Prohibited setting never changes"),
        (Until(t), Until(u)) if t > now && u < t => {
            refuse("retention in force can be lengthened, never shortened")
        }
        (Until(t), Allowed | Unspecified) if t > now => {
            refuse("retention in force can be lengthened, never removed")
        }
        (Until(_), Allowed) => {
            refuse("Deletion Allowed is given only to a new object or one at -2")
        }
        (Until(_), Unspecified) => {
            refuse("Initial Unspecified is given only to a new object or one at 0")
        }
        (Allowed | Unspecified, _) | (Until(_), _) => Ok(()),
    }
}

/// The setting as HCP answers it in `x-hcp-retention`: `0`, `-1`, `-2`, or seconds since 1970.
pub fn answer(setting: Setting) -> String {
    match setting {
        Setting::Allowed => "0".into(),
        Setting::Prohibited => "-1".into(),
        Setting::Unspecified => "-2".into(),
        Setting::Until(t) => t.to_string(),
    }
}

/// How a setting is kept at an S3 Object Lock backend: a retain-until date (seconds), or none.
/// `-1` and `-2` are dates no retention reaches, told apart by their day. Ceph RGW keeps a
/// retain-until date in 32 bits of seconds (a later date wraps round to an earlier one), so
/// both are in February 2106 and dates from then on are not kept ([`keepable`]).
pub fn lock_until(setting: Setting) -> Option<i64> {
    match setting {
        Setting::Allowed => None,
        Setting::Until(t) => Some(t),
        Setting::Prohibited => Some(PROHIBITED_UNTIL),
        Setting::Unspecified => Some(UNSPECIFIED_UNTIL),
    }
}

/// The setting a backend's retain-until date (seconds) stands for ([`lock_until`] read back).
/// `-2` is its instant alone: a date the gateway did not write there — a bucket's default
/// retention ending that day, counted by the backend years after it was set — is a date in
/// force, which no `0` ends (read as `-2`, it could be made deletable at once).
pub fn setting_of(until: Option<i64>) -> Setting {
    match until {
        None => Setting::Allowed,
        Some(t) if t >= PROHIBITED_UNTIL => Setting::Prohibited,
        Some(UNSPECIFIED_UNTIL) => Setting::Unspecified,
        Some(t) => Setting::Until(t),
    }
}

/// S3 Object Lock's retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// What a new object is stored with at the backend: an Object Lock retention (mode and
/// retain-until date, seconds) and a legal hold, each where HCP's headers asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Protection {
    pub retention: Option<(LockMode, i64)>,
    pub hold: Option<bool>,
}

impl Protection {
    /// `setting` ([`keepable`]) and `hold` kept as Object Lock in a namespace of `mode`: a date or `-1` in the
    /// namespace's mode (enterprise: governance, which a privileged delete may bypass;
    /// compliance: compliance), `-2` always in governance (it must be able to become `0`), `0`
    /// as no retention.
    pub fn of(setting: Option<Setting>, hold: Option<bool>, compliance: bool) -> Protection {
        let retention = setting.and_then(|s| {
            let mode = match s {
                Setting::Unspecified => LockMode::Governance,
                _ if compliance => LockMode::Compliance,
                _ => LockMode::Governance,
            };
            lock_until(s).map(|until| (mode, until))
        });
        Protection { retention, hold }
    }
}

/// What a backend keeps for `setting` at `now`: a date already past is nothing to keep (HCP:
/// "If you set a time in the past, the object is immediately deletable"; S3 refuses a past
/// retain-until date).
pub fn kept_at(setting: Setting, now: i64) -> Setting {
    match setting {
        Setting::Until(t) if t <= now => Setting::Allowed,
        s => s,
    }
}

/// Whether a setting can be kept: a date before `-2`'s (6 February 2106, the last day every
/// Object Lock backend keeps).
pub fn keepable(setting: Setting) -> Result<Setting, Refusal> {
    match setting {
        Setting::Until(t) if t >= UNSPECIFIED_UNTIL => Err(Refusal::Invalid(
            "retention dates end before 2106-02-06 in this storage (use -1 for ever)".into(),
        )),
        Setting::Until(t) if t < 0 => Err(Refusal::Invalid("retention dates begin in 1970".into())),
        s => Ok(s),
    }
}

/// 2106-02-07T00:00:00Z, the last midnight of 32-bit seconds.
const PROHIBITED_UNTIL: i64 = 4_294_944_000;
/// 2106-02-06T00:00:00Z.
const UNSPECIFIED_UNTIL: i64 = PROHIBITED_UNTIL - 86_400;
/// The latest retain-until date a backend is asked to keep.
pub const LATEST_UNTIL: i64 = UNSPECIFIED_UNTIL - 1;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    }

    fn ctx(now: &str) -> Context {
        Context {
            now: at(now),
            added: at(now),
            current: Setting::Allowed,
        }
    }

    fn resolved(v: &str, c: &Context) -> Setting {
        resolve(&Value::parse(v).unwrap(), c, &Classes::new()).unwrap()
    }

    #[test]
    fn special_values_in_both_forms_and_any_case() {
        for (v, s) in [
            ("0", Setting::Allowed),
            ("-0", Setting::Allowed),
            ("Deletion Allowed", Setting::Allowed),
            ("deletion allowed", Setting::Allowed),
            ("-1", Setting::Prohibited),
            ("DELETION PROHIBITED", Setting::Prohibited),
            ("-2", Setting::Unspecified),
            ("Initial Unspecified", Setting::Unspecified),
        ] {
            assert_eq!(Value::parse(v), Ok(Value::Special(s)), "{v}");
        }
    }

    #[test]
    fn dates_as_the_manual_writes_them() {
        // "1450137600 … Tuesday, December 15, 2015, at 00:00:00 EST" (05:00 UTC).
        assert_eq!(Value::parse("1450137600"), Ok(Value::At(1_450_137_600)));
        assert_eq!(
            Value::parse("2015-11-16T14:27:20-0500"),
            Ok(Value::At(at("2015-11-16T19:27:20Z")))
        );
        // "if you specify 2015-11-33 … HCP changes it to 2015-12-03".
        assert_eq!(
            Value::parse("2015-11-33T00:00:00+0000"),
            Ok(Value::At(at("2015-12-03T00:00:00Z")))
        );
        assert_eq!(
            Value::parse("2030-01-01T00:00:00Z"),
            Ok(Value::At(at("2030-01-01T00:00:00Z")))
        );
        for bad in [
            "2015-11-16",
            "2015-11-16T14:27:20",
            "2015-11-16T14:27:20+05",
            "15-11-16T14:27:20+0500",
            "2015-00-16T14:27:20+0500",
            "-3",
            "",
            "soon",
        ] {
            assert!(
                matches!(Value::parse(bad), Err(Refusal::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn offsets_of_the_manual() {
        let c = ctx("2026-01-31T12:00:00Z");
        // "A+100y: 100 years past the time when the object was stored".
        assert_eq!(
            resolved("A+100y", &c),
            Setting::Until(at("2126-01-31T12:00:00Z"))
        );
        // "N+20d-5h: 20 days minus five hours past the current date and time".
        assert_eq!(
            resolved("N+20d-5h", &c),
            Setting::Until(at("2026-02-20T07:00:00Z"))
        );
        // "R+2y+1d extends the current retention period by two years and one day".
        let current = Context {
            current: Setting::Until(at("2027-03-01T00:00:00Z")),
            ..c
        };
        assert_eq!(
            resolved("R+2y+1d", &current),
            Setting::Until(at("2029-03-02T00:00:00Z"))
        );
        // Months by the calendar: a month after 31 January is the end of February.
        assert_eq!(
            resolved("A+1M", &c),
            Setting::Until(at("2026-02-28T12:00:00Z"))
        );
        assert_eq!(
            resolved("A+1y+2M+3d", &c),
            Setting::Until(at("2027-04-03T12:00:00Z"))
        );
        assert_eq!(
            resolved("A+6M", &c),
            Setting::Until(at("2026-07-31T12:00:00Z"))
        );
        assert_eq!(
            resolved("N+1w+1m+1s", &c),
            Setting::Until(at("2026-02-07T12:01:01Z"))
        );
        // Without a base: from when the object was added.
        assert_eq!(
            resolved("+5d", &c),
            Setting::Until(at("2026-02-05T12:00:00Z"))
        );
        // R needs a date to count from.
        let none = resolve(&Value::parse("R+1d").unwrap(), &c, &Classes::new());
        assert!(matches!(none, Err(Refusal::NotAllowed(_))));
    }

    #[test]
    fn offsets_outside_the_grammar_are_refused() {
        for bad in [
            "A+10000y", "A+1d+1y", "A+1d+2d", "A+y", "A1y", "X+1y", "A+1x", "A+1y x", "A++1y",
        ] {
            assert!(
                matches!(Value::parse(bad), Err(Refusal::Invalid(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            Value::parse("A+9999y"),
            Ok(Value::Offset(Base::Added, [9_999, 0, 0, 0, 0, 0, 0]))
        );
    }

    #[test]
    fn classes_resolve_to_their_value() {
        let mut classes = Classes::new();
        classes.insert("HlthReg-107".into(), Value::parse("A+21y").unwrap());
        classes.insert("Forever".into(), Value::parse("-1").unwrap());
        let c = ctx("2026-01-01T00:00:00Z");
        let class = |name: &str| resolve(&Value::parse(name).unwrap(), &c, &classes);
        assert_eq!(
            class("C+HlthReg-107"),
            Ok(Setting::Until(at("2047-01-01T00:00:00Z")))
        );
        assert_eq!(class("C+Forever"), Ok(Setting::Prohibited));
        assert!(matches!(class("C+Unknown"), Err(Refusal::Invalid(_))));
        assert!(matches!(Value::parse("C+"), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn changes_hcp_allows_and_refuses() {
        use Setting::*;
        let now = at("2026-06-01T00:00:00Z");
        let (past, soon, later) = (now - 86_400, now + 86_400, now + 10 * 86_400);
        let ok = |a, b| may_change(a, b, now).is_ok();
        // Lengthened, never shortened or removed while in force.
        assert!(ok(Until(soon), Until(later)));
        assert!(!ok(Until(later), Until(soon)));
        assert!(!ok(Until(soon), Allowed));
        assert!(!ok(Until(soon), Unspecified));
        assert!(ok(Until(soon), Prohibited));
        // Expired: any setting but 0.
        assert!(ok(Until(past), Until(soon)));
        assert!(!ok(Until(past), Unspecified));
        assert!(!ok(Until(past), Allowed));
        // -1 never changes.
        assert!(!ok(Prohibited, Until(later)));
        assert!(!ok(Prohibited, Allowed));
        assert!(ok(Prohibited, Prohibited));
        // -2 becomes anything; 0 becomes anything, and -2.
        for s in [Allowed, Prohibited, Until(soon), Until(past)] {
            assert!(ok(Unspecified, s), "{s:?}");
        }
        assert!(ok(Allowed, Unspecified));
        assert!(ok(Allowed, Until(soon)));
    }

    /// Oracle over random values and changes: an offset of positive terms never ends before its
    /// base, a written value parses back to itself, and no allowed change lets retention in
    /// force end sooner.
    #[test]
    fn no_value_or_change_shortens_retention() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(19);
        let now = at("2026-06-01T00:00:00Z");
        let setting = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..4) {
            0 => Setting::Allowed,
            1 => Setting::Prohibited,
            2 => Setting::Unspecified,
            _ => Setting::Until(now + rng.gen_range(-400_000_000..(LATEST_UNTIL - now))),
        };
        for _ in 0..20_000 {
            let terms: [i64; 7] = std::array::from_fn(|_| rng.gen_range(0..=MAX_TERM / 50));
            let written = format!(
                "N+{}y+{}M+{}w+{}d+{}h+{}m+{}s",
                terms[0], terms[1], terms[2], terms[3], terms[4], terms[5], terms[6]
            );
            let value = Value::parse(&written).unwrap();
            assert_eq!(value, Value::Offset(Base::Now, terms), "{written}");
            let c = ctx("2026-06-01T00:00:00Z");
            let Setting::Until(t) = resolve(&value, &c, &Classes::new()).unwrap() else {
                panic!("{written}")
            };
            assert!(t >= now, "{written}");
            let (a, b) = (setting(&mut rng), setting(&mut rng));
            if may_change(a, b, now).is_ok() {
                if let Setting::Until(t) = a {
                    if t > now {
                        assert!(
                            matches!(b, Setting::Prohibited)
                                || matches!(b, Setting::Until(u) if u >= t),
                            "{a:?} -> {b:?}"
                        );
                    }
                }
                assert!(a != Setting::Prohibited || b == a, "{a:?} -> {b:?}");
            }
            assert_eq!(setting_of(lock_until(a)), a);
        }
    }

    #[test]
    fn settings_survive_the_backend() {
        use Setting::*;
        for s in [Allowed, Prohibited, Unspecified, Until(1_450_137_600)] {
            assert_eq!(setting_of(lock_until(s)), s, "{s:?}");
        }
        assert_eq!(PROHIBITED_UNTIL, at("2106-02-07T00:00:00Z"));
        assert!(PROHIBITED_UNTIL <= i64::from(u32::MAX));
        // A default retention ending on `-2`'s day, not at its instant, is a date in force:
        // never made deletable by `0` (read as `-2` it was).
        let default_ending = at("2106-02-06T12:00:00Z");
        let read = setting_of(Some(default_ending));
        assert_eq!(read, Until(default_ending));
        let now = at("2030-01-01T00:00:00Z");
        assert!(may_change(read, Allowed, now).is_err());
        assert!(may_change(Unspecified, Allowed, now).is_ok());
        assert!(keepable(Until(LATEST_UNTIL)).is_ok());
        assert!(keepable(Until(LATEST_UNTIL + 1)).is_err());
        assert!(keepable(Prohibited).is_ok());
        assert!(keepable(Until(-1)).is_err());
        // Far outside the calendar: refused, never a panic.
        for far in [
            "9999-12-99T00:00:00Z",
            "N+9999y+9999M+9999w+9999d",
            "A-9999y",
        ] {
            let c = ctx("2026-01-01T00:00:00Z");
            let v = Value::parse(far);
            let resolved = v.and_then(|v| resolve(&v, &c, &Classes::new()));
            assert!(resolved.and_then(keepable).is_err(), "{far}");
        }
        assert_eq!(answer(Until(1_450_137_600)), "1450137600");
        assert_eq!(answer(Unspecified), "-2");
    }
}
