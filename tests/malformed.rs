//! Malformed requests get dockerd's status codes and berthd stays up.

use crate::common;

use common::*;

#[test]
fn malformed_requests_get_the_right_status_and_the_daemon_survives() {
    let d = Daemon::start();

    // Unknown route.
    let r = d.get("/v1.41/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "page not found");

    // Versions outside the served range, and a prefix that is not a version.
    let r = d.get("/v1.39/version");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version"
    );
    let r = d.get("/v1.54/version");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "client version 1.54 is too new. Maximum supported API version is 1.53"
    );
    assert_eq!(d.get("/vabc/version").status, 404);
    assert_eq!(d.get("/v1.2.3/version").status, 400);

    // Bad JSON in a filters parameter; an unknown filter key.
    let r = d.get("/events?filters=%7Bbad&until=1");
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("invalid filter"));
    let r = d.get("/events?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D&until=1");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "invalid filter 'bogus'");
    assert_eq!(d.get("/events?since=yesterday").status, 400);

    // A body over the 4 MiB cap: by Content-Length and by chunks.
    let big = 5 << 20;
    let r = d.raw(
        format!(
            "GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413);
    let mut chunked = b"GET /_ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(d.raw(&chunked).status, 413);

    // A 2 MiB header.
    let mut huge = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 << 20));
    huge.extend_from_slice(b"\r\n\r\n");
    assert_eq!(d.raw(&huge).status, 431);

    // Garbage instead of HTTP.
    assert_eq!(d.raw(b"\x00\x01garbage\r\n\r\n").status, 400);

    // Still up and serving.
    assert_eq!(d.get("/_ping").status, 200);
    d.docker_ok(&["version"]);
    d.stop();
}
