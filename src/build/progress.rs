//! The build's progress stream, as dockerd's builder writes it: one JSON
//! message per line (`\r\n`), `{"stream": ...}` for text, the image ID in
//! `{"aux":{"ID":...}}`, an `errorDetail` line last when it fails. With
//! `q=1` the text is held back and only written before an error; the
//! image ID is the one line of a quiet build that succeeds.

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::BuildError;

/// A line as Go's encoder writes it (`<`, `>` and `&` escaped: clients
/// that compare bytes see what dockerd sends).
pub fn line(v: &Value) -> Bytes {
    let s = serde_json::to_string(v).unwrap_or_default();
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

pub struct Progress {
    tx: mpsc::Sender<Bytes>,
    quiet: bool,
    held: Vec<Bytes>,
}

impl Progress {
    pub fn new(tx: mpsc::Sender<Bytes>, quiet: bool) -> Progress {
        Progress {
            tx,
            quiet,
            held: Vec::new(),
        }
    }

    async fn send(&mut self, b: Bytes) -> Result<(), BuildError> {
        self.tx.send(b).await.map_err(|_| BuildError::Cancelled)
    }

    /// A message the client renders (held back when quiet).
    pub async fn message(&mut self, v: Value) -> Result<(), BuildError> {
        let b = line(&v);
        if self.quiet {
            if self.tx.is_closed() {
                return Err(BuildError::Cancelled);
            }
            self.held.push(b);
            return Ok(());
        }
        self.send(b).await
    }

    pub async fn stream(&mut self, text: impl Into<String>) -> Result<(), BuildError> {
        self.message(json!({"stream": text.into()})).await
    }

    /// The built image's ID (`moby.image.id`), then dockerd's last lines.
    pub async fn built(&mut self, id: &str) -> Result<(), BuildError> {
        if self.quiet {
            return self.send(line(&json!({"stream": format!("{id}\n")}))).await;
        }
        self.send(line(&json!({"aux": {"ID": id}}))).await?;
        self.stream(format!("Successfully built {}\n", short(id)))
            .await
    }

    /// The failure, after what a quiet build held back.
    pub async fn error(&mut self, e: &BuildError) {
        for b in std::mem::take(&mut self.held) {
            let _ = self.tx.send(b).await;
        }
        let m = berth_actors::os_error::as_go(&e.to_string());
        tracing::warn!("build failed: {m}");
        let mut detail = json!({"message": m});
        if let BuildError::Run { code, .. } = e {
            detail["code"] = json!(code);
        }
        let _ = self
            .tx
            .send(line(&json!({"errorDetail": detail, "error": m})))
            .await;
    }

    /// Whether the client is gone.
    pub fn gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the client is gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// The 12 hex digits dockerd shows of an ID.
pub fn short(id: &str) -> String {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    h.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_as_go_writes_them() {
        let b = line(&json!({"stream": " ---> a && b <c>\n"}));
        assert_eq!(
            &b[..],
            b"{\"stream\":\" ---\\u003e a \\u0026\\u0026 b \\u003cc\\u003e\\n\"}\r\n"
        );
        // Decoded, it is the text again.
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["stream"], " ---> a && b <c>\n");
    }

    #[tokio::test]
    async fn quiet_holds_the_text_until_an_error() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut p = Progress::new(tx, true);
        p.stream("Step 1/1 : FROM x\n").await.unwrap();
        assert!(rx.try_recv().is_err(), "held back");
        p.error(&BuildError::Run {
            cmd: "/bin/sh -c exit 3".into(),
            code: 3,
        })
        .await;
        let first: Value = serde_json::from_slice(&rx.recv().await.unwrap()).unwrap();
        assert_eq!(first["stream"], "Step 1/1 : FROM x\n");
        let err: Value = serde_json::from_slice(&rx.recv().await.unwrap()).unwrap();
        assert_eq!(err["errorDetail"]["code"], 3);
        assert_eq!(
            err["error"],
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
        );
    }
}
