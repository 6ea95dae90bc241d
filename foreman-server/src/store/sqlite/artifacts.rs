//! Artifacts: named, typed outputs of a job.

use foreman_types::{Artifact, JobId, INLINE_ARTIFACT_LIMIT};
use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, SqliteStore};
use crate::store::common;
use crate::store::model::*;

/// Stores `artifacts` for job `id`.
pub(super) fn insert(
    conn: &Connection,
    id: JobId,
    artifacts: &[NewArtifact],
    now: i64,
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO artifacts (job_id, name, content_type, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for artifact in artifacts {
        insert.execute(params![
            id.to_string(),
            artifact.name,
            artifact.content_type,
            artifact.data,
            now
        ])?;
    }
    Ok(())
}

/// The job's artifacts as the API shows them: inline up to [`INLINE_ARTIFACT_LIMIT`], else
/// by URL.
pub(super) fn views(conn: &Connection, public_url: &str, id: JobId) -> Result<Vec<Artifact>> {
    let mut select = conn.prepare_cached(
        "SELECT name, content_type, length(data),
                CASE WHEN length(data) <= ?2 THEN data END
         FROM artifacts WHERE job_id = ?1 ORDER BY created_at, name",
    )?;
    let rows = select.query_map(params![id.to_string(), INLINE_ARTIFACT_LIMIT as i64], |r| {
        let name: String = r.get(0)?;
        let content_type: String = r.get(1)?;
        let size: i64 = r.get(2)?;
        let data: Option<Vec<u8>> = r.get(3)?;
        Ok((name, content_type, size, data))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, content_type, size, data) = row?;
        out.push(common::artifact_view(
            public_url,
            id,
            name,
            content_type,
            size as u64,
            data,
        ));
    }
    Ok(out)
}

impl SqliteStore {
    /// One artifact's content type and bytes.
    pub(crate) async fn artifact(
        &self,
        id: JobId,
        name: String,
    ) -> Result<Option<(String, Vec<u8>)>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT content_type, data FROM artifacts WHERE job_id = ?1 AND name = ?2",
                    params![id.to_string(), name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })
        .await
    }
}
