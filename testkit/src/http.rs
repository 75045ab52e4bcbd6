//! A minimal blocking HTTP/1.1 client over std TCP (one request per connection), so what a
//! test measures does not depend on a client library's pool or runtime, and a test can send
//! what no client library would (no Host header, a body the server refuses half-way).

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

/// One request: [`http_answer`] with the address as Host; the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    let host = addr.to_string();
    http_answer(addr, method, path, Some(&host), headers, body, timeout)
        .map(|answer| (answer.status, answer.body))
}

fn parse_response(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| bad("headers not UTF-8"))?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut body = raw[head_end + 4..].to_vec();
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok((code, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// `GET path`: the status and the body.
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    http(addr, "GET", path, headers, b"", timeout)
}

/// An HTTP answer with its headers (names lower-cased).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `error` of a JSON error body.
    pub fn error(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                panic!(
                    "{}: not a JSON error: {}",
                    self.status,
                    String::from_utf8_lossy(&self.body)
                )
            })
    }
}

/// [`http`] with the `Host` header chosen by the caller (`None`: none sent) and the answer's
/// headers kept.
pub fn http_answer(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Answer> {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(host) = host {
        req.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A server may answer (413) and close before reading a large body: keep what it said.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    let (status, body) = parse_response(&raw)?;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    let headers = String::from_utf8_lossy(&raw[..head_end])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// `GET path` read as JSON: the status and the body as a JSON value (`Null` when the body is
/// not JSON, e.g. a plain-text error).
pub fn get_json(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<(u16, serde_json::Value)> {
    let (status, body) = http_get(addr, path, headers, timeout)?;
    Ok((
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One canned answer on a loopback socket; returns its address and the request it read.
    fn answer_once(raw: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<String>) {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = vec![0u8; 4096];
            let n = s.read(&mut request).unwrap();
            s.write_all(raw).unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        (addr, served)
    }

    #[test]
    fn reads_a_chunked_json_answer() {
        let (addr, served) = answer_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        );
        let (status, value) = get_json(
            addr,
            "/x",
            &[("Authorization", "Bearer t")],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(value["a"], 1);
        let request = served.join().unwrap();
        assert!(request.starts_with("GET /x HTTP/1.1\r\n"), "{request}");
        assert!(request.contains(&format!("Host: {addr}\r\n")), "{request}");
        assert!(request.contains("Authorization: Bearer t\r\n"), "{request}");
    }

    #[test]
    fn keeps_headers_and_reads_errors() {
        let (addr, _served) = answer_once(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n\r\n{\"error\":\"too big\"}",
        );
        let answer = http_answer(
            addr,
            "POST",
            "/y",
            None,
            &[],
            b"body",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(answer.status, 413);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.error(), "too big");
    }

    #[test]
    fn a_broken_answer_is_an_error() {
        let (addr, _served) = answer_once(b"HTTP/1.1 200 OK\r\nno end");
        assert!(http_get(addr, "/", &[], Duration::from_secs(5)).is_err());
    }
}
