//! Parsing of provider base URLs (`https://host[:port][/prefix]`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path prefix without trailing slash, e.g. `/v1` or empty.
    pub path_prefix: String,
    /// The `:authority` to send, built once.
    authority: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("'{url}' must start with http:// or https://"));
        };
        if rest.contains(['?', '#']) {
            return Err(format!("'{url}' must not have a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!("'{url}' must not carry credentials; use api_key"));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("'{url}' has an invalid host or port"))?;
        let port = port.unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        let path_prefix = path.trim_end_matches('/').to_string();
        if path_prefix.contains("//") || path_prefix.chars().any(|c| c.is_whitespace()) {
            return Err(format!("'{url}' has an invalid path"));
        }
        let host = host.to_ascii_lowercase();
        let authority = match (scheme, port) {
            (Scheme::Http, 80) | (Scheme::Https, 443) => host.clone(),
            _ if host.contains(':') => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        Ok(Self {
            scheme,
            host,
            port,
            path_prefix,
            authority,
        })
    }

    /// The `:authority` to send: the port only when it is not the default.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `scheme://authority`: two endpoints on one origin share a cluster.
    pub fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.authority())
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// True when the host is a literal IP address (static cluster, no DNS).
    pub fn host_is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        match &rest[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !valid_host {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_style_urls() {
        let e = Endpoint::parse("https://dashscope.aliyuncs.com/compatible-mode/v1/").unwrap();
        assert_eq!(e.scheme, Scheme::Https);
        assert_eq!(e.host, "dashscope.aliyuncs.com");
        assert_eq!(e.port, 443);
        assert_eq!(e.path_prefix, "/compatible-mode/v1");
        assert_eq!(e.authority(), "dashscope.aliyuncs.com");

        let e = Endpoint::parse("http://127.0.0.1:18080").unwrap();
        assert_eq!((e.port, e.path_prefix.as_str()), (18080, ""));
        assert_eq!(e.authority(), "127.0.0.1:18080");
        assert!(e.host_is_ip());

        let e = Endpoint::parse("http://[::1]:8000/v1").unwrap();
        assert_eq!(e.host, "::1");
        assert_eq!(e.authority(), "[::1]:8000");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "ftp://x",
            "api.openai.com/v1",
            "https://",
            "https://host:0",
            "https://host:99999",
            "https://user:pw@host",
            "https://host/v1?x=1",
            "https://ho st/v1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
