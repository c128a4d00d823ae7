//! The remote drivers' connections, as the shim's log writer thread uses
//! them: each driver dials its receiver and writes one entry on the open
//! connection ([`Protocol`]); [`Link`] keeps the connection and drops it on
//! an error so the writer reconnects.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use berth_actors::protocol::shim::LogConfig;

use super::logger::Remote;
use crate::logdrivers::net::{self, Conn};
use crate::logdrivers::{self as drivers, fluentd, gelf, journald, syslog, Entry};

/// One driver's side of a connection.
trait Protocol: Send {
    fn dial(&mut self) -> io::Result<Conn>;
    /// On a stream: append one message's bytes to `out` (false: this
    /// message must go by [`Protocol::send_on`], e.g. to wait for an ack).
    fn encode(&mut self, e: &Entry, out: &mut Vec<u8>) -> bool;
    /// Send one message now (datagrams, acknowledged messages).
    fn send_on(&mut self, c: &mut Conn, e: &Entry) -> io::Result<()>;
    fn attempts(&self) -> u32 {
        3
    }
    fn retry_wait(&self) -> Duration {
        Duration::from_millis(100)
    }
}

/// How many bytes of messages a stream connection collects per write.
const WRITE_BATCH: usize = 64 << 10;

/// A protocol and its connection, if open. On a stream, messages are
/// collected and written [`WRITE_BATCH`] bytes at a time (and at every
/// flush): one system call for hundreds of lines.
struct Link<P> {
    p: P,
    conn: Option<Conn>,
    buf: Vec<u8>,
    /// Messages in `buf`.
    held: u64,
    ok: u64,
    lost: u64,
}

impl<P: Protocol> Link<P> {
    fn write_held(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = match self.conn.as_mut() {
            Some(c) => c.send(&self.buf).and_then(|_| c.flush()),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        match r {
            Ok(()) => self.ok += self.held,
            Err(_) => self.lost += self.held,
        }
        self.buf.clear();
        self.held = 0;
        r
    }
}

impl<P: Protocol> Remote for Link<P> {
    fn connect(&mut self) -> io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.p.dial()?);
        }
        Ok(())
    }
    fn connected(&self) -> bool {
        self.conn.is_some()
    }
    fn disconnect(&mut self) {
        self.lost += self.held;
        self.buf.clear();
        self.held = 0;
        self.conn = None;
    }
    fn send(&mut self, e: &Entry) -> io::Result<()> {
        let c = self.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        if c.is_stream() && self.p.encode(e, &mut self.buf) {
            self.held += 1;
            if self.buf.len() >= WRITE_BATCH {
                return self.write_held();
            }
            return Ok(());
        }
        self.write_held()?;
        let c = self.conn.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let r = self.p.send_on(c, e);
        match r {
            Ok(()) => self.ok += 1,
            Err(_) => self.lost += 1,
        }
        r
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write_held()
    }
    fn settle(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.ok), std::mem::take(&mut self.lost))
    }
    fn attempts(&self) -> u32 {
        self.p.attempts()
    }
    fn retry_wait(&self) -> Duration {
        self.p.retry_wait()
    }
}

fn link(p: impl Protocol + 'static) -> Box<dyn Remote> {
    Box::new(Link {
        p,
        conn: None,
        buf: Vec::new(),
        held: 0,
        ok: 0,
        lost: 0,
    })
}

/// The connection of a remote driver (not connected yet).
pub(super) fn remote_for(driver: &str, c: &LogConfig) -> Result<Box<dyn Remote>, String> {
    let o = &c.opts;
    Ok(match driver {
        "syslog" => {
            let s = syslog::Settings::parse(o)?;
            let tls = s.tls(o)?;
            link(Syslog {
                s,
                tls,
                tag: c.info.tag.clone(),
                hostname: c.info.hostname.clone(),
                buf: Vec::new(),
            })
        }
        "gelf" => {
            let s = gelf::Settings::parse(o)?;
            let extras = gelf::extras(&facts(c), &c.info.tag, &c.info.created, &c.attrs);
            link(Gelf {
                s,
                host: c.info.hostname.clone(),
                extras,
                seq: 0,
            })
        }
        "fluentd" => link(Fluentd {
            s: fluentd::Settings::parse(o)?,
            tag: c.info.tag.clone(),
            id: c.info.id.clone(),
            name: c.info.name.clone(),
            attrs: c.attrs.clone(),
            seq: 0,
        }),
        "journald" => {
            let socket = if c.info.journald_socket.is_empty() {
                journald::SOCKET.to_string()
            } else {
                c.info.journald_socket.clone()
            };
            if !std::path::Path::new(&socket).exists() {
                return Err("journald is not enabled on this host".into());
            }
            link(Journald {
                socket,
                vars: journald::vars(&facts(c), &c.info.tag, &c.attrs),
            })
        }
        other => return Err(format!("no log driver named '{other}'")),
    })
}

fn facts(c: &LogConfig) -> drivers::tag::Facts {
    drivers::tag::Facts {
        id: c.info.id.clone(),
        name: c.info.name.clone(),
        image_id: c.info.image_id.clone(),
        image_name: c.info.image_name.clone(),
        command: c.info.command.clone(),
        hostname: c.info.hostname.clone(),
    }
}

/// Connect, with Go's wording of a failure.
fn dial(a: &net::Addr, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Conn> {
    let shown = if a.proto == "tcp+tls" {
        "tcp"
    } else {
        &a.proto
    };
    Conn::connect(a, tls).map_err(|e| io::Error::new(e.kind(), net::dial_error(shown, &a.addr, &e)))
}

struct Syslog {
    s: syslog::Settings,
    tls: Option<Arc<rustls::ClientConfig>>,
    tag: String,
    /// srslog's hostname field: the host's name (else the connection's
    /// local address, as srslog falls back).
    hostname: String,
    buf: Vec<u8>,
}

impl Protocol for Syslog {
    fn dial(&mut self) -> io::Result<Conn> {
        if let Some(a) = &self.s.addr {
            let c = dial(a, self.tls.as_ref())?;
            if self.hostname.is_empty() {
                self.hostname = c.local_addr();
            }
            return Ok(c);
        }
        // The local syslog: each socket as a datagram, then as a stream.
        for path in syslog::LOCAL_SOCKETS {
            for proto in ["unixgram", "unix"] {
                let a = net::Addr {
                    proto: proto.into(),
                    addr: path.to_string(),
                };
                if let Ok(c) = Conn::connect(&a, None) {
                    if self.hostname.is_empty() {
                        self.hostname = "localhost".into();
                    }
                    return Ok(c);
                }
            }
        }
        Err(io::Error::other("Unix syslog delivery error"))
    }
    fn encode(&mut self, e: &Entry, out: &mut Vec<u8>) -> bool {
        syslog::format(
            &self.s,
            &self.hostname,
            &self.tag,
            std::process::id(),
            e.is_stderr(),
            chrono::DateTime::from_timestamp_nanos(e.time_nano).with_timezone(&chrono::Local),
            &e.line,
            out,
        );
        true
    }
    fn send_on(&mut self, c: &mut Conn, e: &Entry) -> io::Result<()> {
        let mut m = std::mem::take(&mut self.buf);
        m.clear();
        self.encode(e, &mut m);
        let r = c.send(&m);
        self.buf = m;
        r
    }
}

struct Gelf {
    s: gelf::Settings,
    host: String,
    extras: serde_json::Map<String, serde_json::Value>,
    seq: u64,
}

impl Protocol for Gelf {
    fn dial(&mut self) -> io::Result<Conn> {
        dial(&self.s.addr, None).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "gelf: cannot connect to GELF endpoint: {} {e}",
                    self.s.addr.addr
                ),
            )
        })
    }
    fn encode(&mut self, e: &Entry, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(&gelf::message(&self.host, e, &self.extras));
        out.push(0);
        true
    }
    fn send_on(&mut self, c: &mut Conn, e: &Entry) -> io::Result<()> {
        let msg = gelf::message(&self.host, e, &self.extras);
        self.seq += 1;
        let id = (u64::from(std::process::id()) << 40 ^ self.seq).to_be_bytes();
        let ds = gelf::datagrams(&self.s, &msg, id)
            .ok_or_else(|| io::Error::other("message too large for 128 chunks"))?;
        for d in ds {
            c.send(&d)?;
        }
        Ok(())
    }
    fn attempts(&self) -> u32 {
        if self.s.addr.proto == "tcp" {
            self.s.max_reconnect.max(1) + 1
        } else {
            1
        }
    }
    fn retry_wait(&self) -> Duration {
        Duration::from_secs(self.s.reconnect_delay).max(Duration::from_millis(100))
    }
}

struct Fluentd {
    s: fluentd::Settings,
    tag: String,
    id: String,
    name: String,
    attrs: BTreeMap<String, String>,
    seq: u64,
}

impl Protocol for Fluentd {
    fn dial(&mut self) -> io::Result<Conn> {
        let c = dial(&self.s.addr, None)?;
        if let Conn::Tcp(t) = &c {
            let _ = t.set_read_timeout(Some(Duration::from_secs(10)));
        }
        Ok(c)
    }
    fn encode(&mut self, e: &Entry, out: &mut Vec<u8>) -> bool {
        if self.s.request_ack {
            return false;
        }
        out.extend_from_slice(&fluentd::message(
            &self.s,
            &self.tag,
            &self.id,
            &self.name,
            e,
            &self.attrs,
            None,
        ));
        true
    }
    fn send_on(&mut self, c: &mut Conn, e: &Entry) -> io::Result<()> {
        self.seq += 1;
        let chunk = self
            .s
            .request_ack
            .then(|| format!("{:x}-{}", std::process::id(), self.seq));
        let m = fluentd::message(
            &self.s,
            &self.tag,
            &self.id,
            &self.name,
            e,
            &self.attrs,
            chunk.as_deref(),
        );
        c.send(&m)?;
        let Some(chunk) = chunk else {
            return Ok(());
        };
        // The answer is a map {"ack": chunk}.
        let r = c
            .reader()
            .ok_or_else(|| io::Error::other("acks need a stream connection"))?;
        let mut got = Vec::new();
        let mut b = [0u8; 256];
        while !got.windows(chunk.len()).any(|w| w == chunk.as_bytes()) {
            let n = r.read(&mut b)?;
            if n == 0 || got.len() > 4096 {
                return Err(io::Error::other("fluentd closed before the ack"));
            }
            got.extend_from_slice(&b[..n]);
        }
        Ok(())
    }
    fn attempts(&self) -> u32 {
        u32::try_from(self.s.max_retries.saturating_add(1))
            .unwrap_or(u32::MAX)
            .min(10)
    }
    fn retry_wait(&self) -> Duration {
        self.s.retry_wait.max(Duration::from_millis(10))
    }
}

struct Journald {
    socket: String,
    vars: Vec<(String, String)>,
}

impl Protocol for Journald {
    fn dial(&mut self) -> io::Result<Conn> {
        let a = net::Addr {
            proto: "unixgram".into(),
            addr: self.socket.clone(),
        };
        Conn::connect(&a, None)
    }
    fn encode(&mut self, _: &Entry, _: &mut Vec<u8>) -> bool {
        false
    }
    fn send_on(&mut self, c: &mut Conn, e: &Entry) -> io::Result<()> {
        c.send(&journald::message(e, &self.vars))
    }
}
