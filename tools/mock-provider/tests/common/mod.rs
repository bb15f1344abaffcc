//! Test harness: starts the real `mock-provider` binary on a free port and talks
//! to it with a tiny raw HTTP/1.1 client, so tests can see the exact bytes,
//! the chunked framing, individual socket reads, and aborted connections.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
    pub line: String,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mock-provider"))
            .args(["--listen", "127.0.0.1:0", "--threads", "2"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mock-provider");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read listening line");
        let addr = line
            .trim_end()
            .strip_prefix("mock-provider listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .expect("address");
        Server {
            child,
            _stdout: stdout,
            addr,
            line,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.addr)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.conn().send(method, path, headers, body.as_bytes())
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        self.request("POST", path, headers, &body.to_string())
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], "")
    }

    /// Send a signal and wait for the process to exit.
    pub fn signal_and_wait(&mut self, sig: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "mock-provider did not exit on {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Data of each HTTP chunk, in order (chunked responses only).
    pub chunks: Vec<Vec<u8>>,
    pub chunked: bool,
    /// The body was fully received (terminating chunk / content-length reached).
    pub complete: bool,
    /// Sizes of the socket reads that delivered body bytes.
    pub body_reads: Vec<usize>,
    /// Set when the connection ended before the body was complete.
    pub abort: Option<std::io::ErrorKind>,
    /// Time from sending the request to receiving the end of the headers.
    pub headers_after: Duration,
    /// Time from sending the request to the end of the body.
    pub total: Duration,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "invalid JSON body ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: Option<std::io::ErrorKind>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Conn {
            stream,
            buf: Vec::new(),
            eof: None,
        }
    }

    /// One read from the socket into `buf`; returns bytes read (0 on EOF/error).
    fn fill(&mut self) -> usize {
        if self.eof.is_some() {
            return 0;
        }
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = Some(std::io::ErrorKind::UnexpectedEof);
                0
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                n
            }
            Err(e) => {
                self.eof = Some(e.kind());
                0
            }
        }
    }

    fn take_line(&mut self) -> Option<Vec<u8>> {
        let pos = self.buf.windows(2).position(|w| w == b"\r\n")?;
        let line = self.buf[..pos].to_vec();
        self.buf.drain(..pos + 2);
        Some(line)
    }

    pub fn set_read_timeout(&mut self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).expect("timeout");
    }

    /// Whether the server has closed the connection (EOF or reset) within
    /// `wait`, without anything more arriving.
    pub fn closed_by_peer(&mut self, wait: Duration) -> bool {
        self.set_read_timeout(wait);
        let before = self.buf.len();
        self.fill();
        assert_eq!(
            self.buf.len(),
            before,
            "unexpected bytes after the response"
        );
        matches!(
            self.eof,
            Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
        )
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|eof| panic!("connection closed before response headers: {eof:?}"))
    }

    /// Like `send`, but a connection closed before any response header is
    /// `Err(how it ended)` instead of a panic.
    pub fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Resp, Option<std::io::ErrorKind>> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: mock\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        let start = Instant::now();
        self.stream.write_all(&bytes).expect("write request");
        self.read_response(start, method == "HEAD")
    }

    fn read_response(
        &mut self,
        start: Instant,
        head: bool,
    ) -> Result<Resp, Option<std::io::ErrorKind>> {
        let mut resp = Resp::default();
        // Head.
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if self.fill() == 0 {
                return Err(self.eof);
            }
        };
        resp.headers_after = start.elapsed();
        let head_bytes: Vec<u8> = self.buf.drain(..head_end + 4).collect();
        let head_text = String::from_utf8(head_bytes).expect("utf-8 head");
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().expect("status line");
        resp.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        for l in lines.filter(|l| !l.is_empty()) {
            let (k, v) = l.split_once(':').expect("header line");
            resp.headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        if head || resp.status == 204 || resp.status == 304 {
            resp.complete = true;
            resp.total = start.elapsed();
            return Ok(resp);
        }

        let record = |conn: &mut Conn, resp: &mut Resp| -> bool {
            let n = conn.fill();
            if n > 0 {
                resp.body_reads.push(n);
            }
            n > 0
        };
        // Bytes already buffered with the head count as part of the first read.
        if !self.buf.is_empty() {
            resp.body_reads.push(self.buf.len());
        }

        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            resp.chunked = true;
            'chunks: loop {
                let line = loop {
                    if let Some(l) = self.take_line() {
                        break l;
                    }
                    if !record(self, &mut resp) {
                        break 'chunks;
                    }
                };
                let size_text = String::from_utf8(line).expect("chunk size line");
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .expect("chunk size");
                if size == 0 {
                    // Final chunk; no trailers expected.
                    loop {
                        if self.take_line().is_some() {
                            break;
                        }
                        if !record(self, &mut resp) {
                            break 'chunks;
                        }
                    }
                    resp.complete = true;
                    break;
                }
                while self.buf.len() < size + 2 {
                    if !record(self, &mut resp) {
                        break 'chunks;
                    }
                }
                let data: Vec<u8> = self.buf.drain(..size).collect();
                assert_eq!(&self.buf[..2], b"\r\n", "chunk not followed by CRLF");
                self.buf.drain(..2);
                resp.body.extend_from_slice(&data);
                resp.chunks.push(data);
            }
        } else {
            let len: usize = resp
                .header("content-length")
                .map(|v| v.parse().expect("content-length"))
                .unwrap_or(0);
            while self.buf.len() < len {
                if !record(self, &mut resp) {
                    break;
                }
            }
            if self.buf.len() >= len {
                resp.body = self.buf.drain(..len).collect();
                resp.complete = true;
            }
        }
        if !resp.complete {
            resp.abort = self.eof;
            resp.body.extend_from_slice(&self.buf);
        }
        resp.total = start.elapsed();
        Ok(resp)
    }
}

// ---------------------------------------------------------------------------
// Stream parsing

/// OpenAI-style `data: …\n\n` events; returns the JSON payloads and asserts the
/// stream ends with `data: [DONE]`.
pub fn openai_events(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "stream must end with [DONE]: {body}"
    );
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad event {e:?}"))
        })
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("event JSON"))
        .collect()
}

/// Anthropic-style `event: X\ndata: {…}\n\n` events.
pub fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"));
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (ev, data) = e.split_once('\n').expect("two lines");
            let name = ev.strip_prefix("event: ").expect("event line").to_string();
            let data = data.strip_prefix("data: ").expect("data line");
            let v: Value = serde_json::from_str(data).expect("event JSON");
            assert_eq!(v["type"], name.as_str(), "event name matches data.type");
            (name, v)
        })
        .collect()
}

/// Gemini SSE: `data: {…}\r\n\r\n`.
pub fn gemini_events(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with("\r\n\r\n"),
        "Gemini events end with CRLF CRLF"
    );
    body.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            assert!(!e.contains('\n'), "single-line event");
            serde_json::from_str(e.strip_prefix("data: ").expect("data: prefix")).expect("JSON")
        })
        .collect()
}

/// Replace the volatile `created` timestamp so bodies can be compared exactly.
pub fn mask_created(v: &mut Value) {
    if let Some(c) = v.get_mut("created") {
        assert!(
            c.as_u64().is_some_and(|t| t > 1_600_000_000),
            "created is a unix time"
        );
        *c = Value::from(0);
    }
}

pub const JSON: (&str, &str) = ("content-type", "application/json");

/// Decode a body per its `content-encoding` (none, gzip, deflate = zlib, br).
pub fn decode(encoding: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(data),
        Some("gzip") => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .expect("gzip");
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(data)
                .read_to_end(&mut out)
                .expect("zlib");
        }
        Some("br") => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .expect("brotli");
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

impl Resp {
    /// The body decoded per its `content-encoding`.
    pub fn decoded(&self) -> Vec<u8> {
        decode(self.header("content-encoding"), &self.body)
    }

    pub fn decoded_text(&self) -> String {
        String::from_utf8(self.decoded()).expect("utf-8 body")
    }

    pub fn decoded_json(&self) -> Value {
        serde_json::from_slice(&self.decoded()).expect("JSON body")
    }
}

/// Responses API `event: X\ndata: {…}\n\n` events; checks that `type`
/// matches the event name and that sequence numbers count from 0.
pub fn responses_events(body: &str) -> Vec<(String, Value)> {
    let events = anthropic_events(body);
    for (i, (_, v)) in events.iter().enumerate() {
        assert_eq!(v["sequence_number"], i, "sequence_number of event {i}");
    }
    events
}
