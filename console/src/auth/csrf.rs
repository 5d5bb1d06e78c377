//! CSRF: every state-changing request of a signed-in session carries the
//! session's token, in the `X-CSRF-Token` header (htmx, the console's
//! script) or the form field `csrf` (plain forms). The login form, before
//! there is a session, uses a double-submit cookie.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The header htmx and the console's script send the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The login form's double-submit token (there is no session yet).
pub(crate) const LOGIN_COOKIE: &str = "anxin_login";

pub(crate) fn refused() -> Response {
    AppError::Refused.into_response()
}

/// Passes the request on if its `X-CSRF-Token` header or its form field
/// `csrf` equals `expected`.
pub(crate) async fn checked(request: Request, expected: &str) -> Result<Request, Response> {
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        return if constant_time_eq(value.as_bytes(), expected.as_bytes()) { Ok(request) } else { Err(refused()) };
    }
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
    if !form {
        return Err(refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "the form is larger than 1 MiB\n").into_response())?;
    let found = form_urlencoded::parse(&bytes).find(|(key, _)| key == "csrf").map(|(_, value)| value.into_owned());
    match found {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refused()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
