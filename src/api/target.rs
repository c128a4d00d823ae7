//! Request targets as Go's net/http accepts them.
//!
//! dockerd reads a request line with Go's `url.ParseRequestURI`, which takes
//! every printable byte: `curl -g 'http://d/containers/json?filters={"status":["running"]}'`
//! sends `"` raw, and scripts do the same with `<`, `|`, `^` or `#`. hyper
//! (through the `http` crate) refuses those bytes with a bare 400 before any
//! handler runs. [`Lenient`] sits between the socket and hyper and, for each
//! request head, percent-encodes exactly those bytes of the request target
//! (`%22` decodes back to `"` in the query and path parsers, as Go decodes
//! it), and nothing else: it follows the message framing (`Content-Length`,
//! chunked bodies) so request bodies pass through untouched, and after a
//! request that asks for a protocol upgrade it steps aside for good.
//!
//! It also gives attach and exec start dockerd's plain hijack: dockerd
//! takes over the connection of `POST /containers/{id}/attach` and
//! `POST /exec/{id}/start` whether or not the client sent `Upgrade: tcp`,
//! answering `HTTP/1.1 200 OK` with `Content-Type:
//! application/vnd.docker.raw-stream` and then raw bytes both ways until
//! either side closes. hyper hands a connection over only for an upgrade,
//! so for such a request without `Upgrade` the reader adds `Upgrade: tcp`
//! and [`PLAIN_HIJACK`]; the handler answers with the raw-stream type and
//! marks its `101` with the same header, and the writer turns that `101`
//! back into `200 OK` without the upgrade headers and the mark.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The request header the reader adds to an attach or exec start that did
/// not ask for an upgrade (the handler answers it as dockerd answers one).
pub const PLAIN_HIJACK: &str = "X-Berth-Plain-Hijack";

/// The request header the reader adds to a request that carries both
/// `Transfer-Encoding` and `Content-Length` (hyper takes the chunked body
/// and drops the length); the router refuses such a request.
pub const BAD_FRAMING: &str = "X-Berth-Bad-Framing";

/// `POST /containers/{id}/attach` or `POST /exec/{id}/start`, with or
/// without a version prefix: the endpoints dockerd always hijacks.
fn is_hijack_target(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"POST ") else {
        return false;
    };
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'?')
        .unwrap_or(rest.len());
    let path = String::from_utf8_lossy(&rest[..end]);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let segs = match segs.first() {
        Some(v) if v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit() || c == '.') => {
            &segs[1..]
        }
        _ => &segs[..],
    };
    matches!(segs, ["containers", id, "attach"] | ["exec", id, "start"] if !id.is_empty())
}

/// A request head longer than this is handed to hyper as it is (hyper
/// refuses it).
const MAX_HEAD: usize = 1 << 20;

/// Bytes of a request target that Go accepts and the `http` crate does not
/// (in the path or in the query), plus `#`: Go's server keeps it as part of
/// the query, the `http` crate would cut the target there.
fn needs_escape(b: u8) -> bool {
    matches!(
        b,
        b'"' | b'#' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
    ) || b >= 0x80
}

/// Rewrite the target of one request line (`METHOD SP TARGET SP VERSION`).
/// Anything that is not such a line is returned unchanged for hyper to
/// judge.
pub fn rewrite_request_line(line: &[u8]) -> Option<Vec<u8>> {
    let first = line.iter().position(|&b| b == b' ')?;
    let last = line.iter().rposition(|&b| b == b' ')?;
    if last <= first + 1 {
        return None;
    }
    let target = &line[first + 1..last];
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) || !target.iter().any(|&b| needs_escape(b)) {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    out.extend_from_slice(&line[..=first]);
    for &b in target {
        if needs_escape(b) {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&line[last..]);
    Some(out)
}

/// Where the reader is in the byte stream of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between requests or inside a head.
    Head,
    /// `n` more bytes of a `Content-Length` body.
    Length(u64),
    Chunked(Chunk),
    /// Upgraded, or framing hyper will refuse: bytes pass untouched.
    Through,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The hex size of the next chunk (`seen` digits so far).
    Size {
        size: u64,
        seen: u8,
    },
    /// A chunk extension, up to the end of the line.
    Ext {
        size: u64,
    },
    /// The LF that ends a size line.
    SizeLf {
        size: u64,
    },
    /// `n` more data bytes.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataCr,
    DataLf,
    /// Trailer lines after the last chunk; `empty` while the current line
    /// has no byte yet (an empty line ends the message).
    Trailer {
        empty: bool,
    },
}

/// The framing of a request's body, from its head.
fn framing(head: &[u8]) -> Mode {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return Mode::Through;
    }
    if req.method == Some("CONNECT") {
        return Mode::Through;
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let name = h.name;
        let value = String::from_utf8_lossy(h.value);
        if name.eq_ignore_ascii_case("upgrade") {
            return Mode::Through;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only a final `chunked` frames the body; anything else hyper
            // refuses and closes the connection.
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return Mode::Through;
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            for v in value.split(',') {
                match v.trim().parse::<u64>() {
                    Ok(n) if length.is_none_or(|l| l == n) => length = Some(n),
                    _ => return Mode::Through,
                }
            }
        }
    }
    match (chunked, length) {
        // Marked for the router to refuse; hyper closes the connection
        // after it.
        (true, Some(_)) => Mode::Through,
        (true, None) => Mode::Chunked(Chunk::Size { size: 0, seen: 0 }),
        (false, Some(0)) | (false, None) => Mode::Head,
        (false, Some(n)) => Mode::Length(n),
    }
}

/// Whether a complete head names both a chunked `Transfer-Encoding` and
/// a `Content-Length`.
fn has_both_framings(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return false;
    }
    let has = |n: &str| req.headers.iter().any(|h| h.name.eq_ignore_ascii_case(n));
    has("transfer-encoding") && has("content-length")
}

/// The end of a request head in `buf` (the index after its blank line),
/// searching from `from`. Bare LF line ends count, as httparse takes them.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        if rest.first() == Some(&b'\r') && rest.len() == 1 {
            return None;
        }
        i = nl + 1;
    }
    None
}

/// The framing state machine, independent of IO so it can be tested and
/// fuzzed on its own.
#[derive(Debug)]
pub struct Framer {
    mode: Mode,
    /// An incomplete request head.
    head: Vec<u8>,
    /// An attach or exec start without `Upgrade` was made an upgrade: its
    /// `101` must go out as `200 OK`.
    plain_hijack: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Framer {
            mode: Mode::Head,
            head: Vec::new(),
            plain_hijack: false,
        }
    }
}

impl Framer {
    /// How many bytes at the start of `input` pass to hyper unchanged
    /// (body bytes, or everything once upgraded). 0 while in a head.
    fn pass_len(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            match self.mode {
                Mode::Through => return input.len(),
                Mode::Head => return i,
                Mode::Length(n) => {
                    let take = n.min((input.len() - i) as u64);
                    i += take as usize;
                    let left = n - take;
                    self.mode = if left == 0 {
                        Mode::Head
                    } else {
                        Mode::Length(left)
                    };
                }
                Mode::Chunked(Chunk::Data(n)) => {
                    let take = n.min((input.len() - i) as u64);
                    i += take as usize;
                    let left = n - take;
                    self.mode = Mode::Chunked(if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left)
                    });
                }
                Mode::Chunked(c) => {
                    self.mode = chunk_byte(c, input[i]);
                    i += 1;
                }
            }
        }
        i
    }

    /// Feed bytes read from the socket; whatever hyper may read next is
    /// appended to `out`. Head bytes are held until the head is complete.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut owned: Vec<u8>;
        let mut input = input;
        loop {
            let n = self.pass_len(input);
            out.extend_from_slice(&input[..n]);
            input = &input[n..];
            if input.is_empty() {
                return;
            }
            // In a head. Empty lines before a request line pass as they are.
            if self.head.is_empty() {
                let skip = input
                    .iter()
                    .position(|&b| b != b'\r' && b != b'\n')
                    .unwrap_or(input.len());
                out.extend_from_slice(&input[..skip]);
                input = &input[skip..];
                if input.is_empty() {
                    return;
                }
            }
            let from = self.head.len().saturating_sub(3);
            self.head.extend_from_slice(input);
            match head_end(&self.head, from) {
                Some(end) => {
                    // The bytes after the head go round again.
                    owned = self.head.split_off(end);
                    input = &owned;
                    let head = std::mem::take(&mut self.head);
                    self.mode = framing(&head);
                    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(0);
                    let line = head[..line_end]
                        .strip_suffix(b"\r")
                        .unwrap_or(&head[..line_end]);
                    let plain = self.mode != Mode::Through && is_hijack_target(line);
                    let both = self.mode == Mode::Through && has_both_framings(&head);
                    match rewrite_request_line(line) {
                        Some(fixed) => {
                            out.extend_from_slice(&fixed);
                            out.extend_from_slice(&head[line.len()..]);
                        }
                        None => out.extend_from_slice(&head),
                    }
                    if both {
                        let blank = if out.ends_with(b"\r\n\r\n") { 2 } else { 1 };
                        let at = out.len() - blank;
                        let add = format!("{BAD_FRAMING}: 1\r\n");
                        out.splice(at..at, add.into_bytes());
                    }
                    if plain {
                        // Before the blank line that ends the head.
                        let blank = if out.ends_with(b"\r\n\r\n") { 2 } else { 1 };
                        let at = out.len() - blank;
                        let add = format!("Upgrade: tcp\r\n{PLAIN_HIJACK}: 1\r\n");
                        out.splice(at..at, add.into_bytes());
                        self.plain_hijack = true;
                        self.mode = Mode::Through;
                    }
                }
                None => {
                    if self.head.len() > MAX_HEAD {
                        out.append(&mut self.head);
                        self.mode = Mode::Through;
                    }
                    return;
                }
            }
        }
    }

    /// At end of input: hand an incomplete head to hyper as it is.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.head);
    }

    /// True when body or upgraded bytes can be read straight into hyper's
    /// buffer (no head is pending).
    fn passing(&self) -> bool {
        self.head.is_empty() && !matches!(self.mode, Mode::Head)
    }
}

fn chunk_byte(c: Chunk, b: u8) -> Mode {
    let next = match c {
        Chunk::Size { size, seen } => match (b as char).to_digit(16) {
            Some(d) if seen < 16 => Chunk::Size {
                size: size * 16 + d as u64,
                seen: seen + 1,
            },
            None if seen > 0 && (b == b';' || b == b' ' || b == b'\t') => Chunk::Ext { size },
            None if seen > 0 && b == b'\r' => Chunk::SizeLf { size },
            None if seen > 0 && b == b'\n' => return after_size(size),
            _ => return Mode::Through,
        },
        Chunk::Ext { size } => match b {
            b'\r' => Chunk::SizeLf { size },
            b'\n' => return after_size(size),
            _ => Chunk::Ext { size },
        },
        Chunk::SizeLf { size } => match b {
            b'\n' => return after_size(size),
            _ => return Mode::Through,
        },
        Chunk::Data(_) => unreachable!("data is skipped in bulk"),
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            b'\n' => Chunk::Size { size: 0, seen: 0 },
            _ => return Mode::Through,
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size { size: 0, seen: 0 },
            _ => return Mode::Through,
        },
        Chunk::Trailer { empty } => match b {
            b'\n' if empty => return Mode::Head,
            b'\n' => Chunk::Trailer { empty: true },
            b'\r' => Chunk::Trailer { empty },
            _ => Chunk::Trailer { empty: false },
        },
    };
    Mode::Chunked(next)
}

fn after_size(size: u64) -> Mode {
    Mode::Chunked(if size == 0 {
        Chunk::Trailer { empty: true }
    } else {
        Chunk::Data(size)
    })
}

/// The connection as hyper reads it: request targets made acceptable.
pub struct Lenient<IO> {
    inner: IO,
    framer: Framer,
    /// Bytes ready for hyper, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    eof: bool,
    /// A rewritten response head still to be written, from `out_at` on.
    out: Vec<u8>,
    out_at: usize,
}

impl<IO> Lenient<IO> {
    pub fn new(inner: IO) -> Self {
        Lenient {
            inner,
            framer: Framer::default(),
            ready: Vec::new(),
            ready_at: 0,
            eof: false,
            out: Vec::new(),
            out_at: 0,
        }
    }
}

/// The `101` head at the start of `buf` as dockerd's plain hijack answers
/// (`200 OK`, without the upgrade headers), and the length of the head it
/// replaces; `None` when `buf` does not start with a whole `101` head that
/// the handler marked with [`PLAIN_HIJACK`].
pub fn plain_hijack_head(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    if !buf.starts_with(b"HTTP/1.1 101 ") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..end]).ok()?;
    let mut out = String::from("HTTP/1.1 200 OK\r\n");
    let mut marked = false;
    for line in text.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case(PLAIN_HIJACK) {
            marked = true;
            continue;
        }
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("upgrade") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    // Only the handler's answer to the request the reader changed carries
    // the mark (never a genuine upgrade, never body bytes).
    marked.then(|| (out.into_bytes(), end))
}

impl<IO: AsyncWrite + Unpin> Lenient<IO> {
    /// Write out a pending rewritten head.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_at..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.out.clear();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }

    /// The `101` of a plain hijack, taken over: how many bytes of `buf`
    /// it consumed.
    fn take_plain_head(&mut self, buf: &[u8]) -> Option<usize> {
        if !self.framer.plain_hijack {
            return None;
        }
        let (head, used) = plain_hijack_head(buf)?;
        self.framer.plain_hijack = false;
        self.out = head;
        self.out_at = 0;
        Some(used)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Lenient<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = out.remaining().min(this.ready.len() - this.ready_at);
                out.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.framer.passing() {
                // Body bytes: read straight into hyper's buffer; whatever
                // follows the body is taken back and framed.
                let start = out.filled().len();
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                let got = out.filled().len() - start;
                if got == 0 {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                let pass = this.framer.pass_len(&out.filled()[start..]);
                if pass < got {
                    let rest = out.filled()[start + pass..].to_vec();
                    out.set_filled(start + pass);
                    this.framer.feed(&rest, &mut this.ready);
                }
                if pass > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut buf = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut buf);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                this.eof = true;
                this.framer.finish(&mut this.ready);
                continue;
            }
            this.framer.feed(rb.filled(), &mut this.ready);
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Lenient<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        if let Some(used) = this.take_plain_head(buf) {
            // Reported written now; the rewritten head drains first on the
            // next write or flush.
            let _ = this.poll_drain(cx)?;
            return Poll::Ready(Ok(used));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        if this.framer.plain_hijack {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                if let Some(used) = this.take_plain_head(first) {
                    let _ = this.poll_drain(cx)?;
                    return Poll::Ready(Ok(used));
                }
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        f.finish(&mut out);
        out
    }

    fn bytewise(input: &[u8]) -> Vec<u8> {
        let parts: Vec<&[u8]> = input.chunks(1).collect();
        run(&parts)
    }

    #[test]
    fn raw_json_in_the_query_is_escaped() {
        let req =
            b"GET /containers/json?filters={\"status\":[\"running\"]} HTTP/1.1\r\nHost: d\r\n\r\n";
        let want = b"GET /containers/json?filters={%22status%22:[%22running%22]} HTTP/1.1\r\nHost: d\r\n\r\n";
        // `{` and `}` are escaped too: harmless, they decode back.
        let want = String::from_utf8_lossy(want)
            .replace('{', "%7B")
            .replace('}', "%7D");
        assert_eq!(String::from_utf8_lossy(&run(&[req])), want);
        assert_eq!(String::from_utf8_lossy(&bytewise(req)), want);
    }

    #[test]
    fn clean_targets_and_bodies_pass_unchanged() {
        let req: &[u8] = b"POST /containers/create HTTP/1.1\r\nContent-Length: 13\r\n\r\n{\"a\":\"{|}#\"}\nGET /_ping HTTP/1.1\r\n\r\n";
        assert_eq!(run(&[req]), req);
        assert_eq!(bytewise(req), req);
    }

    #[test]
    fn a_body_that_looks_like_a_request_is_not_rewritten() {
        let body = b"GET /x?a=\"b\" HTTP/1.1\r\n\r\n";
        let mut req = format!(
            "POST /images/load HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        req.extend_from_slice(b"GET /y?f=\"1\" HTTP/1.1\r\n\r\n");
        let out = String::from_utf8_lossy(&run(&[&req])).into_owned();
        assert!(out.contains("GET /x?a=\"b\" HTTP/1.1"), "{out}");
        assert!(out.ends_with("GET /y?f=%221%22 HTTP/1.1\r\n\r\n"), "{out}");
    }

    #[test]
    fn chunked_bodies_are_followed() {
        let req: &[u8] = b"POST /images/load HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nGET /\r\n17\r\nGET /a?\"x\" HTTP/1.1\r\n\r\n\r\n0\r\nX-T: 1\r\n\r\n\
            GET /b?\"y\" HTTP/1.1\r\n\r\n";
        for out in [run(&[req]), bytewise(req)] {
            let s = String::from_utf8_lossy(&out).into_owned();
            assert!(s.contains("GET /a?\"x\" HTTP/1.1"), "{s}");
            assert!(s.ends_with("GET /b?%22y%22 HTTP/1.1\r\n\r\n"), "{s}");
            assert_eq!(out.len(), req.len() + 4);
        }
    }

    #[test]
    fn upgrades_step_aside() {
        let req: &[u8] = b"POST /containers/x/attach?stream=1 HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\nGET /\"raw\" HTTP/1.1\r\n\r\n";
        assert_eq!(run(&[req]), req);
    }

    #[test]
    fn bad_framing_is_left_to_hyper() {
        let req: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab GET /?\"\" HTTP/1.1\r\n\r\n";
        assert_eq!(run(&[req]), req);
        let req: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /?\"\" HTTP/1.1\r\n\r\n";
        assert_eq!(run(&[req]), req);
        // An unfinished head reaches hyper as it is.
        assert_eq!(
            run(&[b"GET /?\"x\" HTTP/1.1\r\nHo"]),
            b"GET /?\"x\" HTTP/1.1\r\nHo"
        );
    }

    #[test]
    fn leading_blank_lines_and_bare_lf() {
        let out = run(&[b"\r\n\r\nGET /a?b=\"c\" HTTP/1.1\nHost: d\n\n"]);
        assert_eq!(out, b"\r\n\r\nGET /a?b=%22c%22 HTTP/1.1\nHost: d\n\n");
    }

    #[test]
    fn request_lines_that_are_not_three_parts_are_untouched() {
        assert_eq!(rewrite_request_line(b"GET /a?\"b\""), None);
        assert_eq!(rewrite_request_line(b"GET  HTTP/1.1"), None);
        assert_eq!(rewrite_request_line(b"GET /a?b HTTP/1.1"), None);
        assert_eq!(
            rewrite_request_line("GET /a?n=\u{e9} HTTP/1.1".as_bytes()).as_deref(),
            Some(&b"GET /a?n=%C3%A9 HTTP/1.1"[..])
        );
    }

    #[test]
    fn attach_and_exec_start_without_upgrade_are_made_upgrades() {
        let out = run(&[
            b"POST /v1.41/containers/web/attach?stream=1 HTTP/1.1\r\nHost: d\r\n\r\nstdin bytes",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("POST /v1.41/containers/web/attach?stream=1 HTTP/1.1\r\nHost: d\r\nUpgrade: tcp\r\n{PLAIN_HIJACK}: 1\r\n\r\nstdin bytes")
        );
        let out = run(&[b"POST /exec/abc/start HTTP/1.1\nContent-Length: 2\n\n{}"]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("POST /exec/abc/start HTTP/1.1\nContent-Length: 2\nUpgrade: tcp\r\n{PLAIN_HIJACK}: 1\r\n\n{{}}")
        );
        // Asked for: left as it is. Other paths: not touched.
        let asked: &[u8] =
            b"POST /containers/web/attach HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(run(&[asked]), asked);
        for other in [
            &b"POST /containers/web/attach/x HTTP/1.1\r\n\r\n"[..],
            b"GET /containers/web/attach HTTP/1.1\r\n\r\n",
            b"POST /containers//attach HTTP/1.1\r\n\r\n",
            b"POST /exec/abc/resize HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(run(&[other]), other);
        }
    }

    #[test]
    fn only_a_marked_101_becomes_200() {
        let head = format!("HTTP/1.1 101 Switching Protocols\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n{PLAIN_HIJACK}: 1\r\nApi-Version: 1.53\r\n\r\nrest");
        let (out, used) = plain_hijack_head(head.as_bytes()).unwrap();
        assert_eq!(used, head.len() - 4);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nApi-Version: 1.53\r\n\r\n"
        );
        let genuine =
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
        assert!(plain_hijack_head(genuine).is_none());
        assert!(plain_hijack_head(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
    }

    #[tokio::test]
    async fn lenient_reads_the_same_through_io() {
        use tokio::io::AsyncReadExt;
        let body = vec![b'z'; 100_000];
        let mut input = format!(
            "PUT /c/x/archive?path=/ HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        input.extend_from_slice(&body);
        let tail = b"GET /n?f={\"a\":1} HTTP/1.1\r\n\r\n";
        input.extend_from_slice(tail);
        let (mut w, r) = tokio::io::duplex(4096);
        let feed = input.clone();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for c in feed.chunks(777) {
                w.write_all(c).await.unwrap();
            }
        });
        let mut got = Vec::new();
        let mut l = Lenient::new(r);
        let mut buf = [0u8; 3000];
        loop {
            let n = l.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        let mut want = input[..input.len() - tail.len()].to_vec();
        want.extend_from_slice(b"GET /n?f=%7B%22a%22:1%7D HTTP/1.1\r\n\r\n");
        assert_eq!(got.len(), want.len());
        assert!(got == want);
    }
}
