//! Who is asking: signing in and staying signed in, and the two extractors
//! every handler starts from — [`Viewer`] (a signed-in person on a page) and
//! [`Caller`] (a bearer token, or the console's own script in a session).
//!
//! - `session`: server-side sessions behind an HttpOnly cookie, loaded for
//!   every request by [`session::session_layer`];
//! - `csrf`: the token every state change of a session carries;
//! - `throttle`: failed sign-ins counted per account and per address;
//! - `login`: `/login`, `/logout`, `/password`.
//!
//! Architecture invariant: `auth` depends on `state`, `error`, `web` and
//! `i18n` only; pages and the API depend on it, never the other way round.

pub mod csrf;
pub mod login;
pub mod session;
pub mod throttle;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use anxin_domain::access::{Principal, Role};

pub use csrf::CSRF_HEADER;
pub use session::{CurrentSession, SESSION_COOKIE, session_layer};
pub use throttle::Throttle;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::Chrome;

/// Someone signed in to the console, on a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    pub lang: Lang,
    pub path: String,
    /// At first sign-in, until the one-time password is replaced.
    pub must_change_password: bool,
    /// The database has no room to write (see [`anxin_store::Storage`]).
    pub storage_full: bool,
}

impl Viewer {
    pub fn chrome(&self, title: &'static str) -> Chrome {
        Chrome {
            lang: self.lang,
            title,
            user: Some(self.principal.name.clone()),
            role: Some(self.principal.role),
            csrf: self.csrf.clone(),
            path: self.path.clone(),
            closes_months: !self.principal.closable_counties().is_empty(),
            storage_full: self.storage_full,
        }
    }
}

/// Where a signed-out reader is sent: the login page, coming back after.
fn to_login(parts: &Parts) -> Response {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!("/login?next={}", form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>());
    redirect_for(&parts.headers, &target)
}

/// A redirect a full page follows, and htmx too (`HX-Redirect`).
pub fn redirect_for(headers: &HeaderMap, target: &str) -> Response {
    if headers.contains_key("hx-request") {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    Redirect::to(target).into_response()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let current = parts.extensions.get::<CurrentSession>().cloned().unwrap_or_default();
        let Some(session) = current.session else {
            return Err(to_login(parts));
        };
        if session.must_change_password && parts.uri.path() != "/password" {
            return Err(redirect_for(&parts.headers, "/password"));
        }
        Ok(Viewer {
            principal: session.principal,
            csrf: session.csrf_token,
            lang: Lang::of_request(&parts.headers),
            path: parts.uri.path().to_string(),
            must_change_password: session.must_change_password,
            storage_full: state.store.storage().full_since().is_some(),
        })
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The caller of `/api/v1`, from `Authorization: Bearer …` — or, for the
/// console's own pages, the signed-in session (whose state changes carry
/// the CSRF token; see [`session::session_layer`]).
#[derive(Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized = || AppError::Unauthorized("a valid bearer token is required".into());
        let token = bearer_token(&parts.headers);
        let Some(token) = token else {
            let session = parts.extensions.get::<CurrentSession>().and_then(|current| current.session.clone());
            return match session {
                Some(session) if !session.must_change_password => Ok(Caller(session.principal)),
                Some(_) => Err(AppError::forbidden("change the one-time password first")),
                None => Err(unauthorized()),
            };
        };
        state.store.principal_for_token(token, state.now()).await?.map(Caller).ok_or_else(unauthorized)
    }
}

/// The address a request came from: the TCP peer, or, when the peer is a
/// trusted reverse proxy, the client it names in `X-Forwarded-For`;
/// `unknown` where the server was not told (tests that call the router
/// directly).
#[derive(Debug)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
        Ok(ClientAddress(client_address(peer, forwarded, &state.trusted_proxies)))
    }
}

/// The client behind a chain of proxies: walking `X-Forwarded-For` from the
/// right (each proxy appends the address it saw), the first address that is
/// not a trusted proxy. A client can write anything into the header, so
/// nothing left of that is believed, and without a trusted peer none of it.
pub fn client_address<'a>(
    peer: Option<std::net::IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[std::net::IpAddr],
) -> String {
    let Some(peer) = peer else { return "unknown".into() };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(address) if trusted.contains(&address) => client = address,
            Ok(address) => return address.to_string(),
            // A hop that is not an address: nothing further left is believed.
            Err(_) => break,
        }
    }
    client.to_string()
}

/// Where each role starts.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Oncall => "/board",
        Role::Visitor => "/my",
        Role::Official => "/elders",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_read_from_x_forwarded_for_only_behind_a_trusted_proxy() {
        let proxy: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let client = |peer: &str, header: &[&str], trusted: &[std::net::IpAddr]| {
            client_address(Some(peer.parse().unwrap()), header.iter().copied(), trusted)
        };
        assert_eq!(client("10.0.0.5", &["203.0.113.7"], &[proxy]), "203.0.113.7");
        assert_eq!(
            client("10.0.0.5", &["1.2.3.4, 203.0.113.7"], &[proxy]),
            "203.0.113.7",
            "the rightmost untrusted hop"
        );
        assert_eq!(
            client("10.0.0.5", &["203.0.113.7", "10.0.0.5"], &[proxy]),
            "203.0.113.7",
            "through the proxy twice"
        );
        assert_eq!(client("198.51.100.9", &["203.0.113.7"], &[proxy]), "198.51.100.9", "not a trusted peer: ignored");
        assert_eq!(client("10.0.0.5", &[], &[proxy]), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &["not-an-ip"], &[proxy]), "10.0.0.5");
        assert_eq!(client_address(None, std::iter::empty(), &[proxy]), "unknown");
    }
}
