//! Downloads a build makes (`ADD <url>`, a `remote` context): bounded
//! waits (15 s to connect, `total` in all), streamed to a file.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

/// Why a download failed, worded for the caller's message.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Request(String),
    #[error("status {0}")]
    Status(reqwest::StatusCode),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// GET `url` into the new file `path`; its `Last-Modified` time, if any.
/// A failed download leaves no file.
pub async fn to_file(
    url: &str,
    path: &Path,
    total: Duration,
) -> Result<Option<SystemTime>, FetchError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(total)
        .build()
        .map_err(|e| FetchError::Request(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| FetchError::Request(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(FetchError::Status(resp.status()));
    }
    let mtime = resp
        .headers()
        .get("Last-Modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)));
    let mut f = tokio::fs::File::create(path).await?;
    let written: Result<(), FetchError> = async {
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Request(e.to_string()))?
        {
            f.write_all(&chunk).await?;
        }
        f.flush().await?;
        Ok(())
    }
    .await;
    if let Err(e) = written {
        drop(f);
        let _ = tokio::fs::remove_file(path).await;
        return Err(e);
    }
    Ok(mtime)
}
