//! The stdio of an attach or an exec, as the container's shim serves it:
//! the data plane a ContainerActor hands out once it decided. Input goes
//! to the shim as frames, output comes back as frames ending with the
//! exit; callers see bytes and an exit, never the shim's protocol.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::protocol::shim::frames;
pub use crate::protocol::shim::ExitStatus;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// One connection to a shim for stdio.
pub struct Stdio {
    pub input: StdioInput,
    pub output: StdioOutput,
    /// The process's pid (an exec's).
    pub pid: Option<i32>,
}

impl Stdio {
    pub fn new(read: Reader, write: Writer, pid: Option<i32>) -> Stdio {
        Stdio {
            input: StdioInput(write),
            output: StdioOutput(BufReader::with_capacity(64 * 1024, read)),
            pid,
        }
    }
}

/// The process's stdin.
pub struct StdioInput(Writer);

impl StdioInput {
    /// Bytes for the process's stdin.
    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.frame(frames::STDIN, data).await
    }

    /// Close the process's stdin (its reader sees the end of input).
    pub async fn close(&mut self) -> std::io::Result<()> {
        self.frame(frames::CLOSE_STDIN, &[]).await
    }

    async fn frame(&mut self, kind: u8, data: &[u8]) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(data.len() + 8);
        b.extend_from_slice(&frames::header(kind, data.len()));
        b.extend_from_slice(data);
        self.0.write_all(&b).await
    }
}

/// What the process wrote, then how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitStatus),
}

/// The process's output.
pub struct StdioOutput(BufReader<Reader>);

impl StdioOutput {
    /// The next piece of output, or the exit; `None`: the connection ended
    /// without an exit (the shim went away).
    pub async fn next(&mut self) -> Option<Output> {
        let mut h = [0u8; 8];
        loop {
            self.0.read_exact(&mut h).await.ok()?;
            let (kind, len) = frames::parse(&h)?;
            let mut buf = vec![0u8; len];
            self.0.read_exact(&mut buf).await.ok()?;
            match kind {
                frames::EXIT => return serde_json::from_slice(&buf).ok().map(Output::Exit),
                frames::STDOUT => return Some(Output::Stdout(buf)),
                frames::STDERR => return Some(Output::Stderr(buf)),
                _ => {}
            }
        }
    }

    /// Read to the exit, dropping the output (a detached exec, a client
    /// that left).
    pub async fn exit(&mut self) -> Option<ExitStatus> {
        loop {
            if let Output::Exit(x) = self.next().await? {
                return Some(x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_both_ways() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ar, aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        let mut s = Stdio::new(Box::new(ar), Box::new(aw), Some(7));
        s.input.write(b"hi").await.unwrap();
        s.input.close().await.unwrap();
        let mut got = vec![0u8; 8 + 2 + 8];
        br.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..8], &frames::header(frames::STDIN, 2));
        assert_eq!(&got[8..10], b"hi");
        assert_eq!(&got[10..], &frames::header(frames::CLOSE_STDIN, 0));
        let exit = serde_json::to_vec(&ExitStatus {
            code: 3,
            exited_at: String::new(),
            oom_killed: false,
        })
        .unwrap();
        for (k, d) in [
            (frames::STDOUT, b"out".to_vec()),
            (frames::STDERR, b"err".to_vec()),
            (frames::EXIT, exit),
        ] {
            bw.write_all(&frames::header(k, d.len())).await.unwrap();
            bw.write_all(&d).await.unwrap();
        }
        assert_eq!(s.output.next().await, Some(Output::Stdout(b"out".to_vec())));
        assert_eq!(s.output.exit().await.map(|x| x.code), Some(3));
        drop((br, bw));
        assert_eq!(s.output.next().await, None);
    }
}
