//! The alert engine writes its explanation of an alert ("no activity for
//! 12 h: nothing since 21:40 yesterday") in English, for the CLI and the MQTT
//! feed. The console shows it in the reader's language: each sentence the
//! engine can write is a pattern here, and its translation is in the
//! `[engine]` section of the translation files, with the same placeholders.
//! Parts are translated from the inside out ("21:40 yesterday" within the
//! sentence). A sentence no pattern knows is shown as the engine wrote it.

use std::sync::LazyLock;

use regex::Regex;

use crate::i18n::Lang;

/// The engine's sentences (see `anxin_domain::alerts::rules`), most
/// specific first, each with its translation key. `{n}`, `{time}` and
/// `{date}` match numbers, `HH:MM` and `MM-DD`; other placeholders any text.
const SENTENCES: &[(&str, &str)] = &[
    ("no activity for {hours} (heightened watch): {since}", "engine.no_activity_heightened"),
    ("no activity for {hours}: {since}", "engine.no_activity"),
    ("still no activity after {hours} (heightened watch): {since}", "engine.still_no_activity_heightened"),
    ("still no activity after {hours}: {since}", "engine.still_no_activity"),
    ("usually active by {time}; {since}", "engine.usually_active_by"),
    ("nothing since watching began at {at}", "engine.nothing_since_watching"),
    ("nothing since {at}", "engine.nothing_since"),
    ("activity again at {at}", "engine.activity_again"),
    ("sensor {device} offline since {at}; inactivity cannot be judged while it is silent", "engine.offline_since"),
    ("sensor {device} offline at {at} ({why}); inactivity cannot be judged while it is silent", "engine.offline_at"),
    ("its connection dropped", "engine.connection_dropped"),
    ("{n} summaries missed", "engine.summaries_missed"),
    ("reported offline", "engine.reported_offline"),
    ("all sensors online again at {at}", "engine.online_again"),
    ("smoke alarm on sensor {device} stopped at {at}", "engine.smoke_stopped"),
    ("smoke alarm on sensor {device} at {at}", "engine.smoke"),
    ("help button pressed at {at}", "engine.help"),
    ("sensor {device} was opened or removed at {at}", "engine.tamper"),
    ("sensor {device} closed again at {at}", "engine.tamper_closed"),
    ("battery of sensor {device} at {n}% again", "engine.battery_again"),
    ("battery of sensor {device} at {n}%", "engine.battery"),
    ("indoor {temp}, {limit} since {at}", "engine.temperature"),
    ("below {temp}", "engine.below"),
    ("above {temp}", "engine.above"),
    ("door open since {at}, at night for over {n} min", "engine.door_night"),
    ("door closed at {at}", "engine.door_closed"),
    ("{n} h", "engine.hours"),
    ("{n} °C", "engine.celsius"),
    ("{time} today", "engine.today"),
    ("{time} yesterday", "engine.yesterday"),
    ("{time} on {date}", "engine.on_date"),
];

struct Sentence {
    regex: Regex,
    names: Vec<String>,
    key: &'static str,
}

static COMPILED: LazyLock<Vec<Sentence>> = LazyLock::new(|| {
    SENTENCES
        .iter()
        .map(|(pattern, key)| {
            let mut regex = String::from("^");
            let mut names = Vec::new();
            let mut rest = *pattern;
            while let Some(open) = rest.find('{') {
                regex.push_str(&regex::escape(&rest[..open]));
                let close = open + rest[open..].find('}').expect("a closed placeholder");
                let name = &rest[open + 1..close];
                regex.push_str(match name {
                    "n" => "([0-9]+(?:\\.[0-9]+)?)",
                    "time" => "([0-9]{2}:[0-9]{2})",
                    "date" => "([0-9]{2}-[0-9]{2})",
                    _ => "(.+?)",
                });
                names.push(name.to_string());
                rest = &rest[close + 1..];
            }
            regex.push_str(&regex::escape(rest));
            regex.push('$');
            Sentence { regex: Regex::new(&regex).expect("the engine's sentences compile"), names, key }
        })
        .collect()
});

/// The engine's explanation in `lang`.
pub fn explain(text: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return text.to_string();
    }
    translate(text, lang, 0)
}

fn translate(text: &str, lang: Lang, depth: u8) -> String {
    if depth > 4 {
        return text.to_string();
    }
    for sentence in COMPILED.iter() {
        if let Some(captures) = sentence.regex.captures(text) {
            let mut out = lang.t(sentence.key).to_string();
            for (index, name) in sentence.names.iter().enumerate() {
                let value = captures.get(index + 1).map_or("", |m| m.as_str());
                out = out.replace(&format!("{{{name}}}"), &translate(value, lang, depth + 1));
            }
            return out;
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sentence_the_engine_writes_reads_in_chinese() {
        let cases = [
            ("smoke alarm on sensor web-00001 at 17:54 today", "传感器 web-00001 烟雾报警（今天 17:54）"),
            ("no activity for 12 h: nothing since 21:40 yesterday", "已 12 小时无活动：自昨天 21:40 起没有任何活动"),
            (
                "still no activity after 24 h (heightened watch): nothing since watching began at 08:00 on 11-27",
                "24 小时后仍无活动（重点关注期）：自 11-27 08:00 开始看护以来没有任何活动",
            ),
            (
                "sensor node-1 offline at 03:10 today (3 summaries missed); inactivity cannot be judged while it is silent",
                "传感器 node-1 于今天 03:10 离线（连续 3 次未上报）；离线期间无法判断是否有活动",
            ),
            ("indoor 9.5 °C, below 10.0 °C since 06:00 today", "室内 9.5 °C，自今天 06:00 起低于 10.0 °C"),
            (
                "usually active by 07:30; nothing since 21:40 yesterday",
                "平时 07:30 前已有活动；自昨天 21:40 起没有任何活动",
            ),
        ];
        for (english, chinese) in cases {
            assert_eq!(explain(english, Lang::ZhCn), chinese, "{english}");
            assert_eq!(explain(english, Lang::En), english);
        }
        assert_eq!(explain("something new", Lang::ZhCn), "something new", "unknown text stays as written");
    }

    #[test]
    fn every_pattern_has_a_translation() {
        for (pattern, key) in SENTENCES {
            for lang in [Lang::ZhCn, Lang::En] {
                let text = lang.t(key);
                assert_ne!(text, *key, "{key} is missing in {lang:?}");
                let placeholders = |s: &str| {
                    let mut found: Vec<String> =
                        s.split('{').skip(1).filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string())).collect();
                    found.sort();
                    found
                };
                assert_eq!(placeholders(text), placeholders(pattern), "{key} in {lang:?} has other placeholders");
            }
        }
    }
}
