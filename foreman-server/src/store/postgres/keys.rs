//! API keys: create, list, revoke, shared by the replicas (each reloads its key map on
//! `NOTIFY foreman_keys`). The secrets are not here, only their digests.

use tokio_postgres::Row;

use super::{int, PgStore, Result, Tx};
use crate::keys::KeyRecord;
use crate::store::common::decode_key_hash;
use crate::store::StoreError;

const KEY_COLUMNS: &str =
    "name, hash, prefix, admin, weight, max_queued, rpm, trust_user_header, created_at";

fn key_from_row(r: &Row) -> Result<KeyRecord> {
    let name: String = r.get(0);
    let hash: String = r.get(1);
    let limit = |n: Option<i32>| n.map(|n| u32::try_from(n).unwrap_or(0));
    Ok(KeyRecord {
        hash: decode_key_hash(&name, &hash)?,
        name,
        prefix: r.get(2),
        admin: r.get(3),
        weight: u32::try_from(r.get::<_, i32>(4)).unwrap_or(1),
        max_queued: limit(r.get(5)),
        rpm: limit(r.get(6)),
        trust_user_header: r.get(7),
        created_at: r.get(8),
    })
}

/// Key changes take turns (whichever replica makes them), so two revocations cannot
/// both see another admin key left; then the other replicas hear of the change.
async fn key_change(tx: &Tx<'_>) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock(23, 0)", &[])
        .await?;
    tx.execute("SELECT pg_notify('foreman_keys', '')", &[])
        .await?;
    Ok(())
}

async fn admin_keys(tx: &Tx<'_>) -> Result<i64> {
    Ok(tx
        .query_one("SELECT count(*) FROM api_keys WHERE admin", &[])
        .await?
        .get(0))
}

impl PgStore {
    /// Every key, by name.
    pub(crate) async fn keys(&self) -> Result<Vec<KeyRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Stores a new key. With `keep_an_admin` (no `FOREMAN_AUTH_TOKEN` to fall back on),
    /// the first key must be an admin's, or nobody could manage keys afterwards.
    pub(crate) async fn create_key(&self, key: KeyRecord, keep_an_admin: bool) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        key_change(&tx).await?;
        let taken = tx
            .query_opt("SELECT 1 FROM api_keys WHERE name = $1", &[&key.name])
            .await?;
        if taken.is_some() {
            return Err(StoreError::KeyExists(key.name));
        }
        if keep_an_admin && !key.admin && admin_keys(&tx).await? == 0 {
            return Err(StoreError::NoAdminLeft);
        }
        tx.execute(
            &format!(
                "INSERT INTO api_keys ({KEY_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            &[
                &key.name,
                &hex::encode(key.hash),
                &key.prefix,
                &key.admin,
                &int(key.weight),
                &key.max_queued.map(int),
                &key.rpm.map(int),
                &key.trust_user_header,
                &key.created_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the key named `name`; false if there is none. With `keep_an_admin`, the
    /// last admin key cannot go.
    pub(crate) async fn revoke_key(&self, name: String, keep_an_admin: bool) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        key_change(&tx).await?;
        let Some(row) = tx
            .query_opt("SELECT admin FROM api_keys WHERE name = $1", &[&name])
            .await?
        else {
            return Ok(false);
        };
        let admin: bool = row.get(0);
        if keep_an_admin {
            // Other keys would be left with nobody to manage them; with no key left at
            // all foreman would be open again, which revoking must never cause.
            let all: i64 = tx
                .query_one("SELECT count(*) FROM api_keys", &[])
                .await?
                .get(0);
            if all == 1 || (admin && admin_keys(&tx).await? == 1) {
                return Err(StoreError::NoAdminLeft);
            }
        }
        tx.execute("DELETE FROM api_keys WHERE name = $1", &[&name])
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
