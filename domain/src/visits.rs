//! Visits as the record form's part 5 has them (探访情况), referrals of the
//! needs a visit finds (需求转介) and care services given (part 6).
//!
//! Staff record `home`, `phone`, `video` and `other` visits; `remote`
//! visits are the alert engine's daily check-ins and are never typed in.

use serde::{Deserialize, Serialize};

use crate::ledger::choices;

choices! {
    /// 探访方式
    VisitMode {
        Home = ("home", "上门探访"),
        Phone = ("phone", "电话问候"),
        Video = ("video", "互联网音(视)频探访"),
        /// The alert engine's daily check-in (远程监测).
        Remote = ("remote", "远程监测"),
        Other = ("other", "其他"),
    }
}

choices! {
    /// 探访人员类别: who a visitor is, as the plan lists them.
    VisitorKind {
        CivilAffairsOffice = ("civil_affairs_office", "民政办"),
        ServiceStation = ("service_station", "民政服务站"),
        VillageCommittee = ("village_committee", "村(居)委会", "村委会", "居委会"),
        GridWorker = ("grid_worker", "网格员"),
        Volunteer = ("volunteer", "志愿者"),
        Relative = ("relative", "亲属"),
        Neighbour = ("neighbour", "邻里", "邻居"),
        SocialWorker = ("social_worker", "社会工作者"),
        Other = ("other", "其他"),
    }
}

choices! {
    /// What the county's phone call found about a sampled visit (抽查).
    SpotCheckResult {
        Confirmed = ("confirmed", "属实"),
        NotConfirmed = ("not_confirmed", "不属实"),
        Unreachable = ("unreachable", "联系不上"),
    }
}

/// A spot-check's sample: the `size` visits (by id) ranked first by
/// SHA-256 of `seed`, `:` and the visit's id. Anyone with the seed and the
/// month's visits draws the same sample again (a county's supervisor can
/// check the draw was not chosen by hand).
pub fn spot_check_sample(seed: &str, visits: &[i64], size: usize) -> Vec<i64> {
    use sha2::Digest;
    let mut ranked: Vec<([u8; 32], i64)> =
        visits.iter().map(|id| (sha2::Sha256::digest(format!("{seed}:{id}")).into(), *id)).collect();
    ranked.sort_unstable();
    let mut sample: Vec<i64> = ranked.into_iter().take(size).map(|(_, id)| id).collect();
    sample.sort_unstable();
    sample
}

/// A fresh seed for a draw: 16 hex digits from the OS's random source.
pub fn new_seed() -> String {
    use password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

choices! {
    /// Whether the home's sensors show someone came during a home visit.
    Corroboration {
        /// Door and motion in the visit's window (传感器佐证).
        Corroborated = ("corroborated", "传感器佐证"),
        /// The home's sensors saw no door and motion then: marked for spot-check.
        NoPresence = ("no_presence", "未见到访迹象"),
        /// The home has no sensors to ask: marked for spot-check.
        NoSensors = ("no_sensors", "无传感器"),
    }
}

/// A home visit's window for corroboration: from a quarter of an hour
/// before the start time the visitor gives to an hour after it.
pub const CORROBORATION_WINDOW_MS: (i64, i64) = (15 * crate::time::MINUTE_MS, 60 * crate::time::MINUTE_MS);

/// Judges a home visit starting at `start` (epoch ms) against the home's
/// hourly activity (`(hour_start, motion, door_opens)`, summed over its
/// devices): corroborated when the hours the window touches saw both a door
/// opening and motion. Hour precision is what the rollups keep.
pub fn corroborate(start: i64, hours: &[(i64, i64, i64)], has_devices: bool) -> Corroboration {
    if !has_devices {
        return Corroboration::NoSensors;
    }
    let (from, to) = (start - CORROBORATION_WINDOW_MS.0, start + CORROBORATION_WINDOW_MS.1);
    let touched = hours.iter().filter(|(hour, _, _)| *hour < to && hour + crate::time::HOUR_MS > from);
    let (motion, doors) = touched.fold((0, 0), |(m, d), (_, motion, doors)| (m + motion, d + doors));
    if motion > 0 && doors > 0 { Corroboration::Corroborated } else { Corroboration::NoPresence }
}

choices! {
    /// 无变化 / 较好 / 较差: expression, mobility, mood, hygiene, indoor environment.
    Change { Unchanged = ("unchanged", "无变化"), Better = ("better", "较好"), Worse = ("worse", "较差") }
}

choices! {
    /// 疾病状况
    Illness { Unchanged = ("unchanged", "无变化"), Serious = ("serious", "严重疾病"), Improved = ("improved", "转好") }
}

choices! {
    /// 燃气 / 水暖 / 用电 / 消防安全
    Safety { Safe = ("safe", "安全"), FairlySafe = ("fairly_safe", "较安全"), Unsafe = ("unsafe", "不安全") }
}

choices! {
    /// 家庭人口
    HouseholdChange {
        Unchanged = ("unchanged", "无变化"),
        Increased = ("increased", "增加"),
        Decreased = ("decreased", "减少"),
    }
}

choices! {
    /// The services a need is referred to (需求转介).
    Service {
        Care = ("care", "生活照料"),
        Rehabilitation = ("rehabilitation", "康复护理"),
        HomeAdaptation = ("home_adaptation", "适老化改造"),
        Psychological = ("psychological", "心理慰藉"),
        SocialWorker = ("social_worker", "社会工作服务"),
        SocialAssistance = ("social_assistance", "社会救助"),
        Medical = ("medical", "医疗健康"),
    }
}

choices! {
    /// 老年人服务满意度评价
    Satisfaction {
        VerySatisfied = ("very_satisfied", "非常满意"),
        Satisfied = ("satisfied", "满意"),
        Neutral = ("neutral", "基本满意"),
        Dissatisfied = ("dissatisfied", "不满意"),
    }
}

/// The judgements of part 5. `None` is a box left empty (a phone call cannot
/// judge the gas, for one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assessment {
    pub household: Option<HouseholdChange>,
    /// How many people more or fewer, with `increased` / `decreased`.
    pub household_delta: Option<i64>,
    /// 表达能力
    pub speech: Option<Change>,
    /// 行动能力
    pub mobility: Option<Change>,
    pub illness: Option<Illness>,
    /// 严重疾病名称
    pub illness_name: Option<String>,
    /// 情绪状态
    pub mood: Option<Change>,
    pub gas: Option<Safety>,
    /// 水暖安全
    pub water_heating: Option<Safety>,
    pub electricity: Option<Safety>,
    pub fire: Option<Safety>,
    pub personal_hygiene: Option<Change>,
    pub home_hygiene: Option<Change>,
    /// 室内环境
    pub indoor: Option<Change>,
    /// The plan's other contents of a visit (探访内容 beyond the form's
    /// boxes), optional: 生活保障 — difficulties found and entitlements
    /// checked (低保, 特困供养, subsidies).
    pub livelihood: Option<String>,
    /// 亲情关怀: contact with the family, who was reached.
    pub family_contact: Option<String>,
    /// 生产帮助: help needed with farming or work.
    pub production_help: Option<String>,
    /// 其他情况
    pub other_situation: Option<String>,
    /// Bad safety habits seen: smoking (吸烟) …
    #[serde(default)]
    pub smoking: bool,
    /// … and high-power appliances (大功率电器).
    #[serde(default)]
    pub high_power_appliances: bool,
}

impl Assessment {
    /// The plan's other contents recorded, as the plan words them
    /// (`生活保障：…`, `安全隐患：吸烟、大功率电器`), for the record form and the
    /// elder page.
    pub fn plan_contents(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (word, text) in [
            ("生活保障", &self.livelihood),
            ("亲情关怀", &self.family_contact),
            ("生产帮助", &self.production_help),
            ("其他情况", &self.other_situation),
        ] {
            if let Some(text) = text {
                lines.push(format!("{word}：{text}"));
            }
        }
        let habits: Vec<&str> = [(self.smoking, "吸烟"), (self.high_power_appliances, "大功率电器")]
            .into_iter()
            .filter_map(|(seen, word)| seen.then_some(word))
            .collect();
        if !habits.is_empty() {
            lines.push(format!("安全隐患：{}", habits.join("、")));
        }
        lines
    }

    /// Whether the visit found something to act on: a worse judgement, a
    /// serious illness, an unsafe home.
    pub fn finds_a_problem(&self) -> bool {
        let worse = [self.speech, self.mobility, self.mood, self.personal_hygiene, self.home_hygiene, self.indoor]
            .contains(&Some(Change::Worse));
        let unsafe_home = [self.gas, self.water_heating, self.electricity, self.fire].contains(&Some(Safety::Unsafe));
        worse || unsafe_home || self.illness == Some(Illness::Serious) || self.smoking || self.high_power_appliances
    }
}

/// A visit as staff record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisit {
    pub elder_id: i64,
    pub day: chrono::NaiveDate,
    pub mode: VisitMode,
    /// When the visit began (local time of `day`); required for a home
    /// visit, which the home's sensors can then corroborate.
    pub started: Option<chrono::NaiveTime>,
    /// 探访人员: who visited.
    pub visitor: String,
    pub assessment: Assessment,
    /// 老年人服务需求
    pub needs: Option<String>,
    /// 实施关爱服务建议
    pub suggestions: Option<String>,
}

/// Why a visit, referral or care service was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisitError {
    #[error("remote visits are the alert engine's daily check-ins and cannot be recorded by hand")]
    RemoteByHand,
    #[error("the date {0} is in the future")]
    FutureDay(chrono::NaiveDate),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("say how many people the household gained or lost (1 to 20)")]
    HouseholdDelta,
    #[error("name the serious illness")]
    IllnessName,
    #[error("a home visit needs the time it began (HH:MM)")]
    StartTime,
}

fn optional(field: &'static str, text: Option<&str>, max: usize) -> Result<Option<String>, VisitError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max {
        return Err(VisitError::TooLong { field, max });
    }
    Ok(Some(text.to_string()))
}

/// `text` trimmed, required, at most `max` characters.
pub fn required(field: &'static str, text: &str, max: usize) -> Result<String, VisitError> {
    optional(field, Some(text), max)?.ok_or(VisitError::Missing(field))
}

impl NewVisit {
    /// Checks the visit against `today`; returns it tidied.
    pub fn check(mut self, today: chrono::NaiveDate) -> Result<NewVisit, VisitError> {
        if self.mode == VisitMode::Remote {
            return Err(VisitError::RemoteByHand);
        }
        if self.day > today {
            return Err(VisitError::FutureDay(self.day));
        }
        if self.mode == VisitMode::Home && self.started.is_none() {
            return Err(VisitError::StartTime);
        }
        self.visitor = required("who visited", &self.visitor, 64)?;
        self.needs = optional("the elder's needs", self.needs.as_deref(), 1_000)?;
        self.suggestions = optional("suggested care", self.suggestions.as_deref(), 1_000)?;
        let assessment = &mut self.assessment;
        match assessment.household {
            Some(HouseholdChange::Increased | HouseholdChange::Decreased) => {
                if !assessment.household_delta.is_some_and(|n| (1..=20).contains(&n)) {
                    return Err(VisitError::HouseholdDelta);
                }
            }
            _ => assessment.household_delta = None,
        }
        assessment.illness_name = optional("the illness", assessment.illness_name.as_deref(), 100)?;
        assessment.livelihood = optional("livelihood", assessment.livelihood.as_deref(), 500)?;
        assessment.family_contact = optional("family contact", assessment.family_contact.as_deref(), 500)?;
        assessment.production_help = optional("production help", assessment.production_help.as_deref(), 500)?;
        assessment.other_situation = optional("other situation", assessment.other_situation.as_deref(), 500)?;
        if assessment.illness == Some(Illness::Serious) {
            if assessment.illness_name.is_none() {
                return Err(VisitError::IllnessName);
            }
        } else {
            assessment.illness_name = None;
        }
        Ok(self)
    }
}

impl NewVisit {
    /// When the visit began, epoch ms, at the deployment's `offset`.
    pub fn started_at(&self, offset: chrono::FixedOffset) -> Option<i64> {
        let local = self.day.and_time(self.started?);
        Some(local.and_local_timezone(offset).single()?.timestamp_millis())
    }
}

/// From this day of a month the visitor's page and the rate page lead with
/// who is still unvisited (the plan's month-end reminder).
pub const REMIND_FROM_DAY: u32 = 20;

/// The id a client (a phone, a rendered form) gives a visit, so that sending
/// it again records nothing twice: 8 to 64 letters, digits, `-` or `_`.
pub fn check_client_id(text: &str) -> Option<&str> {
    let text = text.trim();
    ((8..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then_some(text)
}

/// A visitor's round (本月探访): why an elder is on it, most pressing first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoundReason {
    /// Under a heightened watch, due a visit by a person.
    WatchDue,
    /// No visit of any mode yet this month.
    Unvisited,
    /// A referral raised for them is still open.
    Referral,
    /// Seen only by the sensors (remote check-ins) for [`ONLY_REMOTE_DAYS`] or more.
    OnlyRemote,
    /// Visited this month; nothing waiting.
    Visited,
}

impl RoundReason {
    pub fn code(self) -> &'static str {
        match self {
            RoundReason::WatchDue => "watch_due",
            RoundReason::Unvisited => "unvisited",
            RoundReason::Referral => "referral",
            RoundReason::OnlyRemote => "only_remote",
            RoundReason::Visited => "visited",
        }
    }
}

/// Days without a visit by a person (home, phone, video) after which an
/// elder seen only by the sensors comes up on the round.
pub const ONLY_REMOTE_DAYS: i64 = 60;

/// Why an elder is on the round today: the most pressing of what holds.
pub fn round_reason(
    watch_due: bool,
    visited_this_month: bool,
    open_referrals: usize,
    last_person_visit: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
) -> RoundReason {
    if watch_due {
        RoundReason::WatchDue
    } else if !visited_this_month {
        RoundReason::Unvisited
    } else if open_referrals > 0 {
        RoundReason::Referral
    } else if last_person_visit.is_none_or(|day| (today - day).num_days() >= ONLY_REMOTE_DAYS) {
        RoundReason::OnlyRemote
    } else {
        RoundReason::Visited
    }
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    first: chrono::NaiveDate,
}

impl Month {
    pub fn parse(text: &str) -> Option<Month> {
        let first = chrono::NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d").ok()?;
        (text.trim().len() == 7).then_some(Month { first })
    }

    pub fn of(day: chrono::NaiveDate) -> Month {
        use chrono::Datelike;
        Month { first: day.with_day(1).unwrap_or(day) }
    }

    pub fn first_day(self) -> chrono::NaiveDate {
        self.first
    }

    pub fn last_day(self) -> chrono::NaiveDate {
        self.next().first.pred_opt().unwrap_or(self.first)
    }

    pub fn next(self) -> Month {
        Month { first: self.first.checked_add_months(chrono::Months::new(1)).unwrap_or(self.first) }
    }

    pub fn previous(self) -> Month {
        Month { first: self.first.checked_sub_months(chrono::Months::new(1)).unwrap_or(self.first) }
    }

    /// The instant the month ends (its next month's first midnight) at
    /// `offset`, epoch ms.
    pub fn ends_at(self, offset: chrono::FixedOffset) -> i64 {
        crate::time::day_start_ms(self.next().first_day(), offset)
    }

    /// Days of the month still to come after `today`, counting today: 0 once
    /// the month is over, the whole month before it begins.
    pub fn days_left(self, today: chrono::NaiveDate) -> i64 {
        let last = self.last_day();
        if today > last { 0 } else { (last - today.max(self.first)).num_days() + 1 }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.first.format("%Y-%m"))
    }
}

/// Elders registered and visited in one region and month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RateFigures {
    pub registered: i64,
    pub visited: i64,
}

impl RateFigures {
    /// 月探访率 in per mille, rounded down (so 100% means every elder).
    pub fn per_mille(&self) -> Option<i64> {
        (self.registered > 0).then(|| self.visited * 1_000 / self.registered)
    }

    /// `87.5%`; `—` with nobody registered.
    pub fn percent(&self) -> String {
        match self.per_mille() {
            Some(p) if p % 10 == 0 => format!("{}%", p / 10),
            Some(p) => format!("{}.{}%", p / 10, p % 10),
            None => "—".into(),
        }
    }

    pub fn add(&mut self, visited: bool) {
        self.registered += 1;
        self.visited += i64::from(visited);
    }
}

/// How a region's visits of a month were made: the count of each mode, and
/// of home visits the sensors corroborated. A township whose elders are
/// "visited" only by the remote check-in shows here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ModeMix {
    pub home: i64,
    pub phone: i64,
    pub video: i64,
    pub other: i64,
    pub remote: i64,
    /// Home visits corroborated by the home's sensors.
    pub corroborated: i64,
}

impl ModeMix {
    /// Counts `n` visits of `mode` (their corroboration given for home visits).
    pub fn add(&mut self, mode: VisitMode, corroborated: bool, n: i64) {
        match mode {
            VisitMode::Home => {
                self.home += n;
                if corroborated {
                    self.corroborated += n;
                }
            }
            VisitMode::Phone => self.phone += n,
            VisitMode::Video => self.video += n,
            VisitMode::Other => self.other += n,
            VisitMode::Remote => self.remote += n,
        }
    }

    /// The corroborated share of home visits, rounded down; `—` without any.
    pub fn corroborated_share(&self) -> String {
        RateFigures { registered: self.home, visited: self.corroborated }.percent()
    }

    /// Visits by a person (home, phone, video, other) against all.
    pub fn by_person(&self) -> i64 {
        self.home + self.phone + self.video + self.other
    }
}

/// Which regions a rate is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLevel {
    County,
    Township,
    Village,
}

/// The monthly visit rate (月探访率) of a month: who was registered, who was
/// visited (by any mode, the remote check-in included) and the breakdown by
/// region.
///
/// The denominator: an elder counts in month M when enrolled on any day of
/// M; an elder whose exit falls in M counts only when visited on or before
/// the exit date (one who died on the 3rd before anyone came is not a
/// failure of the month, one visited on the 2nd is a success). The store
/// hands in the elders enrolled on some day of M ([`ElderMonth`], with the
/// visits up to the exit); this applies the rest. The one computation behind `anxin visits rate`, the rate page,
/// its `.xlsx` export and `/api/v1/rate`; each caller only chooses whose
/// elders it hands in (the store's `month_elders`, narrowed to what the
/// reader may see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRate {
    pub month: Month,
    /// Days of the month still to come, counting today.
    pub days_left: i64,
    pub total: RateFigures,
    elders: Vec<ElderMonth>,
    /// Elders who left during the month before anyone visited them: not in
    /// the figures, listed so that the figures can be checked.
    pub left_unvisited: Vec<ElderMonth>,
}

impl VisitRate {
    /// The rate of `elders` (each with their visits of `month`) that lie in
    /// `region` (all of them without one), on `today` (the deployment's date).
    pub fn of(
        month: Month,
        today: chrono::NaiveDate,
        elders: impl IntoIterator<Item = ElderMonth>,
        region: Option<&crate::access::Region>,
    ) -> VisitRate {
        let (elders, left_unvisited): (Vec<ElderMonth>, Vec<ElderMonth>) = elders
            .into_iter()
            .filter(|e| region.is_none_or(|r| r.covers(&e.county, &e.township, &e.village)))
            .partition(|e| e.left_on.is_none() || e.visits > 0);
        let mut total = RateFigures::default();
        for elder in &elders {
            total.add(elder.visits > 0);
        }
        VisitRate { month, days_left: month.days_left(today), total, elders, left_unvisited }
    }

    /// The figures of each region at `level`, in region order
    /// (`振兴区`, `振兴区/站前街道`, `振兴区/站前街道/锦山社区`).
    pub fn by(&self, level: RegionLevel) -> Vec<(String, RateFigures)> {
        let mut regions: std::collections::BTreeMap<String, RateFigures> = std::collections::BTreeMap::new();
        for elder in &self.elders {
            let key = match level {
                RegionLevel::County => elder.county.clone(),
                RegionLevel::Township => format!("{}/{}", elder.county, elder.township),
                RegionLevel::Village => format!("{}/{}/{}", elder.county, elder.township, elder.village),
            };
            regions.entry(key).or_default().add(elder.visits > 0);
        }
        regions.into_iter().collect()
    }

    /// Registered elders with no visit of any mode yet this month.
    pub fn unvisited(&self) -> impl Iterator<Item = &ElderMonth> {
        self.elders.iter().filter(|e| e.visits == 0)
    }
}

#[cfg(test)]
mod month_tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_know_their_days_and_what_is_left_of_them() {
        let november = Month::parse("2026-11").unwrap();
        assert_eq!(november.last_day(), day("2026-11-30"));
        assert_eq!(Month::parse("2028-02").unwrap().last_day(), day("2028-02-29"));
        assert_eq!(november.next().to_string(), "2026-12");
        assert_eq!(Month::parse("2026-01").unwrap().previous().to_string(), "2025-12");
        assert_eq!(november.days_left(day("2026-11-29")), 2);
        assert_eq!(november.days_left(day("2026-12-01")), 0);
        assert_eq!(november.days_left(day("2026-10-15")), 30);
        assert_eq!(Month::parse("2026-13"), None);
        assert_eq!(Month::parse("2026-1"), None);
        assert_eq!(Month::of(day("2026-11-29")), november);
        let beijing = chrono::FixedOffset::east_opt(8 * 3_600).unwrap();
        // 2026-12-01 00:00 +08:00 is 2026-11-30 16:00 UTC.
        assert_eq!(november.ends_at(beijing), 1_796_054_400_000);
    }

    #[test]
    fn the_rate_is_rounded_down_so_that_100_percent_means_everyone() {
        assert_eq!(RateFigures { registered: 3, visited: 2 }.percent(), "66.6%");
        assert_eq!(RateFigures { registered: 8, visited: 7 }.percent(), "87.5%");
        assert_eq!(RateFigures { registered: 1_000, visited: 999 }.percent(), "99.9%");
        assert_eq!(RateFigures { registered: 4, visited: 4 }.percent(), "100%");
        assert_eq!(RateFigures::default().percent(), "—");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_puts_a_watch_first_then_the_unvisited_then_referrals_then_the_remotely_seen() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 21).unwrap();
        let ago = |days: u64| Some(today - chrono::Days::new(days));
        assert_eq!(round_reason(true, true, 0, ago(1), today), RoundReason::WatchDue);
        assert_eq!(round_reason(false, false, 2, None, today), RoundReason::Unvisited);
        assert_eq!(round_reason(false, true, 1, ago(90), today), RoundReason::Referral);
        assert_eq!(round_reason(false, true, 0, ago(60), today), RoundReason::OnlyRemote);
        assert_eq!(round_reason(false, true, 0, None, today), RoundReason::OnlyRemote);
        assert_eq!(round_reason(false, true, 0, ago(59), today), RoundReason::Visited);
        assert!(RoundReason::WatchDue < RoundReason::Unvisited && RoundReason::OnlyRemote < RoundReason::Visited);
    }

    fn day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn visit() -> NewVisit {
        NewVisit {
            elder_id: 1,
            day: day("2026-11-20"),
            mode: VisitMode::Home,
            started: chrono::NaiveTime::from_hms_opt(9, 30, 0),
            visitor: " 李探访 ".into(),
            assessment: Assessment::default(),
            needs: Some("  ".into()),
            suggestions: None,
        }
    }

    #[test]
    fn a_visit_is_checked_against_the_forms_rules() {
        let today = day("2026-11-29");
        let checked = visit().check(today).unwrap();
        assert_eq!(checked.visitor, "李探访");
        assert_eq!(checked.needs, None);
        assert_eq!(NewVisit { mode: VisitMode::Remote, ..visit() }.check(today), Err(VisitError::RemoteByHand));
        assert_eq!(
            NewVisit { day: day("2026-11-30"), ..visit() }.check(today),
            Err(VisitError::FutureDay(day("2026-11-30")))
        );
        let grew = Assessment { household: Some(HouseholdChange::Increased), ..Assessment::default() };
        assert_eq!(NewVisit { assessment: grew.clone(), ..visit() }.check(today), Err(VisitError::HouseholdDelta));
        let grew_by_one = Assessment { household_delta: Some(1), ..grew };
        assert!(NewVisit { assessment: grew_by_one, ..visit() }.check(today).is_ok());
        let ill = Assessment { illness: Some(Illness::Serious), ..Assessment::default() };
        assert_eq!(NewVisit { assessment: ill, ..visit() }.check(today), Err(VisitError::IllnessName));
        assert_eq!(NewVisit { started: None, ..visit() }.check(today), Err(VisitError::StartTime));
        assert!(NewVisit { started: None, mode: VisitMode::Phone, ..visit() }.check(today).is_ok());
        let beijing = chrono::FixedOffset::east_opt(8 * 3_600).unwrap();
        // 2026-11-20 09:30 +08:00 is 01:30 UTC.
        assert_eq!(visit().started_at(beijing), Some(1_795_138_200_000));
    }

    #[test]
    fn a_spot_check_sample_is_the_same_for_the_same_seed() {
        let visits: Vec<i64> = (1..=40).collect();
        let sample = spot_check_sample("5eed", &visits, 5);
        assert_eq!(sample.len(), 5);
        assert_eq!(sample, spot_check_sample("5eed", &visits, 5), "reproducible from its seed");
        let shuffled: Vec<i64> = visits.iter().rev().copied().collect();
        assert_eq!(sample, spot_check_sample("5eed", &shuffled, 5), "whatever order the visits come in");
        assert_ne!(sample, spot_check_sample("another", &visits, 5), "another seed, another sample");
        assert_eq!(spot_check_sample("5eed", &[3, 9], 5), vec![3, 9], "all of them when fewer");
        assert_eq!(new_seed().len(), 16);
        assert_ne!(new_seed(), new_seed());
    }

    #[test]
    fn a_mix_counts_each_mode_and_the_corroborated_share_of_home_visits() {
        let mut mix = ModeMix::default();
        mix.add(VisitMode::Home, true, 2);
        mix.add(VisitMode::Home, false, 1);
        mix.add(VisitMode::Remote, false, 20);
        mix.add(VisitMode::Phone, false, 3);
        assert_eq!((mix.home, mix.corroborated, mix.remote, mix.by_person()), (3, 2, 20, 6));
        assert_eq!(mix.corroborated_share(), "66.6%");
        assert_eq!(ModeMix::default().corroborated_share(), "—");
    }

    #[test]
    fn a_home_visit_is_corroborated_by_a_door_and_motion_in_its_window() {
        use crate::time::{HOUR_MS, MINUTE_MS};
        let start = 100 * HOUR_MS + 30 * MINUTE_MS; // 10:30 of some day
        let quiet_then_visit = [(99 * HOUR_MS, 5, 0), (100 * HOUR_MS, 7, 1)];
        assert_eq!(corroborate(start, &quiet_then_visit, true), Corroboration::Corroborated);
        // Motion all morning, the door only at 08:00: nobody came at 10:30.
        let no_door = [(98 * HOUR_MS, 3, 1), (100 * HOUR_MS, 7, 0), (101 * HOUR_MS, 4, 0)];
        assert_eq!(corroborate(start, &no_door, true), Corroboration::NoPresence);
        // The window reaches back a quarter of an hour: a 10:10 visit sees 09:00's hour.
        let early = [(99 * HOUR_MS, 2, 1)];
        assert_eq!(corroborate(100 * HOUR_MS + 10 * MINUTE_MS, &early, true), Corroboration::Corroborated);
        assert_eq!(corroborate(start, &early, true), Corroboration::NoPresence);
        assert_eq!(corroborate(start, &[], false), Corroboration::NoSensors);
    }

    #[test]
    fn a_worse_judgement_or_an_unsafe_home_is_a_problem_found() {
        assert!(!Assessment::default().finds_a_problem());
        assert!(Assessment { gas: Some(Safety::Unsafe), ..Assessment::default() }.finds_a_problem());
        assert!(Assessment { mood: Some(Change::Worse), ..Assessment::default() }.finds_a_problem());
        assert!(!Assessment { gas: Some(Safety::FairlySafe), ..Assessment::default() }.finds_a_problem());
        assert!(Assessment { smoking: true, ..Assessment::default() }.finds_a_problem(), "a bad safety habit");
        assert!(!Assessment { family_contact: Some("女儿每周来电".into()), ..Assessment::default() }.finds_a_problem());
        // A visit stored before the plan's contents existed reads back whole.
        let old: Assessment = serde_json::from_str(r#"{"gas":"unsafe","mood":"unchanged"}"#).unwrap();
        assert_eq!((old.gas, old.smoking, old.livelihood), (Some(Safety::Unsafe), false, None));
        assert_eq!(Safety::parse("较安全"), Some(Safety::FairlySafe));
        assert_eq!(VisitMode::parse("phone"), Some(VisitMode::Phone));
    }
}

/// One elder's visits (of any mode) in one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ElderMonth {
    pub elder_id: i64,
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    /// Visits of the month; for an elder who left during it, those on or
    /// before the exit date.
    pub visits: i64,
    /// The last day visited that month, `YYYY-MM-DD`.
    pub last_visit: Option<String>,
    /// The exit date (`YYYY-MM-DD`) when the elder left the programme during
    /// the month.
    pub left_on: Option<String>,
}

impl crate::access::Placed for ElderMonth {
    fn place(&self) -> crate::access::ElderPlace<'_> {
        crate::access::ElderPlace {
            elder_id: self.elder_id,
            county: &self.county,
            township: &self.township,
            village: &self.village,
        }
    }
}
