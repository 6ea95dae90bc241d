//! Artifacts: named, typed outputs of a job.

use base64::Engine as _;
use foreman_types::{Artifact, ArtifactEncoding, JobId, INLINE_ARTIFACT_LIMIT};
use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, SqliteStore};
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
        out.push(view(public_url, id, name, content_type, size as u64, data));
    }
    Ok(out)
}

fn view(
    public_url: &str,
    id: JobId,
    name: String,
    content_type: String,
    size: u64,
    data: Option<Vec<u8>>,
) -> Artifact {
    let (data, encoding, url) = match data {
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => (Some(text), Some(ArtifactEncoding::Utf8), None),
            Err(err) => (
                Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes())),
                Some(ArtifactEncoding::Base64),
                None,
            ),
        },
        None => (
            None,
            None,
            Some(format!(
                "{}/jobs/{id}/artifacts/{}",
                public_url.trim_end_matches('/'),
                url_path_segment(&name)
            )),
        ),
    };
    Artifact {
        name,
        content_type,
        size,
        data,
        encoding,
        url,
    }
}

/// Percent-encodes everything but unreserved characters, for a name inside a URL path.
fn url_path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
