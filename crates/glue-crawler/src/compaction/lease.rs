//! The maintenance lease: at most one process changes partition locations at a time.
//!
//! Compaction, the copy of late files into a generation and retention all read a partition's
//! location and then change the catalog or the generation it names; two processes doing that at
//! once could swap away a file the other just copied. The catalog service holds the lease while
//! it runs; the one-shot `compact` command takes it for its run and refuses (or, with `--wait`,
//! waits) while someone else holds it.
//!
//! Leases are numbered objects `_stockstream/compaction/lease/<n>.json`, the highest being the
//! current one. Taking over a lease that is released, expired, or held by a dead process on this
//! host creates `<n+1>` with a conditional write, so of two takers exactly one wins (the sink
//! claims flush ranges the same way). The holder renews by rewriting its own object, and checks
//! before each catalog change that no higher lease exists.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stockstream_common::lake::{CONTROL_PREFIX, LakeStore};

use crate::error::Result;

/// Prefix of the lease objects.
fn lease_prefix() -> String {
    format!("{CONTROL_PREFIX}compaction/lease/")
}

fn lease_key(number: u64) -> String {
    format!("{}{number:020}.json", lease_prefix())
}

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// What the holder is (`catalog service`, `compact`).
    pub purpose: String,
    /// Until when the lease holds unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Whether the holder gave it up.
    pub released: bool,
}

impl LeaseRecord {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        if self.released || self.expires_at <= now {
            return false;
        }
        // A holder on this host that is gone (killed) holds nothing. Nor does this very process:
        // one that stopped a service and starts another (tests do) takes its own lease over.
        if self.host == host_name() {
            return self.pid != std::process::id() && process_alive(self.pid);
        }
        true
    }
}

/// A held lease.
#[derive(Debug)]
pub struct Lease {
    number: u64,
    record: LeaseRecord,
    ttl: Duration,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Whether process `pid` runs on this host (a zombie counts as gone).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: `123 (name) S …`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn encode(record: &LeaseRecord) -> Result<bytes::Bytes> {
    serde_json::to_vec_pretty(record)
        .map(bytes::Bytes::from)
        .map_err(|source| {
            stockstream_common::Error::Json {
                context: "encoding the maintenance lease".to_string(),
                source,
            }
            .into()
        })
}

async fn current(store: &dyn LakeStore) -> Result<Option<(u64, String)>> {
    Ok(store
        .list(&lease_prefix())
        .await?
        .into_iter()
        .filter_map(|object| {
            let number = object
                .key
                .rsplit('/')
                .next()?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((number, object.key))
        })
        .max())
}

impl Lease {
    /// Tries to take the lease for `purpose`, valid for `ttl` unless renewed.
    pub async fn try_acquire(
        store: &dyn LakeStore,
        purpose: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<Lease, LeaseRecord>> {
        let now = Utc::now();
        let next = match current(store).await? {
            None => 0,
            Some((number, key)) => {
                let record: Option<LeaseRecord> = match store.get(&key).await {
                    Ok(bytes) => serde_json::from_slice(&bytes).ok(),
                    Err(stockstream_common::Error::NotFound { .. }) => None,
                    Err(error) => return Err(error.into()),
                };
                if let Some(record) = record
                    && record.is_live(now)
                {
                    return Ok(Err(record));
                }
                number + 1
            }
        };
        let record = LeaseRecord {
            host: host_name(),
            pid: std::process::id(),
            purpose: purpose.to_string(),
            expires_at: now + ttl,
            released: false,
        };
        if !store
            .put_if_absent(&lease_key(next), encode(&record)?)
            .await?
        {
            // Someone took it first; report them.
            let bytes = store.get(&lease_key(next)).await?;
            let holder = serde_json::from_slice(&bytes).unwrap_or(record);
            return Ok(Err(holder));
        }
        // Older lease objects are history.
        for object in store.list(&lease_prefix()).await? {
            if object.key < lease_key(next) {
                store.delete(&object.key).await?;
            }
        }
        Ok(Ok(Lease {
            number: next,
            record,
            ttl,
        }))
    }

    /// Takes the lease, waiting while another live holder has it (polling every second), or
    /// returns the holder at once when `wait` is false.
    pub async fn acquire(
        store: &dyn LakeStore,
        purpose: &str,
        ttl: Duration,
        wait: bool,
    ) -> Result<std::result::Result<Lease, LeaseRecord>> {
        loop {
            match Self::try_acquire(store, purpose, ttl).await? {
                Ok(lease) => return Ok(Ok(lease)),
                Err(holder) if !wait => return Ok(Err(holder)),
                Err(holder) => {
                    tracing::info!(holder = %holder.purpose, pid = holder.pid, host = %holder.host, "waiting for the maintenance lease");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Extends the lease and confirms it is still this process's (no later lease exists).
    pub async fn renew(&mut self, store: &dyn LakeStore) -> Result<bool> {
        if !self.still_held(store).await? {
            return Ok(false);
        }
        self.record.expires_at = Utc::now() + self.ttl;
        store
            .put(&lease_key(self.number), encode(&self.record)?)
            .await?;
        Ok(true)
    }

    /// Whether the lease is still this process's: unexpired and not taken over.
    pub async fn still_held(&self, store: &dyn LakeStore) -> Result<bool> {
        let latest = current(store).await?.map(|(number, _)| number);
        Ok(latest == Some(self.number) && self.record.expires_at > Utc::now())
    }

    /// Gives the lease up.
    pub async fn release(mut self, store: &dyn LakeStore) -> Result<()> {
        self.record.released = true;
        if self.still_held(store).await? {
            store
                .put(&lease_key(self.number), encode(&self.record)?)
                .await?;
        }
        Ok(())
    }

    /// How long the lease lasts unless renewed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockstream_common::lake::LocalStore;

    fn record(host: &str, pid: u32, released: bool) -> LeaseRecord {
        LeaseRecord {
            host: host.into(),
            pid,
            purpose: format!("{host}:{pid}"),
            expires_at: Utc::now() + chrono::Duration::hours(1),
            released,
        }
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_dead_or_released_holders_are_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        let ttl = Duration::from_secs(60);
        let mut mine = Lease::try_acquire(&store, "one", ttl)
            .await
            .expect("reads")
            .expect("free");
        assert!(mine.renew(&store).await.expect("renews"));

        // Another host takes it over (say this process was paused past its expiry).
        let other = record("elsewhere", 1, false);
        let put = |number: u64, record: &LeaseRecord| {
            let bytes = encode(record).expect("encodes");
            let store = store.clone();
            async move { store.put(&lease_key(number), bytes).await.expect("writes") }
        };
        put(mine.number + 1, &other).await;
        assert!(!mine.still_held(&store).await.expect("checks"));
        assert!(!mine.renew(&store).await.expect("checks"), "lost");
        let busy = Lease::try_acquire(&store, "two", ttl)
            .await
            .expect("reads")
            .expect_err("held elsewhere");
        assert_eq!(busy, other);

        // Released, or held by a process of this host that is gone: free.
        put(mine.number + 2, &record("elsewhere", 1, true)).await;
        let second = Lease::try_acquire(&store, "two", ttl)
            .await
            .expect("reads")
            .expect("released, so free");
        assert_eq!(second.number, mine.number + 3);
        put(second.number + 1, &record(&host_name(), u32::MAX, false)).await;
        let third = Lease::try_acquire(&store, "three", ttl)
            .await
            .expect("reads")
            .expect("the dead holder's lease is free");
        assert_eq!(third.number, second.number + 2);
        assert_eq!(
            store.list(&lease_prefix()).await.expect("lists").len(),
            1,
            "history deleted"
        );
        third.release(&store).await.expect("releases");
    }
}
