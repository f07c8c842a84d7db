//! Reading one request from a connection, within bounds: the head (request
//! line and headers) at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`]
//! headers, a body of at most [`MAX_BODY`] bytes (`Content-Length` only),
//! everything before one deadline (a client that trickles bytes is cut off
//! when the deadline passes, not when it pauses too long between two).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// The most bytes of request line and headers read.
pub const MAX_HEAD: usize = 8192;
/// The most headers in a request.
pub const MAX_HEADERS: usize = 32;
/// The largest request body accepted (the API's requests have none).
pub const MAX_BODY: usize = 1024;

/// A parsed request head (the body is read and dropped).
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (`/api/pairs/x%20y/pause?z`).
    pub target: String,
    /// Header names (lower case) and raw values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// The value of the only header named `name` (lower case); `Err` when
    /// it is repeated (ambiguous: treated as bad input).
    pub fn header(&self, name: &str) -> Result<Option<&[u8]>, RepeatedHeader> {
        let mut found = None;
        for (n, v) in &self.headers {
            if n == name {
                if found.is_some() {
                    return Err(RepeatedHeader);
                }
                found = Some(v.as_slice());
            }
        }
        Ok(found)
    }
}

/// A header that must appear once appears more often.
#[derive(Debug, PartialEq, Eq)]
pub struct RepeatedHeader;

/// Why no request was read; each maps to an answer (or none).
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed or reset before a whole request.
    Closed,
    /// The deadline passed (408).
    Timeout,
    /// The head is over [`MAX_HEAD`] or has too many headers (431).
    HeadTooLarge,
    /// The body is over [`MAX_BODY`] (413).
    BodyTooLarge,
    /// Not HTTP/1.x, a bad `Content-Length`, or `Transfer-Encoding` (400).
    Bad,
}

impl ReadError {
    /// The status line's code and reason to answer with, if any.
    pub fn status(&self) -> Option<(u16, &'static str)> {
        match self {
            ReadError::Closed => None,
            ReadError::Timeout => Some((408, "Request Timeout")),
            ReadError::HeadTooLarge => Some((431, "Request Header Fields Too Large")),
            ReadError::BodyTooLarge => Some((413, "Content Too Large")),
            ReadError::Bad => Some((400, "Bad Request")),
        }
    }
}

/// Reads one request from `stream`, all of it before `deadline`.
pub fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Request, ReadError> {
    let mut buf = vec![0u8; MAX_HEAD + MAX_BODY];
    let mut len = 0;
    let (req, head_len) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(n)) => {
                let req = Request {
                    method: parsed.method.unwrap_or_default().to_owned(),
                    target: parsed.path.unwrap_or_default().to_owned(),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                        .collect(),
                };
                break (req, n);
            }
            Ok(httparse::Status::Partial) if len >= MAX_HEAD => {
                return Err(ReadError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::HeadTooLarge),
            Err(_) => return Err(ReadError::Bad),
        }
        len += read_some(stream, &mut buf[len..MAX_HEAD], deadline)?;
    };
    if req
        .header("transfer-encoding")
        .map_err(|_| ReadError::Bad)?
        .is_some()
    {
        return Err(ReadError::Bad);
    }
    let body = match req.header("content-length").map_err(|_| ReadError::Bad)? {
        None => 0,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(ReadError::Bad)?,
    };
    if body > MAX_BODY as u64 {
        return Err(ReadError::BodyTooLarge);
    }
    let end = head_len + body as usize;
    while len < end {
        len += read_some(stream, &mut buf[len..end], deadline)?;
    }
    Ok(req)
}

/// One `read` into `buf` (not empty), bounded by `deadline`.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, ReadError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| ReadError::Closed)?;
        match stream.read(buf) {
            Ok(0) => return Err(ReadError::Closed),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Timeout)
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
}

/// An answer: status, type, extra headers and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Headers besides the ones every answer has.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A 200 answer.
    pub fn ok(content_type: &'static str, body: String) -> Response {
        Response {
            status: 200,
            reason: "OK",
            content_type,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, reason: &'static str, body: String) -> Response {
        Response {
            status,
            reason,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// An error answer: `{"error":"..."}`.
    pub fn error(status: u16, reason: &'static str, message: &str) -> Response {
        let mut body = String::from("{\"error\":");
        crate::daemon::json::push_str(&mut body, message);
        body.push('}');
        Response::json(status, reason, body)
    }

    /// Writes the answer, all of it before `deadline` (a client that takes
    /// it a few bytes at a time is cut off then); the connection is closed
    /// after it.
    pub fn write_to(&self, stream: &TcpStream, deadline: Instant) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        write_all(stream, head.as_bytes(), deadline)?;
        write_all(stream, &self.body, deadline)
    }
}

/// `write_all` bounded by one deadline for all of it.
fn write_all(mut stream: &TcpStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
