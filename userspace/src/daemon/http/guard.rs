//! Who may do what over HTTP.
//!
//! * Without a token (the listener is on loopback): every request must name
//!   this server in `Host` (`localhost`, `127.x.y.z` or `[::1]` with our
//!   port), so that a page whose name was rebound to 127.0.0.1 (DNS
//!   rebinding) is refused. Reads need nothing else. A state-changing
//!   request must come from the page's own origin: `Sec-Fetch-Site`, when
//!   sent, is `same-origin`, `Origin`, when sent, is `http://` + our
//!   `Host`, and at least one of them is sent (a browser always sends one
//!   on a `POST`; a cross-site form or `fetch` carries the other site's).
//! * With a token: every request carries it, as `Authorization: Bearer
//!   TOKEN` (API clients, Prometheus) or as the password of HTTP Basic
//!   authentication (what a browser prompts for on the page). The browser
//!   resends Basic credentials on its own, also on a cross-site request, so
//!   a state-changing request with Basic credentials must also pass the
//!   same-origin check; one with a Bearer token needs nothing more (no
//!   browser attaches it on its own).
//!
//! Tokens are compared through BLAKE3 hashes, whose equality is constant
//! time: neither the token's bytes nor its length leak through timing.

use super::request::Request;

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// `Host` is missing or not this server (403).
    Host,
    /// The token is missing or wrong (401).
    Unauthorized,
    /// A state-changing request not from the page's origin (403).
    CrossSite,
}

/// The checks of one server.
#[derive(Debug)]
pub struct Guard {
    token: Option<blake3::Hash>,
    port: u16,
}

impl Guard {
    /// The guard of a server on `port`, with an optional token.
    pub fn new(token: Option<&str>, port: u16) -> Guard {
        Guard {
            token: token.map(|t| blake3::hash(t.as_bytes())),
            port,
        }
    }

    /// May `req` read (the page, the API's `GET`s, the metrics)?
    pub fn check_read(&self, req: &Request) -> Result<(), Denied> {
        self.credentials(req).map(|_| ())
    }

    /// May `req` change state (`POST /api/pairs/NAME/ACTION`)?
    pub fn check_write(&self, req: &Request) -> Result<(), Denied> {
        match self.credentials(req)? {
            Credentials::Bearer => Ok(()),
            Credentials::Basic | Credentials::None => same_origin(req),
        }
    }

    fn credentials(&self, req: &Request) -> Result<Credentials, Denied> {
        let Some(token) = &self.token else {
            return if self.host_is_loopback(req) {
                Ok(Credentials::None)
            } else {
                Err(Denied::Host)
            };
        };
        // With a token the server may be reached under any name.
        let auth = req
            .header("authorization")
            .map_err(|_| Denied::Unauthorized)?;
        let auth = auth.ok_or(Denied::Unauthorized)?;
        let (scheme, rest) = split_scheme(auth).ok_or(Denied::Unauthorized)?;
        let (kind, presented) = if scheme.eq_ignore_ascii_case(b"bearer") {
            (Credentials::Bearer, rest.to_vec())
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            let decoded = base64_decode(rest).ok_or(Denied::Unauthorized)?;
            let colon = decoded.iter().position(|&b| b == b':');
            let password = colon.map_or(&[][..], |i| &decoded[i + 1..]);
            (Credentials::Basic, password.to_vec())
        } else {
            return Err(Denied::Unauthorized);
        };
        if blake3::hash(&presented) == *token {
            Ok(kind)
        } else {
            Err(Denied::Unauthorized)
        }
    }

    fn host_is_loopback(&self, req: &Request) -> bool {
        let Ok(Some(host)) = req.header("host") else {
            return false;
        };
        let Ok(host) = std::str::from_utf8(host) else {
            return false;
        };
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if !p.contains(']') => (n, p.parse::<u16>().ok()),
            _ => (host, Some(80)),
        };
        if port != Some(self.port) {
            return false;
        }
        name.eq_ignore_ascii_case("localhost")
            || name == "[::1]"
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback())
    }
}

enum Credentials {
    None,
    Bearer,
    Basic,
}

/// The same-origin rule for state-changing requests (see the module doc).
fn same_origin(req: &Request) -> Result<(), Denied> {
    let site = req
        .header("sec-fetch-site")
        .map_err(|_| Denied::CrossSite)?;
    let origin = req.header("origin").map_err(|_| Denied::CrossSite)?;
    if site.is_none() && origin.is_none() {
        return Err(Denied::CrossSite);
    }
    if site.is_some_and(|s| s != b"same-origin") {
        return Err(Denied::CrossSite);
    }
    if let Some(origin) = origin {
        let host = req.header("host").ok().flatten().ok_or(Denied::CrossSite)?;
        let own = [b"http://".as_slice(), host].concat();
        if !origin.eq_ignore_ascii_case(&own) {
            return Err(Denied::CrossSite);
        }
    }
    Ok(())
}

/// `Scheme rest` of an `Authorization` value.
fn split_scheme(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = v.iter().position(|&b| b == b' ')?;
    let rest = &v[sp + 1..];
    let start = rest.iter().position(|&b| b != b' ')?;
    Some((&v[..sp], &rest[start..]))
}

/// Standard base64 with padding (what browsers send for Basic).
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let chunks = s.len() / 4;
    for (i, q) in s.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = n << 6 | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode(b"dTpzM2NyZXQ=").unwrap(), b"u:s3cret");
        assert_eq!(base64_decode(b"YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode(b"YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert!(base64_decode(b"YW=j").is_none());
        assert!(base64_decode(b"YWJ").is_none());
        assert!(base64_decode(b"Y===").is_none());
        assert!(base64_decode(b"YW!j").is_none());
    }
}
