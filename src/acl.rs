//! HCP's ACL grant headers (`x-amz-grant-*`), validated and translated for the backend.
//!
//! Grantees are `type=value` pairs, comma-separated; types are case-sensitive: `id`,
//! `emailAddress` (an HCP user name, or the literals `all_users` and `authenticated`) and `uri`
//! (the all-users and authenticated-users groups). The backend understands the groups; grants to
//! individual HCP users it cannot express, because every gateway user reaches it through the one
//! backend account.

use http::HeaderValue;
use pingora::http::RequestHeader;

use crate::auth::UserStore;
use crate::config::hcp_access_key;
use crate::errors::{HcpCode, HcpError};

const GRANT_HEADERS: &[&str] = &[
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// HCP allows at most 100 grants in an ACL.
const MAX_GRANTS: usize = 100;

fn invalid(message: String) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(message)
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

/// One grantee in the backend's terms.
fn translate_grantee(grantee: &str, users: &UserStore) -> Result<String, HcpError> {
    let (kind, value) = grantee
        .split_once('=')
        .ok_or_else(|| invalid(format!("The grantee {grantee:?} is not type=value.")))?;
    let value = value.trim().trim_matches('"');
    match kind.trim() {
        "uri" if value == ALL_USERS || value == AUTHENTICATED_USERS => {
            Ok(format!("uri=\"{value}\""))
        }
        "emailAddress" if value == "all_users" => Ok(format!("uri=\"{ALL_USERS}\"")),
        "emailAddress" if value == "authenticated" => Ok(format!("uri=\"{AUTHENTICATED_USERS}\"")),
        "emailAddress" if users.get(&hcp_access_key(value)).is_some() => Err(HcpError::new(
            HcpCode::NotImplemented,
        )
        .with_message("Grants to individual users cannot be expressed at this storage backend.")),
        "id" | "emailAddress" | "uri" => {
            Err(invalid(format!("The grantee {value:?} is not known.")))
        }
        other => Err(invalid(format!(
            "{other:?} is not a grantee type (id, emailAddress or uri)."
        ))),
    }
}

/// Validates every grant header and rewrites it in the backend's terms.
pub fn translate_grants(req: &mut RequestHeader, users: &UserStore) -> Result<(), HcpError> {
    let mut total = 0;
    for name in GRANT_HEADERS {
        let Some(value) = req
            .headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        else {
            continue;
        };
        let grantees = split_grantees(&value);
        total += grantees.len();
        if total > MAX_GRANTS {
            return Err(invalid(format!(
                "An ACL may hold at most {MAX_GRANTS} grants."
            )));
        }
        let mut translated: Vec<String> = Vec::with_capacity(grantees.len());
        for g in grantees {
            let t = translate_grantee(g, users)?;
            if translated.contains(&t) {
                return Err(invalid(format!(
                    "The grantee {g:?} is listed twice in {name}."
                )));
            }
            translated.push(t);
        }
        let value = HeaderValue::from_str(&translated.join(", "))
            .map_err(|_| invalid("Invalid grant header.".into()))?;
        req.insert_header(*name, value).expect("valid header");
    }
    Ok(())
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
    use crate::auth::User;

    fn users() -> UserStore {
        UserStore::new(vec![User::new(
            Some("lgreen".into()),
            hcp_access_key("lgreen"),
            "s".into(),
            true,
            vec![],
        )])
    }

    fn run(value: &str) -> Result<String, HcpError> {
        let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
        req.insert_header("x-amz-grant-read", value).unwrap();
        translate_grants(&mut req, &users())?;
        Ok(req
            .headers
            .get("x-amz-grant-read")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string())
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
        ] {
            assert_eq!(run(value).unwrap_err().code, code, "{value}");
        }
        let many = vec!["uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""; 101].join(",");
        assert_eq!(run(&many).unwrap_err().code, HcpCode::InvalidArgument);
    }
}
