//! HCP's ACL grant headers (`x-amz-grant-*`), validated and translated for the backend.
//!
//! Grantees are `type=value` pairs, comma-separated; types are case-sensitive: `id`,
//! `emailAddress` (an HCP user name, or the literals `all_users` and `authenticated`) and `uri`
//! (the all-users and authenticated-users groups). The backend understands the groups; grants to
//! individual HCP users it cannot express, because every gateway user reaches it through the one
//! backend account: where the tenant keeps records they are taken out and returned, for the
//! gateway to keep (`request::acls`); elsewhere they are refused (501).

use http::HeaderValue;
use pingora::http::RequestHeader;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::acls::UserGrant;
use crate::request::authenticate::UserStore;
use crate::request::owners::Owner;

/// The grant headers S3 defines; no other `x-amz-grant-*` header is read or sent on.
pub const GRANT_HEADERS: &[&str] = &[
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// HCP allows at most 100 grants in an ACL.
const MAX_GRANTS: usize = 100;

fn invalid(message: String) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(message)
}

/// The ACL permissions a request's ACL headers grant to groups (a canned ACL's, or the grant
/// headers' once translated: grants to users are returned by [`translate_grants`]).
pub fn granted_in_headers(req: &RequestHeader) -> Vec<&'static str> {
    let canned = req
        .headers
        .get("x-amz-acl")
        .map(|v| v.as_bytes().trim_ascii());
    let mut granted = match canned {
        Some(b"public-read" | b"authenticated-read") => vec!["READ"],
        Some(b"public-read-write") => vec!["READ", "WRITE"],
        _ => Vec::new(),
    };
    for name in GRANT_HEADERS {
        if req.headers.contains_key(*name) {
            granted.push(header_permission(name));
        }
    }
    granted
}

/// The headers that set an ACL on a write: the canned ACL and the grant headers.
pub const ACL_HEADERS: &[&str] = &[
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

/// HCP: "If you include the same header multiple times in a single request, HCP uses only the
/// first one" — of a grant header given more than once, the first stays and the others are
/// gone before anything reads them (so that what is judged is what the backend is sent).
pub fn first_grants_only(req: &mut RequestHeader) {
    // (Most requests carry none: one pass over the names, no lookup.)
    let grants = |n: &http::HeaderName| n.as_str().starts_with("x-amz-grant-");
    if !req.headers.keys().any(grants) {
        return;
    }
    for name in GRANT_HEADERS {
        if req.headers.get_all(*name).iter().nth(1).is_none() {
            continue;
        }
        if let Some(first) = req.headers.get(*name).cloned() {
            req.insert_header(*name, first).expect("valid header");
        }
    }
}

/// Whether the request carries any grant header.
pub fn has_grant_headers(req: &RequestHeader) -> bool {
    super::carries_any(&req.headers, GRANT_HEADERS)
}

/// Splits a grant list at commas outside double quotes.
fn split_grantees(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect()
}

/// Who grants may name: the users, in which tenant, and whether grants to individual users
/// are kept (by the gateway, where the tenant keeps records and the operation may set them).
#[derive(Clone, Copy)]
pub struct Grantees<'a> {
    pub users: &'a UserStore,
    pub tenant: &'a str,
    pub keep_users: bool,
}

impl Grantees<'_> {
    /// The tenant's user named `name` (HCP: a user belongs to one tenant, and users of
    /// different tenants may share a name); none where two of the tenant's users share it —
    /// which one a grant named cannot be told.
    fn named(&self, name: &str) -> Option<Owner> {
        // (Most closely the tenant's first: configured for it, then at home there, then
        // belonging to it by its grants alone — a user of no tenant granted `*` belongs to
        // every tenant, and must not hide the tenant's own user of the name.)
        let users = self.users.named(name);
        let closeness = |u: &crate::request::authenticate::User| {
            if u.tenant.as_deref() == Some(self.tenant) {
                0
            } else if u.home_tenant.as_deref() == Some(self.tenant) {
                1
            } else {
                2
            }
        };
        let here: Vec<_> = users
            .iter()
            .filter(|u| self.of_tenant(u).is_some())
            .collect();
        let closest = here.iter().map(|u| closeness(u)).min()?;
        let mut nearest = here.iter().filter(|u| closeness(u) == closest);
        match (nearest.next(), nearest.next()) {
            (Some(one), None) => self.of_tenant(one),
            _ => None,
        }
    }

    /// The tenant's user whose user id is `id`.
    fn with_id(&self, id: &str) -> Option<Owner> {
        self.of_tenant(self.users.with_id(id)?)
    }

    fn of_tenant(&self, user: &crate::request::authenticate::User) -> Option<Owner> {
        let here = crate::request::authorize::belongs_to(user, self.tenant);
        here.then(|| Owner::of(user))
    }

    /// A grant to `user`: kept by the gateway, or refused where it cannot be kept.
    fn user(&self, user: Option<Owner>) -> Option<Result<Grantee, HcpError>> {
        let user = user?;
        Some(if self.keep_users {
            Ok(Grantee::User(user))
        } else {
            Err(HcpError::new(HcpCode::NotImplemented).with_message(
                "Grants to individual users cannot be expressed at this storage backend.",
            ))
        })
    }
}

/// A grantee, checked: a group the backend knows, or an HCP user the gateway keeps grants to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grantee {
    Group(&'static str),
    User(Owner),
}

/// The grantee a header type (`id`, `emailAddress`, `uri`) and value name: HCP's `all_users`
/// and `authenticated` are the S3 groups; a user of the tenant by user name or user id is a
/// user (501 where that cannot be kept); anything else is not a grantee (400).
fn grantee(kind: &str, value: &str, who: Grantees<'_>) -> Result<Grantee, HcpError> {
    let by_user = match kind {
        "uri" if value == ALL_USERS => return Ok(Grantee::Group(ALL_USERS)),
        "uri" if value == AUTHENTICATED_USERS => return Ok(Grantee::Group(AUTHENTICATED_USERS)),
        "emailAddress" if value == "all_users" => return Ok(Grantee::Group(ALL_USERS)),
        "emailAddress" if value == "authenticated" => {
            return Ok(Grantee::Group(AUTHENTICATED_USERS))
        }
        "emailAddress" => who.user(who.named(value)),
        "id" => who.user(who.with_id(value)),
        "uri" => None,
        other => {
            return Err(invalid(format!(
                "{other:?} is not a grantee type (id, emailAddress or uri)."
            )))
        }
    };
    by_user.unwrap_or_else(|| Err(invalid(format!("The grantee {value:?} is not known."))))
}

/// One grant header grantee, checked. A user name is percent-decoded (HCP: "percent-encode
/// non-ASCII characters and reserved special characters such as ampersands (&), commas (,)
/// and equal signs (=)"); one that decodes to no text is no user's.
fn header_grantee(grantee_text: &str, who: Grantees<'_>) -> Result<Grantee, HcpError> {
    let (kind, value) = grantee_text
        .split_once('=')
        .ok_or_else(|| invalid(format!("The grantee {grantee_text:?} is not type=value.")))?;
    let value = value.trim().trim_matches('"');
    let kind = kind.trim();
    if kind != "emailAddress" {
        return grantee(kind, value, who);
    }
    let decoded = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| invalid(format!("The grantee {value:?} is not known.")))?;
    grantee(kind, &decoded, who)
}

/// The ACL permission a grant header grants.
pub fn header_permission(name: &str) -> &'static str {
    match name {
        "x-amz-grant-read" => "READ",
        "x-amz-grant-write" => "WRITE",
        "x-amz-grant-read-acp" => "READ_ACP",
        "x-amz-grant-write-acp" => "WRITE_ACP",
        _ => "FULL_CONTROL",
    }
}

/// Validates every grant header and rewrites it in the backend's terms (groups); the grants
/// to users are taken out and returned (a header left without grantees is removed).
pub fn translate_grants(
    req: &mut RequestHeader,
    who: Grantees<'_>,
) -> Result<Vec<UserGrant>, HcpError> {
    let mut total = 0;
    let mut to_users = Vec::new();
    if !super::carries_any(&req.headers, GRANT_HEADERS) {
        return Ok(to_users);
    }
    for name in GRANT_HEADERS {
        let Some(value) = req.headers.get(*name) else {
            continue;
        };
        // A value that is not visible ASCII is refused, never passed on unread.
        let value = value
            .to_str()
            .map_err(|_| invalid(format!("The {name} header is not valid.")))?
            .to_string();
        let grantees = split_grantees(&value);
        total += grantees.len();
        if total > MAX_GRANTS {
            return Err(invalid(format!(
                "An ACL may hold at most {MAX_GRANTS} grants."
            )));
        }
        let mut checked: Vec<Grantee> = Vec::with_capacity(grantees.len());
        for g in grantees {
            let t = header_grantee(g, who)?;
            if checked.contains(&t) {
                return Err(invalid(format!(
                    "The grantee {g:?} is listed twice in {name}."
                )));
            }
            checked.push(t);
        }
        let mut groups = Vec::new();
        for g in checked {
            match g {
                Grantee::Group(uri) => groups.push(format!("uri=\"{uri}\"")),
                Grantee::User(user) => to_users.push(UserGrant {
                    grantee: user,
                    permission: header_permission(name).to_string(),
                }),
            }
        }
        if groups.is_empty() {
            req.remove_header(*name);
            continue;
        }
        let value = HeaderValue::from_str(&groups.join(", "))
            .map_err(|_| invalid("Invalid grant header.".into()))?;
        req.insert_header(*name, value).expect("valid header");
    }
    Ok(to_users)
}

const PERMISSIONS: &[&str] = &["FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP"];

#[derive(Default)]
struct PolicyGrant {
    xsi_type: String,
    id: Option<String>,
    email: Option<String>,
    uri: Option<String>,
    permission: Option<String>,
}

impl PolicyGrant {
    /// A field of the grant's `Grantee` (`backend`: as a backend's answer may name it).
    fn read_field(&mut self, field: &[u8], text: String, backend: bool) {
        match field {
            b"ID" => self.id = Some(text),
            b"EmailAddress" => self.email = Some(text),
            b"URI" => self.uri = Some(text),
            b"Canned" if backend && text == "Everyone" => {
                self.xsi_type = "Group".into();
                self.uri = Some(ALL_USERS.into());
            }
            _ => {}
        }
    }
}

fn malformed() -> HcpError {
    HcpError::new(HcpCode::MalformedXML)
}

/// Checks an `AccessControlPolicy` body (PUT `?acl`) by HCP's rules and translates HCP's grantee
/// forms. Returns the document to send instead, or `None` when the body can go on unchanged.
///
/// Grantees: groups (all users, authenticated users); `AmazonCustomerByEmail` with HCP's
/// `all_users` / `authenticated`, which become those groups; the document's own owner by
/// canonical id (every GET ACL → PUT ACL round trip holds it); the tenant's users by user name
/// (`AmazonCustomerByEmail`) or user id (`CanonicalUser`), taken out and returned where `who`
/// keeps them (else 501). Another canonical user would name a backend account, never a
/// gateway user: 400 `InvalidArgument`, as for grant headers.
///
/// `owner_ids` is the canonical id answers show for the tenant and, where known, the backend
/// account's: the document's owner must be the tenant's (any other id would name another
/// backend account; the backend's own id is never shown, so it is refused the same way), and
/// the tenant's id, as owner or grantee, is sent as the backend's own.
///
/// The document sent on is always built anew from what was read here, never the client's bytes,
/// so that the backend cannot read something else in it than the gateway did.
pub fn check_policy(
    body: &[u8],
    who: Grantees<'_>,
    owner_ids: (&str, Option<&str>),
) -> Result<Policy, HcpError> {
    let (mut owner, grants) = parse_policy(body, false)?;
    // HCP: a document naming another of the tenant's users as owner asks to make that user the
    // owner (where the gateway keeps owners); the document is then the new owner's.
    let new_owner = match &owner {
        Some((id, _)) if id != owner_ids.0 => Some(
            who.with_id(id)
                .filter(|_| who.keep_users)
                .ok_or_else(|| invalid(format!("The owner {id:?} is not this bucket's owner.")))?,
        ),
        _ => None,
    };
    let shown = new_owner.as_ref().map_or(owner_ids.0, |o| o.id.as_str());
    let ids = owner_ids.1.map(|backend| (shown, backend));
    if grants.len() > MAX_GRANTS {
        return Err(invalid(format!(
            "An ACL may hold at most {MAX_GRANTS} grants."
        )));
    }
    let mut out: Vec<(Option<&'static str>, &PolicyGrant)> = Vec::with_capacity(grants.len());
    let mut to_users: Vec<UserGrant> = Vec::new();
    for g in &grants {
        let shown_owner = owner.as_ref().map(|(o, _)| o.as_str());
        match grant_grantee(g, shown_owner, who)? {
            // (The document's owner — granted a permission twice too, as GET ?acl shows an
            // owner its records also name: the round trip holds —, or a group.)
            None => out.push((None, g)),
            Some(Grantee::Group(uri)) => out.push(once_each(&out, (Some(uri), g))?),
            Some(Grantee::User(user)) => {
                let grant = UserGrant {
                    grantee: user,
                    permission: g.permission.clone().unwrap_or_default(),
                };
                if to_users.contains(&grant) {
                    return Err(invalid(format!(
                        "The grantee {:?} is granted {} twice.",
                        grant.grantee.name, grant.permission
                    )));
                }
                to_users.push(grant);
            }
        }
    }
    let backend_id = |id: &str| -> Option<String> {
        ids.filter(|(shown, _)| *shown == id)
            .map(|(_, backend)| backend.to_string())
    };
    match owner.as_mut() {
        Some((id, name)) => {
            if let Some(backend) = backend_id(id) {
                *id = backend;
                *name = None;
            }
        }
        None => owner = ids.map(|(_, backend)| (backend.to_string(), None)),
    }
    // HCP: "Removing an ACL does not remove full control from the bucket or object owner" —
    // a document without the owner's own full control (all its grants to users, kept apart;
    // none; or a lesser one) keeps it at the backend, whose account owns everything the
    // gateway stores and must go on writing there.
    let owner_grant = PolicyGrant {
        xsi_type: "CanonicalUser".into(),
        id: owner.as_ref().map(|(id, _)| id.clone()),
        permission: Some("FULL_CONTROL".into()),
        ..PolicyGrant::default()
    };
    let full = |g: &PolicyGrant| g.permission.as_deref() == Some("FULL_CONTROL");
    if owner.is_some() && !out.iter().any(|(group, g)| group.is_none() && full(g)) {
        out.insert(0, (None, &owner_grant));
    }
    Ok(Policy {
        document: write_policy(&owner, &out, (&backend_id, false)),
        to_users,
        new_owner,
    })
}

/// A grant to a group, refused where the group is granted the permission already (HCP: "Two
/// grants of the same permission specify the same grantee": 400).
fn once_each<'g>(
    out: &[(Option<&'static str>, &PolicyGrant)],
    grant: (Option<&'static str>, &'g PolicyGrant),
) -> Result<(Option<&'static str>, &'g PolicyGrant), HcpError> {
    let (grantee, g) = grant;
    if out
        .iter()
        .any(|(u, o)| *u == grantee && o.permission == g.permission)
    {
        return Err(invalid(format!(
            "The group {} is granted {} twice.",
            grantee.unwrap_or_default(),
            g.permission.as_deref().unwrap_or_default()
        )));
    }
    Ok(grant)
}

/// An ACL document read by [`check_policy`].
#[derive(Debug)]
pub struct Policy {
    /// The document to send, built from what was read.
    pub document: Vec<u8>,
    /// Its grants to individual users, which the gateway keeps.
    pub to_users: Vec<UserGrant>,
    /// Another of the tenant's users the document names as owner: an owner change asked.
    pub new_owner: Option<Owner>,
}

/// One grant's permission and grantee checked: `None` for the owner's canonical id, else the
/// group or user it names.
fn grant_grantee(
    g: &PolicyGrant,
    owner: Option<&str>,
    who: Grantees<'_>,
) -> Result<Option<Grantee>, HcpError> {
    let permission = g.permission.as_deref().ok_or_else(malformed)?;
    if !PERMISSIONS.contains(&permission) {
        return Err(malformed().with_message(format!("{permission:?} is not an ACL permission.")));
    }
    match g.xsi_type.as_str() {
        "CanonicalUser" => {
            let id = g.id.as_deref().ok_or_else(malformed)?;
            if owner == Some(id) {
                return Ok(None);
            }
            grantee("id", id, who).map(Some)
        }
        "Group" => Ok(Some(grantee(
            "uri",
            g.uri.as_deref().ok_or_else(malformed)?,
            who,
        )?)),
        "AmazonCustomerByEmail" => Ok(Some(grantee(
            "emailAddress",
            g.email.as_deref().ok_or_else(malformed)?,
            who,
        )?)),
        other => Err(invalid(format!(
            "{other:?} is not a grantee type (CanonicalUser, AmazonCustomerByEmail or Group)."
        ))),
    }
}

/// The document sent on, written from what was checked; canonical ids the tenant shows are
/// replaced by the backend's own (`backend_id`); `named`: a canonical user grantee names its
/// display name too (an answer's, its id until the rewrite names it).
fn write_policy(
    owner: &PolicyOwner,
    grants: &[(Option<&'static str>, &PolicyGrant)],
    (backend_id, named): (&BackendId<'_>, bool),
) -> Vec<u8> {
    use quick_xml::escape::escape;
    let mut doc = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    if let Some((id, name)) = owner {
        doc.push_str(&format!("<Owner><ID>{}</ID>", escape(id.as_str())));
        if let Some(name) = name {
            doc.push_str(&format!(
                "<DisplayName>{}</DisplayName>",
                escape(name.as_str())
            ));
        }
        doc.push_str("</Owner>");
    }
    doc.push_str("<AccessControlList>");
    for (group, g) in grants {
        doc.push_str("<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ");
        match group {
            Some(uri) => doc.push_str(&format!("xsi:type=\"Group\"><URI>{uri}</URI>")),
            None => {
                let id = g.id.as_deref().unwrap_or_default();
                let id = backend_id(id).unwrap_or_else(|| id.to_string());
                doc.push_str(&format!(
                    "xsi:type=\"CanonicalUser\"><ID>{}</ID>",
                    escape(id.as_str())
                ));
                if named {
                    doc.push_str(&format!(
                        "<DisplayName>{}</DisplayName>",
                        escape(id.as_str())
                    ));
                }
            }
        }
        doc.push_str(&format!(
            "</Grantee><Permission>{}</Permission></Grant>",
            g.permission.as_deref().unwrap_or_default()
        ));
    }
    doc.push_str("</AccessControlList></AccessControlPolicy>");
    doc.into_bytes()
}

type PolicyOwner = Option<(String, Option<String>)>;

/// The backend's own canonical id for one the tenant shows (`None`: the id as it is).
type BackendId<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The owner's canonical id in an `AccessControlPolicy` (a backend's answer to GET `?acl`).
pub fn owner_id(body: &[u8]) -> Option<String> {
    parse_policy(body, true).ok()?.0.map(|(id, _)| id)
}

/// The grants to groups in an `AccessControlPolicy` (a backend's answer to GET `?acl`): each
/// group's URI and the ACL permission granted.
pub fn group_grants(body: &[u8]) -> Result<Vec<(String, String)>, HcpError> {
    let (_, grants) = parse_policy(body, true)?;
    Ok(grants
        .into_iter()
        .filter(|g| g.xsi_type == "Group")
        .filter_map(|g| Some((g.uri?, g.permission?)))
        .collect())
}

/// A backend's `AccessControlPolicy` as S3 writes one, to be answered as HCP's: Huawei OBS's
/// own dialect names all users `<Grantee><Canned>Everyone</Canned></Grantee>`, gives grantees
/// no type and says whether an ACL passes to the bucket's objects (`<Delivered>`) — none of
/// which an S3 client reads. Written from what was read: owner, and grants to canonical users
/// and to HCP's two groups (a grant to any other group is no HCP grant and is left out).
pub fn as_s3_policy(body: &[u8]) -> Result<Vec<u8>, HcpError> {
    let (mut owner, grants) = parse_policy(body, true)?;
    // (OBS names its owner by id alone: named, the display name is the tenant's once rewritten.)
    if let Some((id, name @ None)) = owner.as_mut() {
        *name = Some(id.clone());
    }
    let known = |uri: &str| {
        [ALL_USERS, AUTHENTICATED_USERS]
            .into_iter()
            .find(|g| *g == uri)
    };
    let written: Vec<(Option<&'static str>, &PolicyGrant)> = grants
        .iter()
        .filter_map(|g| match (g.uri.as_deref(), g.id.as_deref()) {
            (Some(uri), _) if g.xsi_type == "Group" => Some((Some(known(uri)?), g)),
            (None, Some(_)) => Some((None, g)),
            _ => None,
        })
        .collect();
    // (Grantees named as answers name them: the rewrite shows whose they are.)
    Ok(write_policy(&owner, &written, (&|_| None, true)))
}

/// Reads an `AccessControlPolicy`: its owner and its grants. Anything not well-formed, or not
/// that document, is `MalformedXML`. `backend`: a backend's answer, where OBS's own dialect
/// names all users `<Canned>Everyone</Canned>` (a client's document naming them so is HCP's,
/// which has no such grantee).
fn parse_policy(body: &[u8], backend: bool) -> Result<(PolicyOwner, Vec<PolicyGrant>), HcpError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut owner_id = None;
    let mut owner_name = None;
    let mut grants: Vec<PolicyGrant> = Vec::new();
    let mut has_list = false;
    let mut has_owner = false;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                match (path.len(), name.as_slice()) {
                    (0, b"AccessControlPolicy") => {}
                    (0, _) => return Err(malformed()),
                    (1, b"AccessControlList") => has_list = true,
                    (1, b"Owner") => has_owner = true,
                    // (A grant only in the list: one elsewhere is no document's.)
                    (2, b"Grant") if path[1] == b"AccessControlList" => {
                        grants.push(PolicyGrant::default());
                    }
                    (_, b"Grant") => return Err(malformed()),
                    (3, b"Grantee") if path[2] == b"Grant" => {
                        let grant = grants.last_mut().ok_or_else(malformed)?;
                        for a in e.attributes().flatten() {
                            if a.key.local_name().as_ref() == b"type" {
                                // One type: a second would let the backend read another.
                                if !grant.xsi_type.is_empty() {
                                    return Err(malformed());
                                }
                                grant.xsi_type = a
                                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .map_err(|_| malformed())?
                                    .into_owned();
                            }
                        }
                    }
                    _ => {}
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().map_err(|_| malformed())?),
            Event::GeneralRef(r) if !crate::hcp::xml::push_reference(&mut text, &r) => {
                return Err(malformed())
            }
            Event::End(_) => {
                let text = std::mem::take(&mut text);
                let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match names.as_slice() {
                    [_, b"Owner", b"ID"] => owner_id = Some(text),
                    [_, b"Owner", b"DisplayName"] => owner_name = Some(text),
                    [_, b"AccessControlList", b"Grant", b"Permission"] => {
                        grants.last_mut().ok_or_else(malformed)?.permission = Some(text)
                    }
                    [_, b"AccessControlList", b"Grant", b"Grantee", field] => {
                        let grant = grants.last_mut().ok_or_else(malformed)?;
                        grant.read_field(field, text, backend);
                    }
                    _ => {}
                }
                path.pop();
            }
            Event::Empty(e)
                if path.len() == 1 && e.local_name().as_ref() == b"AccessControlList" =>
            {
                has_list = true
            }
            Event::Empty(e) if path.len() == 1 && e.local_name().as_ref() == b"Owner" => {
                has_owner = true
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // (HCP: "The ID element is required in the context of the Owner element" — of a client's
    // document: MinIO answers every ACL with an empty owner.)
    let owner_unnamed = !backend && has_owner && owner_id.as_deref().is_none_or(str::is_empty);
    if !path.is_empty() || !has_list || owner_unnamed {
        return Err(malformed());
    }
    Ok((owner_id.map(|id| (id, owner_name)), grants))
}

/// HCP ignores ACL headers on upload-part and complete; they are not sent on.
pub fn strip_acl_headers(req: &mut RequestHeader) {
    req.remove_header("x-amz-acl");
    for name in GRANT_HEADERS {
        req.remove_header(*name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::hcp_access_key;
    use crate::request::authenticate::User;

    /// A name users of different tenants share names each tenant's own; one two users of
    /// the same tenant share names neither (whichever the configuration listed first).
    #[test]
    fn a_shared_user_name_names_the_tenant_s_own_user() {
        let user = |key: &str, tenant: &str| User {
            tenant: Some(tenant.to_string()),
            ..User::new(Some("ops".into()), key.into(), "s".into(), true, vec![])
        };
        let users = UserStore::new(vec![user("AK-A", "a"), user("AK-B", "b")]);
        for (tenant, key) in [("a", "AK-A"), ("b", "AK-B")] {
            let who = Grantees {
                users: &users,
                tenant,
                keep_users: true,
            };
            let expected = Owner::of(users.get(key).unwrap());
            assert_eq!(
                grantee("emailAddress", "ops", who).unwrap(),
                Grantee::User(expected)
            );
        }
        // A user of no tenant, granted every tenant, does not hide the tenant's own.
        let everywhere = User {
            grants: vec![crate::request::authorize::Grant::new(
                "*",
                "*",
                vec![crate::request::authorize::Permission::Read],
            )],
            ..User::new(Some("ops".into()), "AK-G".into(), "s".into(), true, vec![])
        };
        let users = UserStore::new(vec![user("AK-A", "a"), everywhere]);
        let who = Grantees {
            users: &users,
            tenant: "a",
            keep_users: true,
        };
        let own = Owner::of(users.get("AK-A").unwrap());
        assert_eq!(
            grantee("emailAddress", "ops", who).unwrap(),
            Grantee::User(own)
        );
        let twice = UserStore::new(vec![user("AK-A", "a"), user("AK-C", "a")]);
        let who = Grantees {
            users: &twice,
            tenant: "a",
            keep_users: true,
        };
        assert!(grantee("emailAddress", "ops", who).is_err());
    }

    /// lgreen, configured for `tenant` or none, at home in `home`.
    fn lgreen_in(tenant: Option<&str>, home: Option<&str>) -> UserStore {
        UserStore::new(vec![User {
            tenant: tenant.map(str::to_string),
            home_tenant: home.map(str::to_string),
            ..User::new(
                Some("lgreen".into()),
                hcp_access_key("lgreen"),
                "s".into(),
                true,
                vec![],
            )
        }])
    }

    /// lgreen, a user of tenant `t` (at home there, as the only tenant's users are).
    fn users() -> UserStore {
        lgreen_in(None, Some("t"))
    }

    static USERS: std::sync::LazyLock<UserStore> = std::sync::LazyLock::new(users);

    /// Grantees where grants to users are not kept (`keep_users`: where they are).
    fn who() -> Grantees<'static> {
        Grantees {
            users: &USERS,
            tenant: "t",
            keep_users: false,
        }
    }

    fn run(value: &str) -> Result<String, HcpError> {
        let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
        req.insert_header("x-amz-grant-read", value).unwrap();
        translate_grants(&mut req, who())?;
        Ok(req
            .headers
            .get("x-amz-grant-read")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string())
    }

    #[test]
    fn acl_headers_are_the_canned_acl_and_the_grant_headers() {
        assert_eq!(
            (ACL_HEADERS[0], &ACL_HEADERS[1..]),
            ("x-amz-acl", GRANT_HEADERS)
        );
    }

    #[test]
    fn hcp_grantee_forms_become_groups() {
        assert_eq!(
            run("emailAddress=all_users").unwrap(),
            format!("uri=\"{ALL_USERS}\"")
        );
        assert_eq!(
            run("emailAddress=\"authenticated\", uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"").unwrap(),
            format!("uri=\"{AUTHENTICATED_USERS}\", uri=\"{ALL_USERS}\"")
        );
    }

    #[test]
    fn invalid_grants() {
        for (value, code) in [
            ("mail=x", HcpCode::InvalidArgument),
            ("EmailAddress=all_users", HcpCode::InvalidArgument),
            ("emailAddress=nobody", HcpCode::InvalidArgument),
            ("id=123", HcpCode::InvalidArgument),
            ("uri=http://example.com/group", HcpCode::InvalidArgument),
            (
                "emailAddress=all_users, emailAddress=all_users",
                HcpCode::InvalidArgument,
            ),
            ("emailAddress=lgreen", HcpCode::NotImplemented),
            // Not visible ASCII: refused, never passed on unread.
            (
                "emailAddress=\"all_users\", id=\"é\"",
                HcpCode::InvalidArgument,
            ),
        ] {
            assert_eq!(run(value).unwrap_err().code, code, "{value}");
        }
        let many = vec!["uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""; 101].join(",");
        assert_eq!(run(&many).unwrap_err().code, HcpCode::InvalidArgument);
    }

    #[test]
    fn grants_to_users_are_taken_out_where_kept() {
        let keep = Grantees {
            keep_users: true,
            ..who()
        };
        let lgreen = Owner::of(USERS.get(&hcp_access_key("lgreen")).unwrap());
        let mut req = RequestHeader::build("PUT", b"/b/k?acl", None).unwrap();
        req.insert_header(
            "x-amz-grant-read",
            format!("emailAddress=\"lgreen\", uri=\"{ALL_USERS}\""),
        )
        .unwrap();
        req.insert_header("x-amz-grant-write-acp", format!("id={}", lgreen.id))
            .unwrap();
        let users = translate_grants(&mut req, keep).unwrap();
        assert_eq!(
            users,
            [
                UserGrant {
                    grantee: lgreen.clone(),
                    permission: "READ".into()
                },
                UserGrant {
                    grantee: lgreen.clone(),
                    permission: "WRITE_ACP".into()
                }
            ]
        );
        assert_eq!(
            req.headers.get("x-amz-grant-read").unwrap(),
            &format!("uri=\"{ALL_USERS}\"")
        );
        assert!(!req.headers.contains_key("x-amz-grant-write-acp"));
        // A user of another tenant is no grantee here.
        let elsewhere = Grantees {
            tenant: "t",
            ..keep
        };
        let other_tenant = lgreen_in(Some("other"), Some("other"));
        let mut req = RequestHeader::build("PUT", b"/b/k?acl", None).unwrap();
        req.insert_header("x-amz-grant-read", "emailAddress=lgreen")
            .unwrap();
        let refused = translate_grants(
            &mut req,
            Grantees {
                users: &other_tenant,
                ..elsewhere
            },
        );
        assert_eq!(refused.unwrap_err().code, HcpCode::InvalidArgument);
        // In a policy: by user name and by user id, twice the same is refused.
        let body = policy(&format!(
            "{}{}",
            grant("AmazonCustomerByEmail", "EmailAddress", "lgreen", "READ"),
            grant("CanonicalUser", "ID", &lgreen.id, "WRITE")
        ));
        let read = check_policy(body.as_bytes(), keep, ("own&er", None)).unwrap();
        let (doc, users) = (read.document, read.to_users);
        assert_eq!(users.len(), 2);
        assert!(!String::from_utf8(doc).unwrap().contains("lgreen"));
        let twice = policy(&format!(
            "{}{}",
            grant("AmazonCustomerByEmail", "EmailAddress", "lgreen", "READ"),
            grant("CanonicalUser", "ID", &lgreen.id, "READ")
        ));
        assert_eq!(
            check_policy(twice.as_bytes(), keep, ("own&er", None))
                .unwrap_err()
                .code,
            HcpCode::InvalidArgument
        );
    }

    fn policy(grants: &str) -> String {
        format!(
            "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>own&amp;er</ID><DisplayName>o</DisplayName></Owner><AccessControlList>{grants}</AccessControlList></AccessControlPolicy>"
        )
    }

    fn grant(xsi_type: &str, field: &str, value: &str, permission: &str) -> String {
        format!(
            "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"{xsi_type}\"><{field}>{value}</{field}></Grantee><Permission>{permission}</Permission></Grant>"
        )
    }

    /// OBS's own dialect names all users `Canned` Everyone: a backend's ACL read so grants
    /// them (the gateway's judgement, what an edit keeps), a client's never (HCP has no such
    /// grantee: no grant to all users is read from it).
    #[test]
    fn obs_s_everyone_is_all_users_only_from_a_backend() {
        let native = policy(
            "<Grant><Grantee><Canned>Everyone</Canned></Grantee><Permission>READ</Permission></Grant>",
        );
        let read = group_grants(native.as_bytes()).unwrap();
        assert_eq!(read, [(ALL_USERS.to_string(), "READ".to_string())]);
        let s3 = String::from_utf8(as_s3_policy(native.as_bytes()).unwrap()).unwrap();
        assert!(
            s3.contains(&format!("xsi:type=\"Group\"><URI>{ALL_USERS}</URI>")),
            "{s3}"
        );
        assert!(!s3.contains("Canned"), "{s3}");
        let sent = check_policy(native.as_bytes(), who(), ("own&er", None));
        let sent = sent.map(|p| String::from_utf8(p.document).unwrap());
        assert!(!sent.is_ok_and(|d| d.contains(ALL_USERS)));
    }

    #[test]
    fn policies_are_sent_as_the_gateway_read_them() {
        let body = policy(&format!(
            "{}{}",
            grant("CanonicalUser", "ID", "own&amp;er", "FULL_CONTROL"),
            grant("Group", "URI", ALL_USERS, "READ")
        ));
        let out = check_policy(body.as_bytes(), who(), ("own&er", None))
            .unwrap()
            .document;
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains(&format!("<URI>{ALL_USERS}</URI>")), "{text}");
        // What the gateway sends reads back as itself.
        assert_eq!(
            check_policy(&out, who(), ("own&er", None))
                .unwrap()
                .document,
            out
        );
        // A grantee typed twice is not guessed at.
        let twice = policy(&format!(
            "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\" type=\"Group\"><ID>other</ID><URI>{ALL_USERS}</URI></Grantee><Permission>FULL_CONTROL</Permission></Grant>"
        ));
        assert_eq!(
            check_policy(twice.as_bytes(), who(), ("own&er", None))
                .unwrap_err()
                .code,
            HcpCode::MalformedXML
        );
    }

    #[test]
    fn hcp_grantees_in_a_policy_become_groups() {
        let body = policy(&format!(
            "{}{}",
            grant("CanonicalUser", "ID", "own&amp;er", "FULL_CONTROL"),
            grant(
                "AmazonCustomerByEmail",
                "EmailAddress",
                "authenticated",
                "READ"
            )
        ));
        let out = check_policy(body.as_bytes(), who(), ("own&er", None))
            .unwrap()
            .document;
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("<Owner><ID>own&amp;er</ID><DisplayName>o</DisplayName></Owner>"),
            "{out}"
        );
        assert!(out.contains("xsi:type=\"CanonicalUser\"><ID>own&amp;er</ID></Grantee><Permission>FULL_CONTROL</Permission>"), "{out}");
        assert!(out.contains(&format!("xsi:type=\"Group\"><URI>{AUTHENTICATED_USERS}</URI></Grantee><Permission>READ</Permission>")), "{out}");
        // What the gateway sends is itself a policy in the backend's terms.
        assert_eq!(
            check_policy(out.as_bytes(), who(), ("own&er", None))
                .unwrap()
                .document,
            out.as_bytes()
        );
    }

    #[test]
    fn invalid_policies() {
        let many = grant("Group", "URI", ALL_USERS, "READ").repeat(101);
        for (body, code) in [
            ("not xml <".to_string(), HcpCode::MalformedXML),
            ("<Other/>".to_string(), HcpCode::MalformedXML),
            (
                "<AccessControlPolicy><Owner><ID>o</ID></Owner></AccessControlPolicy>".to_string(),
                HcpCode::MalformedXML,
            ),
            (
                policy(&grant("Group", "URI", ALL_USERS, "EVERYTHING")),
                HcpCode::MalformedXML,
            ),
            (
                policy(&grant("Group", "URI", "http://example.com/g", "READ")),
                HcpCode::InvalidArgument,
            ),
            (
                policy(&grant("CanonicalUser", "ID", "someone-else", "READ")),
                HcpCode::InvalidArgument,
            ),
            (
                policy(&grant(
                    "AmazonCustomerByEmail",
                    "EmailAddress",
                    "nobody",
                    "READ",
                )),
                HcpCode::InvalidArgument,
            ),
            (
                policy(&grant(
                    "AmazonCustomerByEmail",
                    "EmailAddress",
                    "lgreen",
                    "READ",
                )),
                HcpCode::NotImplemented,
            ),
            (
                policy(&grant("Robot", "ID", "r", "READ")),
                HcpCode::InvalidArgument,
            ),
            (policy(&many), HcpCode::InvalidArgument),
            // (HCP: "Two grants of the same permission specify the same grantee".)
            (
                policy(&grant("Group", "URI", ALL_USERS, "READ").repeat(2)),
                HcpCode::InvalidArgument,
            ),
            // (A grant outside the list is no ACL document's: HCP's "malformed".)
            (
                format!(
                    "<AccessControlPolicy><Owner><ID>own&amp;er</ID>{}</Owner><AccessControlList/></AccessControlPolicy>",
                    grant("Group", "URI", ALL_USERS, "READ")
                ),
                HcpCode::MalformedXML,
            ),
            (
                format!(
                    "<AccessControlPolicy><Owner><ID>own&amp;er</ID></Owner><Other>{}</Other><AccessControlList/></AccessControlPolicy>",
                    grant("Group", "URI", ALL_USERS, "READ")
                ),
                HcpCode::MalformedXML,
            ),
        ] {
            assert_eq!(
                check_policy(body.as_bytes(), who(), ("own&er", None))
                    .unwrap_err()
                    .code,
                code,
                "{body}"
            );
        }
    }

    /// An owner named without its ID (HCP: "The ID element is required in the context of the
    /// Owner element") is refused in a client's document; MinIO's answer, whose owner is empty,
    /// is read.
    #[test]
    fn owners_are_named_by_id_and_granted_once() {
        let minio = "<AccessControlPolicy><Owner><ID></ID><DisplayName></DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><Type>CanonicalUser</Type></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>";
        assert_eq!(group_grants(minio.as_bytes()).unwrap(), []);
        assert!(as_s3_policy(minio.as_bytes()).is_ok());
        let refused = |body: &str| {
            let checked = check_policy(body.as_bytes(), who(), ("own&er", None));
            checked.unwrap_err().code
        };
        for owner in [
            "<Owner><DisplayName>x</DisplayName></Owner>",
            "<Owner/>",
            "<Owner><ID></ID></Owner>",
        ] {
            let body =
                format!("<AccessControlPolicy>{owner}<AccessControlList/></AccessControlPolicy>");
            assert_eq!(refused(&body), HcpCode::MalformedXML, "{owner}");
        }
        // (The owner granted twice is read: GET ?acl shows the owner's own grant beside one
        // its records name, and what it answers is put back as it is.)
        let twice = policy(&grant("CanonicalUser", "ID", "own&amp;er", "READ").repeat(2));
        assert!(check_policy(twice.as_bytes(), who(), ("own&er", None)).is_ok());
    }

    /// The tenant's canonical id, as answers show it, goes to the backend as the backend
    /// account's; an owner that is neither is another account and is refused.
    #[test]
    fn owners_are_the_tenant_or_refused() {
        let doc = |owner: &str| {
            format!("<AccessControlPolicy><Owner><ID>{owner}</ID><DisplayName>t</DisplayName></Owner><AccessControlList>{}{}</AccessControlList></AccessControlPolicy>",
                grant("CanonicalUser", "ID", owner, "FULL_CONTROL"),
                grant("Group", "URI", "http://acs.amazonaws.com/groups/global/AllUsers", "READ"))
        };
        let out = check_policy(
            doc("shown").as_bytes(),
            who(),
            ("shown", Some("backend-id")),
        )
        .unwrap()
        .document;
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("<Owner><ID>backend-id</ID></Owner>"), "{out}");
        assert!(
            out.contains("<ID>backend-id</ID></Grantee><Permission>FULL_CONTROL"),
            "{out}"
        );
        assert!(!out.contains("shown"), "{out}");
        // Any other owner is another account — the backend's own id too, which answers never
        // show: refused alike, so that guessing it tells nothing.
        for other in ["alt-user", "backend-id"] {
            for known in [None, Some("backend-id")] {
                assert_eq!(
                    check_policy(doc(other).as_bytes(), who(), ("shown", known))
                        .unwrap_err()
                        .code,
                    HcpCode::InvalidArgument
                );
            }
        }
        // Without an owner the document keeps the backend's.
        let no_owner =
            format!(
            "<AccessControlPolicy><AccessControlList>{}</AccessControlList></AccessControlPolicy>",
            grant("Group", "URI", "http://acs.amazonaws.com/groups/global/AllUsers", "READ")
        );
        let out = check_policy(no_owner.as_bytes(), who(), ("shown", Some("backend-id")))
            .unwrap()
            .document;
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("<Owner><ID>backend-id</ID></Owner>"), "{out}");
        // The owner keeps full control however the grants were taken out (HCP), also where
        // the document gave it less.
        assert!(
            out.contains("<ID>backend-id</ID></Grantee><Permission>FULL_CONTROL"),
            "{out}"
        );
        let lesser = format!(
            "<AccessControlPolicy><Owner><ID>shown</ID></Owner><AccessControlList>{}</AccessControlList></AccessControlPolicy>",
            grant("CanonicalUser", "ID", "shown", "READ")
        );
        let out = check_policy(lesser.as_bytes(), who(), ("shown", Some("backend-id")))
            .unwrap()
            .document;
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("<ID>backend-id</ID></Grantee><Permission>FULL_CONTROL")
                && out.contains("<ID>backend-id</ID></Grantee><Permission>READ"),
            "{out}"
        );
    }

    /// Another of the tenant's users as owner, where users are kept: an owner change asked,
    /// the document sent as the backend's own (its grants to the new owner too); a user of
    /// another tenant, or where users are not kept, is refused as any other owner.
    #[test]
    fn another_user_as_owner_is_a_change_asked() {
        let doc = |owner: &str| {
            format!("<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList>{}</AccessControlList></AccessControlPolicy>",
                grant("CanonicalUser", "ID", owner, "FULL_CONTROL"))
        };
        let lgreen = Owner::of(&USERS.named("lgreen")[0]);
        let keep = Grantees {
            keep_users: true,
            ..who()
        };
        let read = check_policy(
            doc(&lgreen.id).as_bytes(),
            keep,
            ("shown", Some("backend-id")),
        );
        let read = read.unwrap();
        assert_eq!(read.new_owner, Some(lgreen.clone()));
        let out = String::from_utf8(read.document).unwrap();
        assert!(out.contains("<Owner><ID>backend-id</ID></Owner>"), "{out}");
        assert!(!out.contains(&lgreen.id), "{out}");
        let same = check_policy(doc("shown").as_bytes(), keep, ("shown", Some("backend-id")));
        assert_eq!(same.unwrap().new_owner, None);
        for (users, keep_users) in [(&*USERS, false), (&lgreen_in(Some("o"), Some("o")), true)] {
            let who = Grantees {
                users,
                keep_users,
                ..keep
            };
            let refused = check_policy(doc(&lgreen.id).as_bytes(), who, ("shown", None));
            assert_eq!(refused.unwrap_err().code, HcpCode::InvalidArgument);
        }
    }
}
