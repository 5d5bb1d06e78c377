//! The ledger (台账) page (admin): import a township's `.xlsx` or `.csv`
//! whole or not at all, with every bad row reported; export the ledger in
//! either format; the households with no visitor responsible for them.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use anxin_domain::ledger::{self, RowProblem, sheet};
use anxin_store::{ImportError, ImportOutcome};

use crate::auth::Viewer;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::{Chrome, html};

/// The largest request the import takes: the ledger file's limit and room
/// for the form around it. A larger body is refused while it arrives.
#[allow(clippy::cast_possible_truncation)]
pub const LEDGER_UPLOAD_LIMIT: usize = sheet::Limits::LEDGER.bytes as usize + 64 * 1024;

#[derive(Debug)]
struct Household {
    id: i64,
    name: String,
    place: String,
}

#[derive(Template)]
#[template(path = "ledger.html")]
struct LedgerPage {
    c: Chrome,
    elders: usize,
    without_visitor: Vec<Household>,
    outcome: Option<ImportOutcome>,
    /// The outcome is a preview: nothing was saved.
    previewed: bool,
    ignored: Vec<String>,
    problems: Vec<String>,
    /// Rows imported that ask to be checked (独居 with household members).
    warnings: Vec<String>,
}

fn may_keep_ledger(viewer: &Viewer) -> Result<(), AppError> {
    if viewer.principal.can_edit_registry() { Ok(()) } else { Err(AppError::Forbidden(None)) }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    outcome: Option<(ImportOutcome, bool, Vec<String>)>,
    ignored: Vec<String>,
    problems: Vec<String>,
) -> Result<Response, AppError> {
    let previewed = outcome.as_ref().is_some_and(|(_, previewed, _)| *previewed);
    let warnings = outcome.as_ref().map(|(_, _, warnings)| warnings.clone()).unwrap_or_default();
    let outcome = outcome.map(|(outcome, _, _)| outcome);
    let elders = state.store.elders().await?;
    let lacking: std::collections::HashSet<i64> = state.store.elders_without_visitor().await?.into_iter().collect();
    let without_visitor = elders
        .iter()
        .filter(|e| lacking.contains(&e.id))
        .map(|e| Household {
            id: e.id,
            name: e.name.clone(),
            place: format!("{} {} {}", e.county, e.township, e.village),
        })
        .collect();
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = LedgerPage {
        c: viewer.chrome("ledger.title"),
        elders: elders.len(),
        without_visitor,
        outcome,
        previewed,
        ignored,
        problems,
        warnings,
    };
    Ok((status, html(&page)).into_response())
}

pub(super) async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    may_keep_ledger(&viewer)?;
    render(&state, &viewer, None, Vec::new(), Vec::new()).await
}

/// A problem in the reader's language.
fn described(problem: &RowProblem, lang: Lang) -> String {
    match lang {
        Lang::En => problem.to_string(),
        Lang::ZhCn => {
            let mut text = String::new();
            if problem.line > 0 {
                text.push_str(&format!("第 {} 行", problem.line));
            }
            if let Some(column) = &problem.column {
                text.push_str(&format!("{}{column}", if problem.line > 0 { "，" } else { "" }));
            }
            if let Some(value) = problem.value.as_deref().filter(|v| !v.is_empty()) {
                text.push_str(&format!("「{value}」"));
            }
            if !text.is_empty() {
                text.push('：');
            }
            text.push_str(&lang.problem(&problem.problem));
            text
        }
    }
}

pub(super) async fn import(
    State(state): State<AppState>,
    viewer: Viewer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, AppError> {
    may_keep_ledger(&viewer)?;
    let lang = viewer.lang;
    let refuse = |key: &str| AppError::Invalid(lang.t(key).to_string());
    let mut multipart = multipart.map_err(|_| refuse("ledger.bad_upload"))?;
    let unreadable = |problem: ledger::Problem| vec![described(&RowProblem::file(problem), lang)];
    let mut file = None;
    let mut preview = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                let too_large = ledger::Problem::TooLarge(sheet::Limit::Bytes(sheet::Limits::LEDGER.bytes >> 20));
                return render(&state, &viewer, None, Vec::new(), unreadable(too_large)).await;
            }
            Err(_) => return Err(refuse("ledger.bad_upload")),
        };
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or_default().to_string();
            let bytes = match field.bytes().await {
                Ok(bytes) => bytes,
                Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    let too_large = ledger::Problem::TooLarge(sheet::Limit::Bytes(sheet::Limits::LEDGER.bytes >> 20));
                    return render(&state, &viewer, None, Vec::new(), unreadable(too_large)).await;
                }
                Err(_) => return Err(refuse("ledger.bad_upload")),
            };
            file = Some((name, bytes));
        } else if field.name() == Some("preview") {
            preview = true;
        }
    }
    let (name, bytes) = file.ok_or_else(|| refuse("ledger.no_file"))?;
    let format = sheet::Format::of_file(&name).ok_or_else(|| refuse("ledger.bad_format"))?;
    let visitors = state.store.visitor_names().await?;
    let on_record = state.store.ledger().await?;
    let today = state.today();
    // Reading and checking a file is blocking work: off the async workers,
    // which carry the broker and ingest too.
    let read = tokio::task::spawn_blocking(move || {
        let rows = sheet::read(&bytes, format, &sheet::Limits::LEDGER)
            .map_err(|error| Err(ledger::Problem::of_sheet(&error)))?;
        ledger::read_over(&rows, today, &visitors, &on_record).map_err(Ok)
    })
    .await
    // A reader that panics on some file takes down that request, not the process.
    .unwrap_or_else(|_| Err(Err(ledger::Problem::Unreadable("the reader failed on this file".into()))));
    let checked = match read {
        Ok(checked) => checked,
        Err(Err(problem)) => return render(&state, &viewer, None, Vec::new(), unreadable(problem)).await,
        Err(Ok(problems)) => {
            let problems = problems.iter().map(|p| described(p, lang)).collect();
            return render(&state, &viewer, None, Vec::new(), problems).await;
        }
    };
    let by = &viewer.principal.name;
    let done = if preview {
        state.store.preview_ledger(&checked, by, state.now()).await
    } else {
        state.store.import_ledger(&checked, by, state.now()).await
    };
    match done {
        Ok(outcome) => {
            let warnings = checked.warnings.iter().map(|w| described(w, lang)).collect();
            render(&state, &viewer, Some((outcome, preview, warnings)), checked.ignored_columns, Vec::new()).await
        }
        Err(ImportError::Rows(problems)) => {
            let problems = problems.iter().map(|p| described(p, lang)).collect();
            render(&state, &viewer, None, Vec::new(), problems).await
        }
        Err(ImportError::Store(error)) => Err(error.into()),
    }
}

/// `/ledger/export.xlsx` or `.csv`: the whole ledger with whole ID numbers,
/// for the township's own records; audited.
pub(super) async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    may_keep_ledger(&viewer)?;
    let format = sheet::Format::of_file(&file).ok_or(AppError::NotFound(None))?;
    let rows = ledger::sheet_rows(&state.store.ledger().await?);
    let bytes = sheet::write(&rows, format, "台账").map_err(|error| AppError::Invalid(error.to_string()))?;
    state.store.audit(state.now(), &viewer.principal.name, "ledger exported", None, Some(format.extension())).await?;
    let disposition = format!("attachment; filename=\"ledger.{}\"", format.extension());
    Ok(([(header::CONTENT_TYPE, format.content_type().to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}
