//! The record form's words on screen: a choice in the form's own Chinese
//! or the reader's language, and a visit's judgements as findings.

use anxin_domain::visits::{Assessment, Change, Illness, Safety};

use crate::i18n::Lang;

/// The word for a choice: the record form's own in Chinese, the
/// translation file's otherwise.
pub fn choice(lang: Lang, code: &str, form_word: &'static str) -> &'static str {
    match lang {
        Lang::ZhCn => form_word,
        Lang::En => lang.t(&format!("choice.{code}")),
    }
}

/// A staff visit's judgements as the form's words, only those ticked.
pub fn findings(assessment: &Assessment, lang: Lang) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    let mut add = |field: &str, code: &str, word: &'static str, bad: bool, extra: Option<String>| {
        let text = format!("{} {}", lang.t(&format!("visit.{field}")), choice(lang, code, word));
        found.push((extra.map_or_else(|| text.clone(), |extra| format!("{text} {extra}")), bad));
    };
    if let Some(h) = assessment.household {
        add("household", h.code(), h.label(), false, assessment.household_delta.map(|n| n.to_string()));
    }
    for (field, value) in [("speech", assessment.speech), ("mobility", assessment.mobility)] {
        if let Some(v) = value {
            add(field, v.code(), v.label(), v == Change::Worse, None);
        }
    }
    if let Some(i) = assessment.illness {
        add("illness", i.code(), i.label(), i == Illness::Serious, assessment.illness_name.clone());
    }
    if let Some(v) = assessment.mood {
        add("mood", v.code(), v.label(), v == Change::Worse, None);
    }
    for (field, value) in [
        ("gas", assessment.gas),
        ("water_heating", assessment.water_heating),
        ("electricity", assessment.electricity),
        ("fire", assessment.fire),
    ] {
        if let Some(v) = value {
            add(field, v.code(), v.label(), v == Safety::Unsafe, None);
        }
    }
    for (field, value) in [
        ("personal_hygiene", assessment.personal_hygiene),
        ("home_hygiene", assessment.home_hygiene),
        ("indoor", assessment.indoor),
    ] {
        if let Some(v) = value {
            add(field, v.code(), v.label(), v == Change::Worse, None);
        }
    }
    // The plan's other contents, in the plan's words; a bad habit is a problem.
    for line in assessment.plan_contents() {
        let bad = line.starts_with("安全隐患");
        found.push((line, bad));
    }
    found
}
