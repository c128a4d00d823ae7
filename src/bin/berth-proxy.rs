//! berth-proxy: the userland proxy of one published port (`userland-proxy:
//! true`), with docker-proxy's command line and parent protocol, so either
//! can be `userland-proxy-path`:
//!
//! `berth-proxy -proto tcp|udp -host-ip IP -host-port N -container-ip IP -container-port N`
//!
//! It binds the host address, then writes `0\n` to fd 3 (or `1\n<error>`
//! and exits 1) and serves until SIGTERM. berthd starts it in its own
//! session, so published ports keep working while berthd is down.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// UDP flows idle longer than this are forgotten (docker-proxy's 90 s).
const UDP_IDLE: Duration = Duration::from_secs(90);

struct Args {
    proto: String,
    host: SocketAddr,
    container: SocketAddr,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut proto, mut hip, mut hport, mut cip, mut cport) =
        ("tcp".to_string(), None, None, None, None);
    while let Some(a) = it.next() {
        let key = a.trim_start_matches('-').to_string();
        let (key, val) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (
                key,
                it.next().ok_or(format!("flag needs an argument: {a}"))?,
            ),
        };
        match key.as_str() {
            "proto" => proto = val,
            "host-ip" => hip = Some(val.parse::<IpAddr>().map_err(|e| format!("host-ip: {e}"))?),
            "host-port" => hport = Some(val.parse::<u16>().map_err(|e| format!("host-port: {e}"))?),
            "container-ip" => {
                cip = Some(
                    val.parse::<IpAddr>()
                        .map_err(|e| format!("container-ip: {e}"))?,
                )
            }
            "container-port" => {
                cport = Some(
                    val.parse::<u16>()
                        .map_err(|e| format!("container-port: {e}"))?,
                )
            }
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    match (hip, hport, cip, cport) {
        (Some(hi), Some(hp), Some(ci), Some(cp)) => Ok(Args {
            proto,
            host: SocketAddr::new(hi, hp),
            container: SocketAddr::new(ci, cp),
        }),
        _ => Err("-host-ip, -host-port, -container-ip and -container-port are required".into()),
    }
}

/// Tell the parent through fd 3 (if it gave one).
fn signal_parent(msg: &str) {
    // SAFETY: fd 3 is the write end of the pipe berthd (or dockerd) passes;
    // when it is not open, the write fails and nothing else is touched. The
    // File is forgotten only after the message is written and closed by drop.
    let mut f = unsafe { std::fs::File::from_raw_fd(3) };
    let _ = f.write_all(msg.as_bytes());
}

/// Copy `from` to `to` with splice through a pipe (no user-space copy),
/// falling back to read/write; then half-close `to`.
fn pump(from: TcpStream, to: TcpStream) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    let piped = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0;
    if piped {
        // A 1 MiB pipe: fewer round trips per megabyte (as Go's splice,
        // which docker-proxy uses); a smaller pipe still works.
        // SAFETY: fcntl on the pipe descriptor just created.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
        const CHUNK: usize = 1 << 20;
        'outer: loop {
            // SAFETY: splice between descriptors this thread holds open
            // (the sockets and our pipe); null offsets for sockets/pipes.
            let n = unsafe {
                libc::splice(
                    from.as_raw_fd(),
                    std::ptr::null_mut(),
                    fds[1],
                    std::ptr::null_mut(),
                    CHUNK,
                    libc::SPLICE_F_MOVE,
                )
            };
            if n <= 0 {
                break;
            }
            let mut left = n as usize;
            while left > 0 {
                // SAFETY: as above, from our pipe to the destination socket.
                let m = unsafe {
                    libc::splice(
                        fds[0],
                        std::ptr::null_mut(),
                        to.as_raw_fd(),
                        std::ptr::null_mut(),
                        left,
                        libc::SPLICE_F_MOVE,
                    )
                };
                if m <= 0 {
                    break 'outer;
                }
                left -= m as usize;
            }
        }
        // SAFETY: closing the two pipe descriptors this function created.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    } else {
        let (mut r, mut w) = (&from, &to);
        let _ = std::io::copy(&mut r, &mut w);
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn serve_tcp(l: TcpListener, container: SocketAddr) {
    for c in l.incoming() {
        let Ok(client) = c else { continue };
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect(container) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (c2, u2) = match (client.try_clone(), upstream.try_clone()) {
                (Ok(c), Ok(u)) => (c, u),
                _ => return,
            };
            let t = std::thread::spawn(move || pump(c2, u2));
            pump(upstream, client);
            let _ = t.join();
        });
    }
}

fn serve_udp(s: UdpSocket, container: SocketAddr) {
    let s = Arc::new(s);
    let flows: Arc<Mutex<std::collections::HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = s.recv_from(&mut buf) else {
            continue;
        };
        let up = {
            let mut f = flows.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(u) = f.get(&client) {
                u.clone()
            } else {
                let bind: SocketAddr = if container.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap_or(container)
                } else {
                    "[::]:0".parse().unwrap_or(container)
                };
                let Ok(u) = UdpSocket::bind(bind) else {
                    continue;
                };
                if u.connect(container).is_err() {
                    continue;
                }
                let _ = u.set_read_timeout(Some(UDP_IDLE));
                let u = Arc::new(u);
                f.insert(client, u.clone());
                let (back, s2, flows2) = (u.clone(), s.clone(), flows.clone());
                std::thread::spawn(move || {
                    let mut b = vec![0u8; 65536];
                    while let Ok(m) = back.recv(&mut b) {
                        let _ = s2.send_to(&b[..m], client);
                    }
                    flows2
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&client);
                });
                u
            }
        };
        let _ = up.send(&buf[..n]);
    }
}

/// A socket bound to `addr`; an IPv6 address is bound IPv6-only (as Go's
/// docker-proxy does), so `0.0.0.0:P` and `[::]:P` are two proxies.
fn bind(addr: SocketAddr, udp: bool) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Socket, Type};
    let ty = if udp { Type::DGRAM } else { Type::STREAM };
    let s = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if !udp {
        s.set_reuse_address(true)?;
    }
    s.set_cloexec(true)?;
    s.bind(&addr.into())?;
    if !udp {
        s.listen(1024)?;
    }
    Ok(s)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            signal_parent(&format!("1\n{e}"));
            eprintln!("berth-proxy: {e}");
            std::process::exit(2);
        }
    };
    match args.proto.as_str() {
        "tcp" => match bind(args.host, false) {
            Ok(l) => {
                signal_parent("0\n");
                serve_tcp(l.into(), args.container);
            }
            Err(e) => {
                signal_parent(&format!("1\nlisten tcp {}: bind: {e}", args.host));
                std::process::exit(1);
            }
        },
        "udp" => match bind(args.host, true) {
            Ok(s) => {
                signal_parent("0\n");
                serve_udp(s.into(), args.container);
            }
            Err(e) => {
                signal_parent(&format!("1\nlisten udp {}: bind: {e}", args.host));
                std::process::exit(1);
            }
        },
        p => {
            signal_parent(&format!("1\nunsupported protocol {p}"));
            std::process::exit(1);
        }
    }
}
