//! Sequential keep-alive GET load on a unix socket; prints requests/second.
//! Std only, built by bench/run.sh with `rustc -O`, so the client is never
//! the bottleneck the way a Python loop would be.
//! Usage: loadgen SOCKET PATH SECONDS

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        eprintln!("usage: loadgen SOCKET PATH SECONDS");
        std::process::exit(2);
    }
    let secs: f64 = a[3].parse().expect("seconds");
    let mut s = UnixStream::connect(&a[1]).expect("connect");
    let req = format!("GET {} HTTP/1.1\r\nHost: bench\r\n\r\n", a[2]).into_bytes();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut tmp = vec![0u8; 1 << 16];
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut n: u64 = 0;
    while Instant::now() < end {
        s.write_all(&req).expect("write");
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            let k = s.read(&mut tmp).expect("read");
            assert!(k > 0, "closed");
            buf.extend_from_slice(&tmp[..k]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let chunked = head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        if chunked {
            // Chunks until the zero-size one and its empty trailer.
            let mut pos = head_end + 4;
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf[pos..], b"\r\n") {
                        break pos + i;
                    }
                    let k = s.read(&mut tmp).expect("read");
                    assert!(k > 0, "closed");
                    buf.extend_from_slice(&tmp[..k]);
                };
                let size_text = String::from_utf8_lossy(&buf[pos..line_end]).to_string();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16).expect("chunk size");
                let need = line_end + 2 + size + 2;
                while buf.len() < need {
                    let k = s.read(&mut tmp).expect("read");
                    assert!(k > 0, "closed");
                    buf.extend_from_slice(&tmp[..k]);
                }
                pos = need;
                if size == 0 {
                    break;
                }
            }
            buf.drain(..pos);
            n += 1;
            continue;
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("length"))
            .unwrap_or(0);
        while buf.len() < head_end + 4 + len {
            let k = s.read(&mut tmp).expect("read");
            assert!(k > 0, "closed");
            buf.extend_from_slice(&tmp[..k]);
        }
        buf.drain(..head_end + 4 + len);
        n += 1;
    }
    println!("{:.1}", n as f64 / secs);
}
