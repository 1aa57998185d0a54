//! ACLs the store keeps for buckets and object versions: what a canned ACL, grant headers or an
//! `AccessControlPolicy` document said, as a list of grants, answered back as S3's document.
//! The store has one account (the gateway's), so the owner is always the same; the gateway
//! decides who may do what and shows its own users in place of this account.

use s3s::dto::{self, Type};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};

/// The one account every bucket and object belongs to here.
pub const OWNER_ID: &str = "store";

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";
const PERMISSIONS: &[&str] = &["FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Grantee {
    /// A canonical user id.
    Id(String),
    /// A group's URI.
    Group(String),
    Email(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: String,
}

pub fn owner() -> dto::Owner {
    dto::Owner {
        id: Some(OWNER_ID.into()),
        display_name: Some(OWNER_ID.into()),
    }
}

fn grant(grantee: Grantee, permission: &str) -> Grant {
    Grant {
        grantee,
        permission: permission.into(),
    }
}

/// What a canned ACL grants (S3's "Canned ACL" table; the bucket owner is the object owner
/// here, so `bucket-owner-*` add nothing to the owner's full control).
pub fn canned(name: &str) -> S3Result<Vec<Grant>> {
    let mut grants = vec![grant(Grantee::Id(OWNER_ID.into()), "FULL_CONTROL")];
    let group = |uri: &str, p: &str| grant(Grantee::Group(uri.into()), p);
    match name {
        "private" | "bucket-owner-read" | "bucket-owner-full-control" | "aws-exec-read" => {}
        "public-read" => grants.push(group(ALL_USERS, "READ")),
        "public-read-write" => {
            grants.push(group(ALL_USERS, "READ"));
            grants.push(group(ALL_USERS, "WRITE"));
        }
        "authenticated-read" => grants.push(group(AUTHENTICATED_USERS, "READ")),
        "log-delivery-write" => {
            grants.push(group(LOG_DELIVERY, "WRITE"));
            grants.push(group(LOG_DELIVERY, "READ_ACP"));
        }
        other => return Err(s3_error!(InvalidArgument, "{other} is not a canned ACL.")),
    }
    Ok(grants)
}

/// The grants of `x-amz-grant-*` headers, by permission: `type="value"` pairs separated by
/// commas, types `id`, `uri` and `emailAddress`.
pub fn from_headers(headers: &[(&str, Option<&str>)]) -> S3Result<Option<Vec<Grant>>> {
    let mut grants = Vec::new();
    let mut any = false;
    for (permission, value) in headers {
        let Some(value) = value else { continue };
        any = true;
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, v) = part
                .split_once('=')
                .ok_or_else(|| s3_error!(InvalidArgument, "A grantee is type=\"value\"."))?;
            let v = v.trim().trim_matches('"').to_string();
            let grantee = match kind.trim() {
                "id" => Grantee::Id(v),
                "uri" => Grantee::Group(v),
                "emailAddress" => Grantee::Email(v),
                other => return Err(s3_error!(InvalidArgument, "{other} is not a grantee type.")),
            };
            grants.push(grant(grantee, permission));
        }
    }
    Ok(any.then_some(grants))
}

/// The grants of an `AccessControlPolicy` document.
pub fn from_policy(policy: dto::AccessControlPolicy) -> S3Result<Vec<Grant>> {
    let mut grants = Vec::new();
    for g in policy.grants.unwrap_or_default() {
        let permission = g.permission.map(|p| p.as_str().to_string());
        let permission = permission
            .filter(|p| PERMISSIONS.contains(&p.as_str()))
            .ok_or_else(|| s3_error!(MalformedACLError))?;
        let grantee = g.grantee.ok_or_else(|| s3_error!(MalformedACLError))?;
        let grantee = match grantee.type_.as_str() {
            Type::CANONICAL_USER => grantee.id.map(Grantee::Id),
            Type::GROUP => grantee.uri.map(Grantee::Group),
            Type::AMAZON_CUSTOMER_BY_EMAIL => grantee.email_address.map(Grantee::Email),
            _ => None,
        }
        .ok_or_else(|| s3_error!(MalformedACLError))?;
        grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(grants)
}

/// The grants a request states: a canned ACL, grant headers, or a document (at most one);
/// `None` when it states none.
pub fn stated(
    canned_name: Option<&str>,
    headers: &[(&str, Option<&str>)],
    policy: Option<dto::AccessControlPolicy>,
) -> S3Result<Option<Vec<Grant>>> {
    let from_headers = from_headers(headers)?;
    let ways = usize::from(canned_name.is_some())
        + usize::from(from_headers.is_some())
        + usize::from(policy.is_some());
    if ways > 1 {
        return Err(s3_error!(
            InvalidRequest,
            "Specify one of a canned ACL, grant headers and an ACL document."
        ));
    }
    match (canned_name, from_headers, policy) {
        (Some(name), _, _) => canned(name).map(Some),
        (_, Some(grants), _) => Ok(Some(grants)),
        (_, _, Some(policy)) => from_policy(policy).map(Some),
        _ => Ok(None),
    }
}

/// The grants as S3 answers them (`None`: never set, the owner's full control).
pub fn answer(grants: Option<&[Grant]>) -> dto::Grants {
    let default;
    let grants = match grants {
        Some(g) => g,
        None => {
            default = canned("private").expect("a canned ACL");
            &default
        }
    };
    grants
        .iter()
        .map(|g| {
            let mut grantee = dto::Grantee {
                display_name: None,
                email_address: None,
                id: None,
                type_: Type::from_static(Type::CANONICAL_USER),
                uri: None,
            };
            match &g.grantee {
                Grantee::Id(id) => {
                    grantee.display_name = (id == OWNER_ID).then(|| OWNER_ID.to_string());
                    grantee.id = Some(id.clone());
                }
                Grantee::Group(uri) => {
                    grantee.type_ = Type::from_static(Type::GROUP);
                    grantee.uri = Some(uri.clone());
                }
                Grantee::Email(email) => {
                    grantee.type_ = Type::from_static(Type::AMAZON_CUSTOMER_BY_EMAIL);
                    grantee.email_address = Some(email.clone());
                }
            }
            dto::Grant {
                grantee: Some(grantee),
                permission: Some(dto::Permission::from(g.permission.clone())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_headers_and_documents_become_grants() {
        assert_eq!(canned("private").unwrap().len(), 1);
        let public = canned("public-read-write").unwrap();
        assert_eq!(public[1], grant(Grantee::Group(ALL_USERS.into()), "READ"));
        assert_eq!(public[2], grant(Grantee::Group(ALL_USERS.into()), "WRITE"));
        assert!(canned("public").is_err());

        let headers = [
            (
                "READ",
                Some(r#"id="a", uri="http://acs.amazonaws.com/groups/global/AllUsers""#),
            ),
            ("WRITE_ACP", None),
            ("FULL_CONTROL", Some("emailAddress=x@y")),
        ];
        let grants = from_headers(&headers).unwrap().unwrap();
        assert_eq!(
            grants,
            vec![
                grant(Grantee::Id("a".into()), "READ"),
                grant(Grantee::Group(ALL_USERS.into()), "READ"),
                grant(Grantee::Email("x@y".into()), "FULL_CONTROL"),
            ]
        );
        assert!(from_headers(&[("READ", Some("name=a"))]).is_err());
        assert_eq!(from_headers(&[("READ", None)]).unwrap(), None);
        assert!(stated(Some("private"), &headers, None).is_err());
        assert_eq!(stated(None, &[], None).unwrap(), None);

        // A document answered is read back as the same grants.
        let policy = dto::AccessControlPolicy {
            grants: Some(answer(Some(&grants))),
            owner: Some(owner()),
        };
        assert_eq!(from_policy(policy).unwrap(), grants);
        let bad = dto::AccessControlPolicy {
            grants: Some(vec![dto::Grant {
                grantee: None,
                permission: Some(dto::Permission::from("READ".to_string())),
            }]),
            owner: None,
        };
        assert!(from_policy(bad).is_err());
    }
}
