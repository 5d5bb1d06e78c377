//! The audit log (admin only): who read or changed what, about which
//! elder, when. Append-only: the console has no way to change it.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Chrome, html, local_time};

#[derive(Debug)]
struct Line {
    at: String,
    actor: String,
    action: String,
    elder_id: Option<i64>,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    lines: Vec<Line>,
    elder: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    /// Only entries about this elder.
    #[serde(default)]
    elder: Option<i64>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<AuditQuery>,
) -> Result<Response, AppError> {
    if !viewer.principal.can_read_audit() {
        return Err(AppError::Forbidden(None));
    }
    let offset = state.policy.utc_offset;
    let lines = state
        .store
        .audit_entries(query.elder, 500)
        .await?
        .into_iter()
        .map(|e| Line {
            at: local_time(e.at, offset),
            actor: e.actor,
            action: e.action,
            elder_id: e.elder_id,
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    Ok(html(&AuditPage {
        c: viewer.chrome("audit.title"),
        lines,
        elder: query.elder.map(|e| e.to_string()).unwrap_or_default(),
    }))
}
