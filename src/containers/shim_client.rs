//! The client side of the shim protocol (docs/shim-protocol.md): one
//! connection per request, a JSON line each way, then frames for attach
//! and exec. Used by the ContainerHost adapter only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_actors::ports::ShimCallError;
use berth_actors::protocol::shim::{Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long berthd waits for a shim to accept and answer a request.
pub const SHIM_DEADLINE: Duration = Duration::from_secs(5);

/// Open a connection to a shim and send one request; the response line and
/// the stream (for attach and exec).
pub async fn connect(
    socket: &Path,
    req: &Request,
) -> Result<(Response, tokio::io::BufReader<UnixStream>), ShimCallError> {
    let stream = tokio::time::timeout(SHIM_DEADLINE, connect_path(socket))
        .await
        .map_err(|_| ShimCallError::Gone("timed out connecting".into()))?
        .map_err(|e| ShimCallError::Gone(e.to_string()))?;
    let mut stream = tokio::io::BufReader::new(stream);
    let mut line = serde_json::to_vec(req).map_err(|e| ShimCallError::Failed(e.to_string()))?;
    line.push(b'\n');
    stream
        .get_mut()
        .write_all(&line)
        .await
        .map_err(|e| ShimCallError::Gone(e.to_string()))?;
    let mut resp = String::new();
    let read = stream.read_line(&mut resp);
    let n = if matches!(req, Request::Wait | Request::Health { .. }) {
        read.await
    } else {
        // The runtime may take a while (start, pause): a generous deadline.
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .map_err(|_| ShimCallError::Gone("timed out waiting for the shim".into()))?
    }
    .map_err(|e| ShimCallError::Gone(e.to_string()))?;
    if n == 0 {
        return Err(ShimCallError::Gone("the shim closed the connection".into()));
    }
    let r: Response = serde_json::from_str(&resp)
        .map_err(|e| ShimCallError::Failed(format!("bad shim response: {e}")))?;
    if let Some(e) = &r.error {
        return Err(ShimCallError::Failed(e.clone()));
    }
    Ok((r, stream))
}

/// Split a shim connection after its response line, keeping the frames
/// already buffered behind that line.
pub fn split(
    stream: tokio::io::BufReader<UnixStream>,
) -> (
    impl tokio::io::AsyncRead + Unpin + Send,
    tokio::net::unix::OwnedWriteHalf,
) {
    use tokio::io::AsyncReadExt;
    let buffered = stream.buffer().to_vec();
    let (r, w) = stream.into_inner().into_split();
    (std::io::Cursor::new(buffered).chain(r), w)
}

/// Connect to a socket whose path may be longer than a socket address
/// holds (108 bytes): then through `/proc/self/fd/<dir fd>/<name>`.
async fn connect_path(socket: &Path) -> std::io::Result<UnixStream> {
    if socket.as_os_str().len() < 100 {
        return UnixStream::connect(socket).await;
    }
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let name = socket.file_name().unwrap_or_default();
    let d = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    let r = UnixStream::connect(&short).await;
    drop(d);
    r
}
