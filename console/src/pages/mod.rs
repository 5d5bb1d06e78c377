//! The console's pages, server-rendered from compile-time-checked templates
//! (`templates/`), one file a page family. Every handler asks [`crate::scope`]
//! whether the reader may see or do what they ask: an elder outside their
//! scope is 404, a thing their role may not do is 403. Pages share what they
//! show through [`crate::views`], never by importing one another.

mod audit;
mod board;
mod elders;
mod household;
mod ledger;
mod rate;
mod records;
mod registry;
mod responders;
mod spot_checks;
mod users;
mod visitor;
mod watches;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::{Viewer, home_of};
use crate::i18n::LANG_COOKIE;
use crate::state::AppState;

/// Every page but sign-in.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/lang", get(switch_language))
        .route("/board", get(board::page))
        .route("/board/rows", get(board::rows))
        .route("/board/alerts/{id}", get(board::detail))
        .route("/alerts/{id}/ack", post(board::acknowledge))
        .route("/alerts/{id}/resolve", post(board::resolve))
        .route("/alerts/{id}/callback", post(responders::call_back))
        .route("/alerts/{id}/print", get(responders::print_record))
        .route("/duty", get(responders::roster).post(responders::add_shift))
        .route("/duty/{id}/cancel", post(responders::cancel_shift))
        .route("/handover", get(responders::handover))
        .route("/elders", get(elders::list).post(registry::create))
        .route("/elders/new", get(registry::new_form))
        .route("/elders/{id}", get(elders::page).post(registry::update))
        .route("/elders/{id}/edit", get(registry::edit_form))
        .route("/elders/{id}/reveal", post(elders::reveal))
        .route("/elders/{id}/visitor", post(registry::assign))
        .route("/elders/{id}/exit", post(registry::leave))
        .route("/elders/{id}/away", post(records::mark_away))
        .route("/elders/{id}/contacts", post(records::add_contact))
        .route("/elders/{id}/contacts/{contact}/{action}", post(records::change_contact))
        .route("/elders/{id}/back", post(records::mark_back))
        .route("/elders/{id}/reenter", post(registry::reenter))
        .route("/elders/{id}/visits", post(records::record_visit))
        .route("/elders/{id}/location", post(registry::set_home_location))
        .route("/visits/{id}/photo", get(records::visit_photo))
        .route("/elders/{id}/visits/new", get(records::new_visit))
        .route("/elders/{id}/referrals", post(records::raise_referral))
        .route("/referrals", get(records::open_referrals))
        .route("/referrals/{id}/done", post(records::complete_referral))
        .route("/elders/{id}/services", post(records::record_service))
        .route("/elders/{id}/form", get(records::record_form))
        .route("/elders/{id}/household", get(household::form).post(household::save))
        .route("/devices", get(registry::devices))
        .route("/devices/{id}/pair", post(registry::pair))
        .route("/devices/provision", post(registry::provision))
        .route("/devices/import", post(registry::import))
        .route("/devices/{id}/revoke", post(registry::revoke))
        .route("/my", get(visitor::my_elders))
        .route("/round", get(visitor::round))
        .route("/ledger", get(ledger::page))
        .route(
            "/ledger/import",
            post(ledger::import).layer(axum::extract::DefaultBodyLimit::max(ledger::LEDGER_UPLOAD_LIMIT)),
        )
        .route("/ledger/export/{file}", get(ledger::export))
        .route("/rate", get(rate::page))
        .route("/rate/export.xlsx", get(rate::export))
        .route("/rate/close", post(rate::close))
        .route("/watches", get(watches::page).post(watches::start))
        .route("/watches/{id}/end", post(watches::end))
        .route("/spot-checks", get(spot_checks::list).post(spot_checks::draw))
        .route("/spot-checks/report.xlsx", get(spot_checks::report))
        .route("/spot-checks/{id}", get(spot_checks::page))
        .route("/spot-checks/{id}/result", post(spot_checks::record))
        .route("/rate/reopen", post(rate::reopen))
        .route("/audit", get(audit::page))
        .route("/users", get(users::page))
        .route("/users/action", post(users::act))
        .route("/users/add", post(users::add))
        .route("/users/access", post(users::set_access))
        .route("/users/kind", post(users::set_kind))
        .route("/users/tokens/issue", post(users::issue_token))
        .route("/users/tokens/revoke", post(users::revoke_token))
}

/// The answer links of the responder chain's messages: no account, no
/// session (the signed token is the credential), so served outside the
/// session layer.
pub fn links_router() -> Router<AppState> {
    Router::new().route("/r/{token}", get(responders::open_link).post(responders::answer_link))
}

async fn home(viewer: Viewer) -> Redirect {
    Redirect::to(home_of(viewer.principal.role))
}

#[derive(Debug, Deserialize)]
struct LanguageChoice {
    to: String,
    #[serde(default)]
    back: String,
}

/// `/lang?to=en&back=/board`: keeps the choice in a cookie and goes back.
async fn switch_language(Query(choice): Query<LanguageChoice>) -> Response {
    let lang = crate::i18n::Lang::parse(&choice.to).unwrap_or(crate::i18n::Lang::ZhCn);
    let mut response = Redirect::to(&crate::web::local_path(&choice.back)).into_response();
    let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
