//! The `url` backend: an existing server given by `--database-url` or `DATABASE_URL`. Only the
//! maintenance connection named by the URL is used, and only to create and drop migproof's own
//! scratch databases.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use super::{connect_with_retry, BackendError, BackendKind, Server};

/// The URL with any password replaced by `***`, safe to print.
pub fn redact(url: &str) -> String {
    match ::url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable database URL>".into(),
    }
}

/// Removes a URL's password from a message, in every form it may take there: as the server
/// receives it, percent-encoded as in the URL, with every byte encoded, and with its escapes
/// written in either case (`%2F`, `%2f`).
pub fn scrub(message: &str, url: &str) -> String {
    let Some(encoded) = ::url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    else {
        return message.to_owned();
    };
    let decoded = percent_decoded(&encoded);
    let mut forms = vec![
        ::url::form_urlencoded::byte_serialize(decoded.as_bytes()).collect(),
        decoded,
        encoded,
    ];
    let lowered: Vec<String> = forms.iter().map(|f| lower_escapes(f)).collect();
    forms.extend(lowered);
    forms.sort();
    forms.dedup();
    // The longest first: a form may hold another.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = message.to_owned();
    for form in forms.iter().filter(|f| !f.is_empty()) {
        out = out.replace(form.as_str(), "***");
    }
    out
}

/// `text` with the hex digits of its percent-escapes in lower case.
fn lower_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escape = 0;
    for c in text.chars() {
        if escape > 0 {
            out.push(c.to_ascii_lowercase());
            escape -= 1;
        } else {
            escape = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// A URL's userinfo as the server receives it: `%XX` decoded, `+` kept (it means a space only
/// in form data, not in a URL's password).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn open(url: &str) -> Result<Server, BackendError> {
    let target = redact(url);
    let parsed = ::url::Url::parse(url).map_err(|e| BackendError::BadUrl {
        url: target.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(BackendError::BadUrl {
            url: target,
            reason: format!(
                "scheme `{}` is not postgres:// or postgresql://",
                parsed.scheme()
            ),
        });
    }
    let options = PgConnectOptions::from_str(url).map_err(|e| BackendError::BadUrl {
        url: target.clone(),
        reason: scrub(&e.to_string(), url),
    })?;
    let options = options.application_name("migproof");
    let (options, conn) = match plain_on_loopback(&options, &parsed).await {
        Some(plain) => plain,
        None => {
            let conn = connect_with_retry(&options, &target)
                .await
                .map_err(|e| match e {
                    BackendError::Connect { target, reason } => BackendError::Connect {
                        target,
                        reason: scrub(&reason, url),
                    },
                    other => other,
                })?;
            (options, conn)
        }
    };
    let password = parsed.password().map(percent_decoded);
    let server = Server::new(options, target, BackendKind::Url, None).with_password(password);
    server.release(conn);
    Ok(server)
}

/// Options without TLS, and a connection made with them, for a server on this machine when
/// neither the URL (`sslmode`) nor the environment (`PGSSLMODE`) asks for a TLS mode and the
/// server accepts a plain connection. TLS on the loopback interface protects nothing, and with
/// sqlx 0.9.0 every TLS connection waits ~90 ms for delayed ACKs (transact-rs/sqlx#4335);
/// migproof opens a connection for every scratch database.
async fn plain_on_loopback(
    options: &PgConnectOptions,
    url: &::url::Url,
) -> Option<(PgConnectOptions, PgConnection)> {
    let mode_given = std::env::var_os("PGSSLMODE").is_some();
    if mode_given || !matches!(options.get_ssl_mode(), PgSslMode::Prefer) || !tls_optional(url) {
        return None;
    }
    let plain = options.clone().ssl_mode(PgSslMode::Disable);
    let conn = super::answered(sqlx::ConnectOptions::connect(&plain))
        .await
        .ok()?;
    Some((plain, conn))
}

/// Whether `url` names a server on this machine and leaves TLS to the default (no `sslmode`).
fn tls_optional(url: &::url::Url) -> bool {
    if url
        .query_pairs()
        .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
    {
        return false;
    }
    // `postgres://` is not a special scheme to the url crate: an address is a domain to it.
    match url.host() {
        Some(::url::Host::Domain(d)) => {
            let bare = d.trim_start_matches('[').trim_end_matches(']');
            d == "localhost"
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(::url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive() {
        let url = "postgres://ann:s3cr%40t@db.example:5432/app";
        assert_eq!(redact(url), "postgres://ann:***@db.example:5432/app");
        assert_eq!(
            scrub("bad password s3cr@t and s3cr%40t", url),
            "bad password *** and ***"
        );
        assert_eq!(redact("not a url"), "<unparseable database URL>");
        assert_eq!(percent_decoded("a+b%40c%2"), "a+b@c%2");
        assert_eq!(lower_escapes("A%2FB%40c"), "A%2fB%40c");
        assert_eq!(
            scrub("said a+b@c", "postgres://u:a+b%40c@h/d"),
            "said ***",
            "a plus sign is part of a password, not a space"
        );
    }

    #[test]
    fn tls_is_left_out_only_on_loopback_when_not_asked_for() {
        let optional = |u: &str| tls_optional(&::url::Url::parse(u).unwrap());
        assert!(optional("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(optional("postgresql://u@localhost/app"));
        assert!(optional("postgres://u@[::1]:5432/app"));
        assert!(optional("postgres://u@127.0.0.2/app?application_name=x"));
        assert!(!optional("postgres://u@127.0.0.1/app?sslmode=prefer"));
        assert!(!optional("postgres://u@localhost/app?sslmode=require"));
        assert!(!optional("postgres://u@db.example:5432/app"));
        assert!(!optional("postgres://u@10.0.0.5/app"));
    }
}
