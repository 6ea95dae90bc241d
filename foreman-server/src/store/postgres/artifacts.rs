//! Artifacts: named, typed outputs of a job.

use deadpool_postgres::GenericClient;
use foreman_types::{Artifact, JobId, INLINE_ARTIFACT_LIMIT};

use super::{execute_cached, query_cached, PgStore, Result};
use crate::store::common;
use crate::store::model::*;

/// Stores `artifacts` for job `id`.
pub(super) async fn insert(
    tx: &super::Tx<'_>,
    id: JobId,
    artifacts: &[NewArtifact],
    now: i64,
) -> Result<()> {
    if artifacts.is_empty() {
        return Ok(());
    }
    let key = id.to_string();
    for artifact in artifacts {
        execute_cached(
            tx,
            "INSERT INTO artifacts (job_id, name, content_type, data, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job_id, name) DO UPDATE
             SET content_type = excluded.content_type, data = excluded.data,
                 created_at = excluded.created_at",
            &[
                &key,
                &artifact.name,
                &artifact.content_type,
                &artifact.data,
                &now,
            ],
        )
        .await?;
    }
    Ok(())
}

/// The job's artifacts as the API shows them: inline up to [`INLINE_ARTIFACT_LIMIT`], else
/// by URL.
pub(super) async fn views(
    client: &impl GenericClient,
    public_url: &str,
    id: JobId,
) -> Result<Vec<Artifact>> {
    let limit = i32::try_from(INLINE_ARTIFACT_LIMIT).unwrap_or(i32::MAX);
    let rows = query_cached(
        client,
        "SELECT name, content_type, length(data)::BIGINT,
                    CASE WHEN length(data) <= $2 THEN data END
             FROM artifacts WHERE job_id = $1 ORDER BY created_at, name",
        &[&id.to_string(), &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let size: i64 = r.get(2);
            common::artifact_view(
                public_url,
                id,
                r.get(0),
                r.get(1),
                size.max(0) as u64,
                r.get(3),
            )
        })
        .collect())
}

impl PgStore {
    /// One artifact's content type and bytes.
    pub(crate) async fn artifact(
        &self,
        id: JobId,
        name: String,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT content_type, data FROM artifacts WHERE job_id = $1 AND name = $2",
                &[&id.to_string(), &name],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }
}
