//! API keys: create, list, revoke. The secrets are not here, only their digests.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{Result, SqliteStore, StoreError};
use crate::keys::KeyRecord;
use crate::store::common::decode_key_hash;

const KEY_COLUMNS: &str =
    "name, hash, prefix, admin, weight, max_queued, rpm, trust_user_header, created_at";

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<(KeyRecord, String)> {
    let hash: String = r.get(1)?;
    Ok((
        KeyRecord {
            name: r.get(0)?,
            hash: [0; 32],
            prefix: r.get(2)?,
            admin: r.get(3)?,
            weight: r.get(4)?,
            max_queued: r.get(5)?,
            rpm: r.get(6)?,
            trust_user_header: r.get(7)?,
            created_at: r.get(8)?,
        },
        hash,
    ))
}

fn admin_keys(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT count(*) FROM api_keys WHERE admin = 1", [], |r| {
            r.get(0)
        })?,
    )
}

impl SqliteStore {
    /// Every key, by name.
    pub(crate) async fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.read(|conn| {
            let mut select =
                conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY name"))?;
            let rows = select.query_map([], key_from_row)?;
            let mut keys = Vec::new();
            for row in rows {
                let (mut key, hash) = row?;
                key.hash = decode_key_hash(&key.name, &hash)?;
                keys.push(key);
            }
            Ok(keys)
        })
        .await
    }

    /// Stores a new key. With `keep_an_admin` (no `FOREMAN_AUTH_TOKEN` to fall back on),
    /// the first key must be an admin's, or nobody could manage keys afterwards.
    pub(crate) async fn create_key(&self, key: KeyRecord, keep_an_admin: bool) -> Result<()> {
        self.write(move |tx| {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT name FROM api_keys WHERE name = ?1",
                    [&key.name],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::KeyExists(key.name));
            }
            if keep_an_admin && !key.admin && admin_keys(tx)? == 0 {
                return Err(StoreError::NoAdminLeft);
            }
            tx.execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    key.name,
                    hex::encode(key.hash),
                    key.prefix,
                    key.admin,
                    key.weight,
                    key.max_queued,
                    key.rpm,
                    key.trust_user_header,
                    key.created_at,
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes the key named `name`; false if there is none. With `keep_an_admin`, the
    /// last admin key cannot go.
    pub(crate) async fn revoke_key(&self, name: String, keep_an_admin: bool) -> Result<bool> {
        self.write(move |tx| {
            let admin: Option<bool> = tx
                .query_row("SELECT admin FROM api_keys WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(admin) = admin else {
                return Ok(false);
            };
            if keep_an_admin {
                // Other keys would be left with nobody to manage them; with no key left
                // at all foreman would be open again, which revoking must never cause.
                let all: i64 = tx.query_row("SELECT count(*) FROM api_keys", [], |r| r.get(0))?;
                if all == 1 || (admin && admin_keys(tx)? == 1) {
                    return Err(StoreError::NoAdminLeft);
                }
            }
            tx.execute("DELETE FROM api_keys WHERE name = ?1", [&name])?;
            Ok(true)
        })
        .await
    }
}
