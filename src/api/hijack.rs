//! Hijacked connections (attach, exec start): `Upgrade: tcp` answered with
//! 101 (or, for a client that did not ask for the upgrade, `200 OK`: see
//! [`super::target`]), then raw bytes both ways, bridged to the stdio the container's
//! actor handed out.

use berth_actors::container::stdio::{ExitStatus, Output, StdioInput, StdioOutput};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::{self, Body};
use super::errors::ApiError;
use super::version::ApiVersion;

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// A connection to be taken over once the answer is out.
pub struct Hijack {
    pub upgrade: OnUpgrade,
    /// The client did not ask for an upgrade: dockerd answers `200 OK`
    /// with the raw-stream type (see [`super::target`]).
    pub plain: bool,
}

impl Hijack {
    /// The answer's content type, as dockerd picks it: multiplexed only
    /// for an upgrade without TTY from API 1.42 on.
    pub fn content_type(&self, tty: bool, version: ApiVersion) -> &'static str {
        if self.plain || tty || version < ApiVersion(1, 42) {
            RAW_STREAM
        } else {
            MULTIPLEXED_STREAM
        }
    }
}

/// Take over the connection of an attach or exec start.
pub fn on_upgrade(req: &mut Option<Request<Incoming>>) -> Result<Hijack, ApiError> {
    let Some(req) = req.as_mut() else {
        return Err(ApiError::system("no request to hijack"));
    };
    let plain = req.headers().contains_key(super::target::PLAIN_HIJACK);
    // dockerd takes over the connection whatever protocol was named. Only a
    // request the connection reader could not frame (it follows a refused
    // one on the same connection) arrives without the header.
    if !req.headers().contains_key(UPGRADE) {
        return Err(ApiError::invalid(
            "this endpoint needs a hijacked connection: send `Connection: Upgrade` and `Upgrade: tcp`",
        ));
    }
    Ok(Hijack {
        upgrade: hyper::upgrade::on(req),
        plain,
    })
}

/// The 101 answer dockerd gives (a plain hijack's is marked for the
/// connection writer, which makes it `200 OK`).
pub fn switching(content_type: &str, plain: bool) -> Response<Body> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(RAW_STREAM)),
    );
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    if plain {
        h.insert(super::target::PLAIN_HIJACK, HeaderValue::from_static("1"));
    }
    r
}

pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

pub async fn upgraded(u: OnUpgrade) -> Option<Upgraded> {
    u.await.ok().map(TokioIo::new)
}

/// Detach keys (`ctrl-p,ctrl-q` by default) as bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, ApiError> {
    let s = if s.is_empty() { "ctrl-p,ctrl-q" } else { s };
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c {
                "@" => 0,
                "[" => 27,
                "\\" => 28,
                "]" => 29,
                "^" => 30,
                "_" => 31,
                c if c.len() == 1 && c.as_bytes()[0].is_ascii_lowercase() => {
                    c.as_bytes()[0] - b'a' + 1
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "Invalid detach keys ({s}) provided"
                    )))
                }
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(ApiError::invalid(format!(
                "Invalid detach keys ({s}) provided"
            )));
        }
    }
    Ok(out)
}

/// What ended the client-to-container copy.
pub enum InputEnd {
    /// The client closed its side.
    Eof,
    /// The client typed the detach keys.
    Detached,
    Error,
}

/// Copy the client's bytes to the process's stdin, watching for the
/// detach sequence (a partial match is held back, then released).
pub async fn pump_stdin<R>(mut client: R, input: &mut StdioInput, keys: Vec<u8>) -> InputEnd
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    let mut matched = 0usize;
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) => return InputEnd::Eof,
            Ok(n) => n,
            Err(_) => return InputEnd::Error,
        };
        let mut out = Vec::with_capacity(n + keys.len());
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    if !out.is_empty() {
                        let _ = input.write(&out).await;
                    }
                    return InputEnd::Detached;
                }
                continue;
            }
            if matched > 0 {
                out.extend_from_slice(&keys[..matched]);
                matched = 0;
                if !keys.is_empty() && b == keys[0] {
                    matched = 1;
                    continue;
                }
            }
            out.push(b);
        }
        if !out.is_empty() && input.write(&out).await.is_err() {
            return InputEnd::Error;
        }
    }
}

/// The header of a stdcopy frame (stream 1 stdout, 2 stderr).
fn stdcopy_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// `data` as the client reads it: a stdcopy frame (stream 1 stdout, 2
/// stderr), or the bytes alone with a TTY.
pub fn frame(stream: u8, data: &[u8], tty: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(data.len() + 8);
    if !tty {
        b.extend_from_slice(&stdcopy_header(stream, data.len()));
    }
    b.extend_from_slice(data);
    b
}

/// Copy the process's output to the client: one stdcopy frame per piece of
/// output, or the bytes only (`raw`, TTY). Returns the exit if it came.
pub async fn pump_output<W>(
    output: &mut StdioOutput,
    client: &mut W,
    raw: bool,
) -> Option<ExitStatus>
where
    W: AsyncWrite + Unpin,
{
    loop {
        let (stream, data) = match output.next().await? {
            Output::Exit(x) => return Some(x),
            Output::Stdout(d) => (1, d),
            Output::Stderr(d) => (2, d),
        };
        let r = if raw {
            client.write_all(&data).await
        } else {
            client.write_all(&frame(stream, &data, false)).await
        };
        if r.is_err() {
            return None;
        }
        let _ = client.flush().await;
    }
}

pub fn bytes_of(v: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[tokio::test]
    async fn stdin_pump_holds_partial_detach_and_detaches() {
        use berth_actors::container::stdio::Stdio;
        use berth_actors::protocol::shim::frames;
        let input: &[u8] = b"ab\x10c\x10\x11zz";
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        let mut stdio = Stdio::new(Box::new(r), Box::new(w), None);
        let end = pump_stdin(input, &mut stdio.input, vec![16, 17]).await;
        assert!(matches!(end, InputEnd::Detached));
        drop(stdio);
        let mut out = Vec::new();
        theirs.read_to_end(&mut out).await.unwrap();
        // "ab", then the held ctrl-p released with "c".
        let mut payload = Vec::new();
        let mut rest = &out[..];
        while rest.len() >= 8 {
            let (_, len) = frames::parse(rest[..8].try_into().unwrap()).unwrap();
            payload.extend_from_slice(&rest[8..8 + len]);
            rest = &rest[8 + len..];
        }
        assert_eq!(payload, b"ab\x10c");
    }
}
