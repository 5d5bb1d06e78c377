//! Every word the console shows comes from a translation file:
//! `locales/zh-CN.toml` (the default) and `locales/en.toml`, compiled into
//! the binary. A reader picks English with the language link (a cookie);
//! without the cookie the browser's `Accept-Language` decides.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderMap;

/// The languages the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

/// The cookie that keeps a reader's choice.
pub const LANG_COOKIE: &str = "anxin_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let code = code.trim().to_ascii_lowercase();
        if code == "zh" || code.starts_with("zh-") {
            Some(Lang::ZhCn)
        } else if code == "en" || code.starts_with("en-") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The cookie if set, else the first language of `Accept-Language` the
    /// console speaks, else Chinese.
    pub fn of_request(headers: &HeaderMap) -> Lang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
            return lang;
        }
        let accepted = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut choices: Vec<(f32, &str)> = accepted
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let code = pieces.next()?.trim();
                let quality =
                    pieces.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                Some((quality, code))
            })
            .collect();
        choices.sort_by(|a, b| b.0.total_cmp(&a.0));
        choices.into_iter().find_map(|(_, code)| Lang::parse(code)).unwrap_or(Lang::ZhCn)
    }

    /// A ledger or form problem in this language (`[ledger_problem]`).
    pub fn problem(self, problem: &anxin_domain::ledger::Problem) -> String {
        problem.fill(self.t(&format!("ledger_problem.{}", problem.key())))
    }

    /// The translation of `key`; a missing key shows as itself (a test
    /// makes sure none is missing).
    pub fn t(self, key: &str) -> &'static str {
        let table = match self {
            Lang::ZhCn => &*ZH_CN,
            Lang::En => &*EN,
        };
        match table.get(key) {
            Some(text) => text,
            None => {
                tracing::warn!(key, lang = self.code(), "no translation");
                Box::leak(key.to_string().into_boxed_str())
            }
        }
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

static ZH_CN: LazyLock<HashMap<String, String>> = LazyLock::new(|| load(include_str!("../locales/zh-CN.toml")));
static EN: LazyLock<HashMap<String, String>> = LazyLock::new(|| load(include_str!("../locales/en.toml")));

/// `[section] key = "text"` becomes `section.key`.
fn load(text: &str) -> HashMap<String, String> {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
        for (key, value) in table {
            let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::String(text) => {
                    out.insert(name, text.clone());
                }
                toml::Value::Table(inner) => flatten(&name, inner, out),
                _ => {}
            }
        }
    }
    let table: toml::Table = text.parse().expect("a translation file is valid TOML (checked by a test)");
    let mut out = HashMap::new();
    flatten("", &table, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the templates and the code ask for, in both languages,
    /// and no key in one language only.
    #[test]
    fn both_languages_have_every_key_the_console_uses() {
        let zh = load(include_str!("../locales/zh-CN.toml"));
        let en = load(include_str!("../locales/en.toml"));
        let mut zh_keys: Vec<_> = zh.keys().collect();
        let mut en_keys: Vec<_> = en.keys().collect();
        zh_keys.sort();
        en_keys.sort();
        assert_eq!(zh_keys, en_keys, "the two translation files have different keys");

        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = Vec::new();
        for folder in ["templates", "src", "src/pages"] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (index, _) in text.match_indices("t(\"") {
                    let rest = &text[index + 3..];
                    let key = &rest[..rest.find('"').unwrap()];
                    if key.contains('.') && !key.contains(' ') {
                        used.push((path.display().to_string(), key.to_string()));
                    }
                }
            }
        }
        assert!(used.len() > 50, "the scan found only {} keys", used.len());
        for (file, key) in used {
            assert!(zh.contains_key(&key), "{file} uses {key}, which zh-CN.toml lacks");
        }
    }

    /// Every ledger problem reads in each language with the placeholders its
    /// English has, and the console's English is the command line's.
    #[test]
    fn every_ledger_problem_reads_in_each_language() {
        use anxin_domain::ledger::Problem;
        use anxin_domain::registry::CitizenIdError;
        for problem in Problem::examples() {
            let key = format!("ledger_problem.{}", problem.key());
            let mut english: Vec<_> = anxin_domain::alerts::explanation::placeholders_of(problem.english_template());
            english.sort_unstable();
            for lang in [Lang::ZhCn, Lang::En] {
                let mut found = anxin_domain::alerts::explanation::placeholders_of(lang.t(&key));
                found.sort_unstable();
                assert_eq!(found, english, "{key} in {lang:?}");
                assert!(!lang.problem(&problem).contains('{'), "{key} in {lang:?} leaves a placeholder");
            }
            assert_eq!(Lang::En.problem(&problem), problem.english());
        }
        let check_digit = Problem::CitizenId(CitizenIdError::CheckDigit { found: '1', expected: 'X' });
        assert_eq!(Lang::ZhCn.problem(&check_digit), "校验码应为 X，实为 1");
    }

    #[test]
    fn the_cookie_wins_then_accept_language_then_chinese() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, value.parse().unwrap());
            }
            map
        };
        assert_eq!(Lang::of_request(&headers(&[])), Lang::ZhCn);
        assert_eq!(Lang::of_request(&headers(&[("accept-language", "en-US,en;q=0.9")])), Lang::En);
        assert_eq!(Lang::of_request(&headers(&[("accept-language", "fr, en;q=0.5, zh;q=0.8")])), Lang::ZhCn);
        assert_eq!(
            Lang::of_request(&headers(&[("accept-language", "en"), ("cookie", "a=b; anxin_lang=zh-CN")])),
            Lang::ZhCn
        );
        assert_eq!(Lang::of_request(&headers(&[("cookie", "anxin_lang=en")])), Lang::En);
        assert_eq!(Lang::En.t("nav.board"), "Alert board");
        assert_eq!(Lang::ZhCn.t("nav.board"), "告警台");
    }
}
