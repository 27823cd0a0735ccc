//! The HTTP server's request parsing, as values (the running server is tested with the
//! focus's API handler in `ops::api`).

use super::*;

fn req(method: &str, path: &str, body: &[u8]) -> Request {
    Request { method: method.into(), path: path.into(), body: body.to_vec() }
}

#[test]
fn requests_parse_incrementally_and_bad_ones_get_their_status() {
    let full = b"POST /conference-request/v1?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n{\"room\":1}!";
    for i in 0..full.len() {
        assert_eq!(parse_request(&full[..i]), Ok(Parsed::Incomplete { expects_continue: false }), "at {i}");
    }
    assert_eq!(parse_request(full), Ok(Parsed::Complete(req("POST", "/conference-request/v1", b"{\"room\":1}!"))));
    // Bytes after the body (pipelining) are ignored; no body without Content-Length.
    let get = b"GET /stats HTTP/1.0\r\n\r\nGET /x HTTP/1.0\r\n\r\n";
    assert_eq!(parse_request(get), Ok(Parsed::Complete(req("GET", "/stats", b""))));
    // Expect: 100-continue is reported once the head is complete.
    let head = b"POST /p HTTP/1.1\r\nExpect: 100-continue\r\ncontent-length: 2\r\n\r\n";
    assert_eq!(parse_request(head), Ok(Parsed::Incomplete { expects_continue: true }));
    let mut with_body = head.to_vec();
    with_body.extend_from_slice(b"{}");
    assert!(matches!(parse_request(&with_body), Ok(Parsed::Complete(_))));

    let status = |b: &[u8]| parse_request(b).unwrap_err().status;
    assert_eq!(status(format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1).as_bytes()), 413);
    assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400);
    assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
    assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"), 400);
    assert_eq!(status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
    assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
    assert_eq!(status(b"GET /\r\n\r\n"), 400);
    assert_eq!(status(b"GET  / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET x HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"G(T / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nExpect: something\r\n\r\n"), 400);
    assert_eq!(status(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"), 400);
    // More headers than MAX_HEADERS is a head too large; a bad byte is refused as soon as it arrives.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(status(&many), 431);
    assert_eq!(status(b"GET / HTTP/1.1\r\nX\x01"), 400);
    assert_eq!(status(b"G(T / HT"), 400);
    let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
    huge.resize(MAX_HEAD, b'a');
    assert_eq!(status(&huge), 431);

    // Never a panic, whatever the bytes.
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let alphabet = b"GET POST / HTTP/1.1\r\n:Content-Length: 0123456789Expect100-continue\xff";
    for _ in 0..20_000 {
        let n = (x % 200) as usize;
        let bytes: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect();
        let _ = parse_request(&bytes);
    }
}
