//! HCP's bucket owners (manual, "Bucket owners" and "Listing the buckets you own"; seed 001):
//! a bucket belongs to the HCP user who created it; `GET /` lists the buckets the caller owns;
//! creating a bucket that exists is 200 `BucketAlreadyOwnedByYou` for its owner and 409
//! `BucketAlreadyExists` for anyone else (also where it has no owner); owners in answers are
//! HCP users, never the backend account.
//!
//! Every user of a tenant reaches the backend through the tenant's one account, so the backend
//! cannot keep owners. Where the tenant names a `records_bucket`, the gateway keeps them there
//! (`request::records`), so that every replica reads the same owners without a database:
//!
//! - `buckets/<backend bucket>`: the bucket's owner (JSON), read when an answer names the owner
//!   and before a CreateBucket (cached for a few seconds: [`OWNER_TTL`]);
//! - `owned/<owner id>/<backend bucket>`: the same, listed for the owner's `GET /`, which shows
//!   only buckets both listed there and at the backend.
//!
//! A bucket is recorded after the backend created it; if that fails, the bucket is removed
//! again and the client told to retry (503), so that no bucket is left without its creator as
//! owner. A record whose bucket is gone (a DeleteBucket whose cleanup failed) is removed by the
//! next CreateBucket of that name.

use std::collections::HashSet;

use pingora::http::ResponseHeader;
use std::time::Duration;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::authenticate::User;
use crate::request::records::Records;
use crate::request::validate::probes::{At, Probe};
use crate::request::*;
use forward::Call;

/// How long an owner read from the records is trusted (another replica's changes are seen
/// after at most this long; this replica's at once).
pub const OWNER_TTL: Duration = Duration::from_secs(10);

/// How long a CreateBucket or DeleteBucket waits for the one before it on the same bucket.
pub(in crate::request) const TURN_WAIT: Duration = Duration::from_secs(10);

/// One change at a time per name in this process — of a bucket's owner, of an object's
/// retention and holds: a turn lives while a request holds it, and is never evicted while held
/// (as a cache entry could be, handing a second request a turn of its own). Names no request
/// holds are swept once their count has doubled since the last sweep.
#[derive(Default)]
pub struct Turns(std::sync::Mutex<TurnMap>);

#[derive(Default)]
struct TurnMap {
    turns: std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
    /// How many there may be before the next sweep.
    sweep_at: usize,
}

impl Turns {
    pub(in crate::request) fn of(&self, name: String) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(turn) = map.turns.get(&name).and_then(std::sync::Weak::upgrade) {
            return turn;
        }
        if map.turns.len() >= map.sweep_at.max(1024) {
            map.turns.retain(|_, t| t.strong_count() > 0);
            map.sweep_at = map.turns.len().saturating_mul(2);
        }
        let turn = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        map.turns.insert(name, std::sync::Arc::downgrade(&turn));
        turn
    }
}

/// At most this many of a user's buckets are listed by its `GET /`.
const MAX_OWNED: usize = 10_000;

/// An HCP user as owners and grantees name it: the user id and the user name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub id: String,
    pub name: String,
}

impl Owner {
    /// A gateway user as an owner: its HCP user name (its access key for a user configured by
    /// key) and a user id in HCP's form (a UUID), derived from its access key so that every
    /// replica names it alike.
    pub fn of(user: &User) -> Owner {
        Owner::named(
            &user.access_key,
            user.username.as_deref().unwrap_or(&user.access_key),
        )
    }

    /// The user `access_key` names as it is configured now, or a former one
    /// ([`Owner::former`]).
    pub fn of_key(users: &crate::request::authenticate::UserStore, access_key: &str) -> Owner {
        match users.get(access_key) {
            Some(user) => Owner::of(user),
            None => Owner::former(access_key),
        }
    }

    /// A user no longer configured, known by `access_key`: shown by its id alone, as a
    /// recorded owner of such a user is (`object_owners::owner_named`) — never by the key.
    pub fn former(access_key: &str) -> Owner {
        let owner = Owner::named(access_key, "");
        Owner {
            name: owner.id.clone(),
            ..owner
        }
    }

    /// The owner for `access_key`, shown as `name`.
    pub fn named(access_key: &str, name: &str) -> Owner {
        let digest =
            crate::sig::v4::sha256_hex(format!("hcp-s3-gateway user id\n{access_key}").as_bytes());
        let h = &digest[..32];
        Owner {
            id: format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ),
            name: name.to_string(),
        }
    }

    /// HCP's name for no owner (manual: "If the item has no owner, the value of the ID
    /// element is nobody").
    pub fn nobody() -> Owner {
        Owner {
            id: "nobody".into(),
            name: "nobody".into(),
        }
    }
}

/// Who an answer names in place of the backend account, and for `GET /` which of the backend's
/// buckets the caller owns.
#[derive(Debug, Clone)]
pub struct Shown {
    pub owner: Owner,
    /// `GET /`: the backend names of the caller's buckets.
    pub owned: Option<HashSet<String>>,
}

/// A CreateBucket, DeleteBucket or change of owner (PUT `?acl`) under way in a namespace that
/// keeps owners: its turn (one change of a bucket's owner at a time in this process, from the
/// check before sending to the records after the answer) and the owner the bucket had before.
#[derive(Debug)]
pub struct OwnerChange {
    _turn: tokio::sync::OwnedMutexGuard<()>,
    before: Option<Owner>,
    /// The owner a PUT `?acl` gives the bucket (HCP's change of owner).
    to: Option<Owner>,
}

impl OwnerChange {
    /// Whether the bucket had an owner on record when the change began (it was there).
    pub fn had_owner(&self) -> bool {
        self.before.is_some()
    }
}

/// Whether `op` asks who the caller is as an owner (the rest never read it: no hashing for them).
pub fn needs_caller(op: Operation) -> bool {
    matches!(
        op,
        Operation::CreateBucket
            | Operation::DeleteBucket
            | Operation::ListBuckets
            | Operation::GetBucketVersioning
            | Operation::PutBucketVersioning
            | Operation::ListParts
            | Operation::AbortMultipartUpload
            | Operation::PutBucketAcl
    )
}

/// A bucket's record.
#[derive(serde::Serialize, serde::Deserialize)]
struct BucketRecord {
    bucket: String,
    owner: Owner,
}

fn bucket_record(backend_bucket: &str) -> String {
    format!("buckets/{backend_bucket}")
}

fn owned_prefix(owner: &Owner) -> String {
    format!("owned/{}/", owner.id)
}

/// `owner`'s index entry for a backend bucket.
fn index_entry(owner: &Owner, backend_bucket: &str) -> String {
    format!("{}{backend_bucket}", owned_prefix(owner))
}

/// The records of `at`'s tenant, its backend bucket's name, and the body of a record naming
/// `owner` as the bucket's owner (its record and its owner's index entry hold the same).
fn owner_record<'r>(at: At<'r>, owner: &Owner) -> Result<(Records<'r>, String, Vec<u8>), String> {
    let records = Records::of_tenant(at).ok_or("the namespace keeps no owners")?;
    let bucket = at
        .route
        .backend_bucket
        .as_deref()
        .unwrap_or_default()
        .to_string();
    let record = BucketRecord {
        bucket,
        owner: owner.clone(),
    };
    let body = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    Ok((records, record.bucket, body))
}

fn unavailable(cause: String) -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The bucket's owner could not be read or recorded; try again.")
        .with_cause(cause)
}

impl Gateway {
    /// The owner of `at`'s bucket (`None`: it has none), from the records (or, unless `fresh`,
    /// the last few seconds' reading of them).
    pub(in crate::request) async fn bucket_owner(
        &self,
        at: At<'_>,
        fresh: bool,
    ) -> Result<Option<Owner>, String> {
        let records = Records::of_tenant(at).ok_or("the namespace keeps no owners")?;
        let cache_key = crate::request::validate::probes::bucket_key(at);
        if !fresh {
            if let Some(known) = self.bucket_owners.get(&cache_key) {
                return Ok(known);
            }
        }
        let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
        let body = self
            .get_record(&records, bucket_record(backend_bucket))
            .await?;
        let owner = match body {
            None => None,
            Some(b) => {
                let record: BucketRecord = serde_json::from_slice(&b)
                    .map_err(|e| format!("a bucket's owner record does not parse: {e}"))?;
                Some(record.owner)
            }
        };
        self.bucket_owners.insert(cache_key, owner.clone());
        Ok(owner)
    }

    /// Records `owner` as the owner of `at`'s bucket: the bucket's record, then its entry in
    /// the owner's index (an index entry is never without its record, so an entry left over
    /// is found, and removed, through the record).
    async fn record_bucket_owner(&self, at: At<'_>, owner: &Owner) -> Result<(), String> {
        let (records, backend_bucket, body) = owner_record(at, owner)?;
        self.put_record(&records, bucket_record(&backend_bucket), &body)
            .await?;
        self.put_record(&records, index_entry(owner, &backend_bucket), &body)
            .await?;
        self.bucket_owners
            .invalidate(&crate::request::validate::probes::bucket_key(at));
        Ok(())
    }

    /// Removes the records of `at`'s bucket (owned by `owner`, if anyone): the index entry
    /// first, the bucket's record last (so that what is left after a failure is found through
    /// the record, by the next CreateBucket of the name).
    async fn remove_bucket_owner(&self, at: At<'_>, owner: Option<&Owner>) -> Result<(), String> {
        let records = Records::of_tenant(at).ok_or("the namespace keeps no owners")?;
        let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
        self.bucket_owners
            .invalidate(&crate::request::validate::probes::bucket_key(at));
        if let Some(owner) = owner {
            self.remove_index_entry(at, owner).await?;
        }
        self.delete_record(&records, bucket_record(backend_bucket))
            .await
    }

    /// Removes `owner`'s index entry for `at`'s bucket (a creator that lost the bucket to
    /// another).
    async fn remove_index_entry(&self, at: At<'_>, owner: &Owner) -> Result<(), String> {
        let records = Records::of_tenant(at).ok_or("the namespace keeps no owners")?;
        let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
        self.delete_record(&records, index_entry(owner, backend_bucket))
            .await
    }

    /// This bucket's turn for a change of owner, in this process.
    /// (Waiting longer than [`TURN_WAIT`] is a 503: the request before may be a slow client's.)
    async fn owner_turn(&self, at: At<'_>) -> Result<tokio::sync::OwnedMutexGuard<()>, HcpError> {
        let name = crate::request::validate::probes::bucket_key(at);
        let turn = self.owner_turns.of(name);
        tokio::time::timeout(TURN_WAIT, turn.lock_owned())
            .await
            .map_err(|_| unavailable("another change of the bucket's owner is under way".into()))
    }

    /// The backend names of the buckets `owner` owns: those its index lists whose record still
    /// names it (an index entry a failed cleanup left behind names a bucket that may have
    /// become someone else's). The records are read 16 at a time, and cached.
    async fn owned_buckets(&self, at: At<'_>, owner: &Owner) -> Result<HashSet<String>, String> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let records = Records::of_tenant(at).ok_or("the namespace keeps no owners")?;
        let prefix = owned_prefix(owner);
        let names = match self.list_records(&records, &prefix, MAX_OWNED).await {
            Ok(names) => names,
            // A records bucket that could not be made at start (its backend was down) is made
            // now: then nothing is recorded yet, and `GET /` lists nothing.
            Err(e) => {
                self.ensure_records_bucket(&records)
                    .await
                    .map_err(|made| format!("{e}; {made}"))?;
                self.list_records(&records, &prefix, MAX_OWNED).await?
            }
        };
        let listed: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix(prefix.as_str()))
            .map(str::to_string)
            .collect();
        let confirmed = stream::iter(listed)
            .map(|name| async move {
                let route = Route {
                    tenant: at.route.tenant,
                    backend: at.route.backend,
                    backend_bucket: Some(name.as_str().into()),
                    credentials: at.route.credentials.clone(),
                };
                let bucket = At {
                    target: at.target,
                    route: &route,
                };
                let recorded = self.bucket_owner(bucket, false).await?;
                Ok::<_, String>(recorded.filter(|o| o.id == owner.id).map(|_| name))
            })
            .buffer_unordered(16)
            .try_collect::<Vec<Option<String>>>()
            .await?;
        Ok(confirmed.into_iter().flatten().collect())
    }

    /// Before sending, in a namespace that keeps owners: a CreateBucket of an existing bucket
    /// is answered here (its owner's 200 `BucketAlreadyOwnedByYou`, anyone else's 409); only a
    /// bucket's owner deletes it or reads or changes its versioning (a bucket without owner: whoever
    /// `permissions` allow, so that it can be cleaned up); what answers will name as owner is
    /// read (`GET /`: the caller, and which buckets it owns; ACLs and listings: the bucket's owner).
    pub(in crate::request) async fn owners_before(
        &self,
        call: &Call<'_>,
        object: Option<&ResponseHeader>,
    ) -> Result<(Option<Shown>, Option<OwnerChange>), HcpError> {
        let at = At {
            target: call.target,
            route: call.route,
        };
        let others = |owner: &Option<Owner>| {
            owner
                .as_ref()
                .is_some_and(|o| call.owner.as_ref().is_none_or(|c| c.id != o.id))
        };
        let not_yours = || authorize::denied().with_message("The bucket is owned by another user.");
        if call.params.effects.others_upload.is_some() || call.op == Operation::ListParts {
            return Ok((self.upload_owner(call, at).await?, None));
        }
        match call.op {
            Operation::CreateBucket => {
                let caller = call.owner.as_ref().ok_or_else(authorize::denied)?;
                let turn = self.owner_turn(at).await?;
                self.check_create(at, caller).await?;
                Ok((
                    None,
                    Some(OwnerChange {
                        _turn: turn,
                        before: None,
                        to: None,
                    }),
                ))
            }
            Operation::DeleteBucket => {
                let turn = self.owner_turn(at).await?;
                let before = self.bucket_owner(at, true).await.map_err(unavailable)?;
                if others(&before) {
                    return Err(not_yours());
                }
                Ok((
                    None,
                    Some(OwnerChange {
                        _turn: turn,
                        before,
                        to: None,
                    }),
                ))
            }
            Operation::PutBucketVersioning | Operation::GetBucketVersioning => {
                let fresh = call.op == Operation::PutBucketVersioning;
                let owner = self.bucket_owner(at, fresh).await.map_err(unavailable)?;
                if others(&owner) {
                    return Err(not_yours());
                }
                Ok((None, None))
            }
            Operation::ListBuckets => {
                let caller = call.owner.clone().ok_or_else(authorize::denied)?;
                let owned = self.owned_buckets(at, &caller).await.map_err(unavailable)?;
                let shown = Shown {
                    owner: caller,
                    owned: Some(owned),
                };
                Ok((Some(shown), None))
            }
            // An object's ACL names the object's owner (`request::object_owners`); a
            // listing its bucket's, for entries that name none of their own.
            Operation::GetObjectAcl | Operation::PutObjectAcl => {
                Ok((self.shown_object_owner(at, call.op, object).await?, None))
            }
            Operation::GetBucketAcl
            | Operation::PutBucketAcl
            | Operation::ListObjects
            | Operation::ListObjectsV2
            | Operation::ListObjectVersions
            | Operation::ListMultipartUploads => {
                Ok((self.shown_bucket_owner(at, call.op).await?, None))
            }
            _ => Ok((None, None)),
        }
    }

    /// An upload's owner, as ListParts shows it: its initiator. The caller's own upload is the
    /// caller's; another user's (`others_upload`: its initiator's access key, where its id names
    /// one) only the bucket's owner lists or aborts (HCP), else 403.
    async fn upload_owner(&self, call: &Call<'_>, at: At<'_>) -> Result<Option<Shown>, HcpError> {
        let Some(initiator) = &call.params.effects.others_upload else {
            let caller = call.owner.clone().ok_or_else(authorize::denied)?;
            return Ok(Some(Shown {
                owner: caller,
                owned: None,
            }));
        };
        // (The last few seconds' reading: a caller refused again and again costs the records
        // bucket no read each.)
        let owner = self.bucket_owner(at, false).await.map_err(unavailable)?;
        let owns = matches!((&owner, &call.owner), (Some(o), Some(c)) if o.id == c.id);
        if !owns {
            return Err(crate::request::validate::uploads::not_initiator(true));
        }
        if call.op != Operation::ListParts {
            return Ok(None);
        }
        let shown = match initiator {
            Some(key) => Owner::of_key(&self.users.load(), key),
            None => owner.expect("the caller's"),
        };
        Ok(Some(Shown {
            owner: shown,
            owned: None,
        }))
    }

    /// The owner an object's ACL names (`object`: its HEAD, `None` where there is none):
    /// the object's own (`request::object_owners`), or for an object stored before owners
    /// were kept (or not there), its bucket's.
    async fn shown_object_owner(
        &self,
        at: At<'_>,
        op: Operation,
        object: Option<&ResponseHeader>,
    ) -> Result<Option<Shown>, HcpError> {
        let Some(bucket) = self.shown_bucket_owner(at, op).await? else {
            return Ok(None);
        };
        let owner = match object {
            Some(head) => self.object_owner(head, &bucket.owner),
            None => bucket.owner,
        };
        Ok(Some(Shown { owner, owned: None }))
    }

    /// The bucket's owner, as an ACL or a listing of it names the owner (`nobody` where it
    /// has none). A listing whose owner cannot be read names the tenant instead (logged); an
    /// ACL is 503 then.
    async fn shown_bucket_owner(
        &self,
        at: At<'_>,
        op: Operation,
    ) -> Result<Option<Shown>, HcpError> {
        let listing = !matches!(
            op,
            Operation::GetBucketAcl
                | Operation::PutBucketAcl
                | Operation::GetObjectAcl
                | Operation::PutObjectAcl
        );
        let owner = match self.bucket_owner(at, false).await {
            Ok(owner) => owner,
            Err(e) if listing => {
                tracing::warn!(bucket = ?at.route.backend_bucket, "owner records: {e}");
                return Ok(None);
            }
            Err(e) => return Err(unavailable(e)),
        };
        Ok(Some(Shown {
            owner: owner.unwrap_or_else(Owner::nobody),
            owned: None,
        }))
    }

    /// HCP's answers to a CreateBucket of a bucket that exists: 200 `BucketAlreadyOwnedByYou`
    /// (an error document) for its owner, 409 `BucketAlreadyExists` for anyone else and for a
    /// bucket without an owner. A record whose bucket is gone is removed.
    async fn check_create(&self, at: At<'_>, caller: &Owner) -> Result<(), HcpError> {
        let recorded = self.bucket_owner(at, true).await.map_err(unavailable)?;
        let exists = match self.bucket_status(at).await {
            Some(200 | 403) => true,
            Some(404) => false,
            other => {
                return Err(unavailable(format!(
                    "HEAD of the bucket answered {other:?}"
                )))
            }
        };
        let bucket = at.target.bucket.as_deref().unwrap_or_default();
        match (exists, recorded) {
            (true, Some(owner)) if owner.id == caller.id => {
                // (Its index entry again, in case recording it failed when it was created.)
                if let Err(e) = self.record_bucket_owner(at, caller).await {
                    tracing::warn!(bucket = ?at.route.backend_bucket, "owner records: {e}");
                }
                Err(HcpError::new(HcpCode::BucketAlreadyOwnedByYou).with_bucket(bucket))
            }
            (true, _) => Err(HcpError::new(HcpCode::BucketAlreadyExists).with_bucket(bucket)),
            (false, stale) => {
                if stale.is_some() {
                    self.remove_bucket_owner(at, stale.as_ref())
                        .await
                        .map_err(unavailable)?;
                }
                Ok(())
            }
        }
    }

    /// A PUT `?acl` whose document names another of the tenant's users as owner (HCP's change
    /// of owner): only the bucket's owner (read fresh), holding HCP's write ACL and change
    /// owner permissions as configured (`Call::may_change_owner`), gives it one, in the
    /// bucket's turn; naming the owner it has changes nothing; the new owner is recorded
    /// once the backend took the ACL (`owners_after`). An object's owner is not changed here.
    pub(in crate::request) async fn begin_owner_change(
        &self,
        call: &Call<'_>,
        to: Owner,
    ) -> Result<OwnerChange, HcpError> {
        if call.op != Operation::PutBucketAcl {
            return Err(HcpError::new(HcpCode::NotImplemented)
                .with_message("Changing an object's owner is not supported."));
        }
        let at = At {
            target: call.target,
            route: call.route,
        };
        let turn = self.owner_turn(at).await?;
        let before = self.bucket_owner(at, true).await.map_err(unavailable)?;
        let owns = matches!((&before, &call.owner), (Some(b), Some(c)) if b.id == c.id);
        if !owns {
            return Err(authorize::denied()
                .with_message("Only the bucket's owner may give it another owner."));
        }
        // (The owner an answer showed may be a few seconds old: naming the owner it is now
        // changes nothing.)
        let to = before.as_ref().filter(|b| b.id != to.id).map(|_| to);
        if to.is_some() && !call.may_change_owner {
            return Err(authorize::denied().with_message(
                "Changing a bucket's owner needs the write ACL and change owner permissions.",
            ));
        }
        Ok(OwnerChange {
            _turn: turn,
            before,
            to,
        })
    }

    /// A bucket given from `before` to `to`: `to`'s index entry first (an entry is listed only
    /// where the record confirms it), then the record, which decides, then `before`'s entry
    /// removed; checked to be `to`'s after (another replica's change at once: the one recorded
    /// last holds, the other is 503 and its entry removed). The cache is forgotten whatever
    /// happens, so that a retry reads the records as they are.
    async fn move_bucket(
        &self,
        at: At<'_>,
        before: Option<&Owner>,
        to: &Owner,
    ) -> Result<(), String> {
        let (records, backend_bucket, body) = owner_record(at, to)?;
        let written = async {
            self.put_record(&records, index_entry(to, &backend_bucket), &body)
                .await?;
            self.put_record(&records, bucket_record(&backend_bucket), &body)
                .await
        }
        .await;
        self.bucket_owners
            .invalidate(&crate::request::validate::probes::bucket_key(at));
        written?;
        if self
            .bucket_owner(at, true)
            .await?
            .is_none_or(|now| now.id != to.id)
        {
            let _ = self.remove_index_entry(at, to).await;
            return Err("another change of the bucket's owner was recorded at once".into());
        }
        if let Some(before) = before {
            if let Err(e) = self.remove_index_entry(at, before).await {
                tracing::warn!(bucket = ?at.route.backend_bucket, "owner records: {e}");
            }
        }
        Ok(())
    }

    /// After the backend's success, in a namespace that keeps owners: a new bucket is
    /// recorded as the caller's (if that fails, what was recorded and the bucket are removed
    /// again: 503), and checked to be the caller's still (two replicas creating one name at
    /// once: the one recorded last owns it, the other is answered 409 and its index entry
    /// removed); a deleted bucket's records are removed, if they still name the owner it had.
    pub(in crate::request) async fn owners_after(&self, call: &Call<'_>) -> Result<(), HcpError> {
        let Some(change) = call.guards.owner_change.as_ref() else {
            return Ok(());
        };
        // Boxed: only bucket creations, deletions and changes of owner get here, and every
        // answer's future would otherwise carry this one's space.
        Box::pin(self.owner_records_after(call, change)).await
    }

    /// [`Gateway::owners_after`] for a request that changes a bucket's owner.
    async fn owner_records_after(
        &self,
        call: &Call<'_>,
        change: &OwnerChange,
    ) -> Result<(), HcpError> {
        let at = At {
            target: call.target,
            route: call.route,
        };
        match call.op {
            Operation::CreateBucket => {
                let caller = call.owner.as_ref().ok_or_else(authorize::denied)?;
                if let Err(cause) = self.record_bucket_owner(at, caller).await {
                    let cleaned = self.remove_bucket_owner(at, Some(caller)).await;
                    let removed = self
                        .backend_call(
                            Operation::DeleteBucket,
                            Params::default(),
                            call.target,
                            call.route,
                        )
                        .await
                        .map(|(h, _)| h.status.as_u16());
                    tracing::error!(bucket = ?call.route.backend_bucket, cleaned = ?cleaned,
                        delete = ?removed, "a new bucket's owner could not be recorded: {cause}");
                    return Err(unavailable(format!(
                        "{cause}; the new bucket was removed again (DELETE answered {removed:?})"
                    )));
                }
                match self.bucket_owner(at, true).await {
                    Ok(Some(owner)) if owner.id == caller.id => Ok(()),
                    Ok(_) => {
                        if let Err(e) = self.remove_index_entry(at, caller).await {
                            tracing::warn!(bucket = ?call.route.backend_bucket, "owner records: {e}");
                        }
                        Err(HcpError::new(HcpCode::BucketAlreadyExists)
                            .with_bucket(call.target.bucket.as_deref().unwrap_or_default()))
                    }
                    Err(cause) => {
                        // Recorded as the caller's: only the check against a concurrent
                        // creator could not be read.
                        tracing::warn!(bucket = ?call.route.backend_bucket, "owner records: {cause}");
                        Ok(())
                    }
                }
            }
            Operation::DeleteBucket => {
                let removed = match self.bucket_owner(at, true).await {
                    Ok(now) if now == change.before => {
                        self.remove_bucket_owner(at, change.before.as_ref()).await
                    }
                    // Recorded anew meanwhile (by another replica): not this bucket's records.
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Err(e) = removed {
                    // The bucket is gone: its records are stale; the next CreateBucket of the
                    // name finds the bucket's record and removes it with its index entry.
                    tracing::warn!(bucket = ?call.route.backend_bucket, "owner records: {e}");
                }
                Ok(())
            }
            Operation::PutBucketAcl => {
                let Some(to) = &change.to else {
                    return Ok(());
                };
                self.move_bucket(at, change.before.as_ref(), to)
                    .await
                    .map_err(unavailable)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A turn held is the one every request for its name gets, however many other names come
    /// and go meanwhile (a cache full of them evicted it, and the next request took a turn of
    /// its own beside the one held); the names no one holds are swept.
    #[test]
    fn a_turn_held_is_never_handed_out_twice() {
        let turns = Turns::default();
        let held = turns.of("b\nk".to_string());
        for i in 0..100_000 {
            drop(turns.of(format!("b\n{i:0>4096}")));
        }
        assert!(std::sync::Arc::ptr_eq(&held, &turns.of("b\nk".to_string())));
        let kept = turns.0.lock().unwrap().turns.len();
        assert!(kept <= 2048, "{kept} names kept");
        drop(held);
        drop(turns.of("other".to_string()));
        let again = turns.of("b\nk".to_string());
        assert_eq!(std::sync::Arc::strong_count(&again), 1);
    }

    #[test]
    fn owners_are_hcp_users_named_alike_everywhere() {
        let former = Owner::former("bGdyZWVu");
        assert_eq!(former.name, former.id);
        assert_eq!(former.id, Owner::named("bGdyZWVu", "lgreen").id);
        assert!(!former.name.contains("bGdyZWVu"));
        let a = Owner::named("bGdyZWVu", "lgreen");
        let again = Owner::named("bGdyZWVu", "lgreen");
        assert_eq!(a, again);
        // HCP's user ids are UUIDs.
        let parts: Vec<usize> = a.id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert!(a.id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        assert_ne!(a.id, Owner::named("cGRncmV5", "pdgrey").id);
        // (scripts/conformance.sh computes the same for the s3-tests' configuration.)
        assert_eq!(a.id, "73140d54-c3e1-eaab-f1a8-9c37b5fd21da");
        assert_eq!(Owner::nobody().id, "nobody");
    }

    #[test]
    fn bucket_records_are_read_back() {
        let record = BucketRecord {
            bucket: "ta-finance".into(),
            owner: Owner::named("bGdyZWVu", "lgreen"),
        };
        let json = serde_json::to_vec(&record).unwrap();
        let back: BucketRecord = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.owner, record.owner);
        assert_eq!(bucket_record("ta-finance"), "buckets/ta-finance");
        assert!(owned_prefix(&record.owner).starts_with("owned/"));
        assert!(owned_prefix(&record.owner).ends_with('/'));
    }
}
