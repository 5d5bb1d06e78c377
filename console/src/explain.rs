//! The alert engine's explanation of an alert ("no activity for 12 h:
//! nothing since 21:40 yesterday") in the reader's language. The engine
//! stores it as data — a sentence and its parameters
//! ([`anxin_domain::alerts::explanation`]) — and each sentence has its words
//! in the `[engine]` section of the translation files, with the same
//! placeholders; parts that are sentences themselves ("21:40 yesterday") are
//! rendered the same way, inside out. No text is parsed back.

use anxin_domain::alerts::explanation::Explanation;

use crate::i18n::Lang;

/// The explanation in `lang`.
pub fn explain(explanation: &Explanation, lang: Lang) -> String {
    explanation.render(&|sentence| lang.t(&format!("engine.{}", sentence.key())).to_string())
}

/// What an alert row shows: its explanation in `lang`, or, for an alert
/// raised before explanations were stored, its English as written.
pub fn alert_detail(explanation: Option<&Explanation>, english: &str, lang: Lang) -> String {
    explanation.map_or_else(|| english.to_string(), |explanation| explain(explanation, lang))
}

#[cfg(test)]
mod tests {
    use anxin_domain::alerts::explanation::{Sentence, placeholders_of};
    use anxin_domain::alerts::policy::AlertPolicy;
    use anxin_domain::alerts::rules::when;

    use super::*;

    #[test]
    fn every_sentence_the_engine_writes_reads_in_chinese() {
        let policy = AlertPolicy::default();
        // 2026-12-06 10:00 at +08:00, and 21:40 the evening before.
        let now = 1_796_522_400_000;
        let last_evening = now - (12 * 60 + 20) * 60_000;
        let hours = |n: &str| Explanation::new(Sentence::Hours).with("n", n);
        let nothing_since = Explanation::new(Sentence::NothingSince).with("at", when(last_evening, now, &policy));
        let cases = [
            (
                Explanation::new(Sentence::Smoke).with("device", "web-00001").with("at", when(now, now, &policy)),
                "smoke alarm on sensor web-00001 at 10:00 today",
                "传感器 web-00001 烟雾报警（今天 10:00）",
            ),
            (
                Explanation::new(Sentence::NoActivity).with("hours", hours("12")).with("since", nothing_since.clone()),
                "no activity for 12 h: nothing since 21:40 yesterday",
                "已 12 小时无活动：自昨天 21:40 起没有任何活动",
            ),
            (
                Explanation::new(Sentence::OfflineAt)
                    .with("device", "node-1")
                    .with("at", when(now, now, &policy))
                    .with("why", Explanation::new(Sentence::SummariesMissed).with("n", "3")),
                "sensor node-1 offline at 10:00 today (3 summaries missed); inactivity cannot be judged while it is silent",
                "传感器 node-1 于今天 10:00 离线（连续 3 次未上报）；离线期间无法判断是否有活动",
            ),
            (
                Explanation::new(Sentence::UsuallyActiveBy).with("time", "07:30").with("since", nothing_since),
                "usually active by 07:30; nothing since 21:40 yesterday",
                "平时 07:30 前已有活动；自昨天 21:40 起没有任何活动",
            ),
        ];
        for (explanation, english, chinese) in cases {
            assert_eq!(explanation.to_string(), english, "the engine's English");
            assert_eq!(explain(&explanation, Lang::ZhCn), chinese, "{english}");
            assert_eq!(explain(&explanation, Lang::En), english);
        }
        assert_eq!(alert_detail(None, "written before", Lang::ZhCn), "written before", "old alerts show as written");
    }

    #[test]
    fn every_sentence_has_words_in_each_language_with_its_placeholders() {
        for sentence in Sentence::ALL {
            let key = format!("engine.{}", sentence.key());
            for lang in [Lang::ZhCn, Lang::En] {
                let text = lang.t(&key);
                assert_ne!(text, key, "{key} is missing in {lang:?}");
                let mut found = placeholders_of(text);
                let mut expected = sentence.placeholders();
                found.sort_unstable();
                expected.sort_unstable();
                assert_eq!(found, expected, "{key} in {lang:?} has other placeholders");
            }
            assert_eq!(Lang::En.t(&key), sentence.english(), "{key}: the console's English is the engine's");
        }
    }
}
