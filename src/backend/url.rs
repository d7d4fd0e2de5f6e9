//! The `url` backend: an existing server given by `--database-url` or `DATABASE_URL`. Only the
//! maintenance connection named by the URL is used, and only to create and drop migproof's own
//! scratch databases.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

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

/// Removes a URL's password from a message, wherever it appears.
pub fn scrub(message: &str, url: &str) -> String {
    let password = ::url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned));
    match password {
        Some(p) if !p.is_empty() => {
            let decoded = ::url::form_urlencoded::parse(format!("p={p}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let mut out = message.replace(&p, "***");
            if !decoded.is_empty() {
                out = out.replace(&decoded, "***");
            }
            out
        }
        _ => message.to_owned(),
    }
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
    let conn = connect_with_retry(&options, &target)
        .await
        .map_err(|e| match e {
            BackendError::Connect { target, reason } => BackendError::Connect {
                target,
                reason: scrub(&reason, url),
            },
            other => other,
        })?;
    let password = parsed.password().map(|p| {
        ::url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    });
    let server = Server::new(options, target, BackendKind::Url, None).with_password(password);
    server.release(conn);
    Ok(server)
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
    }
}
