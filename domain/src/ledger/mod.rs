//! The ledger (台账): every field of the record form's parts 1 to 4
//! (annex 1) for each elder, checked once here, and read from or written to
//! the spreadsheets townships already keep ([`sheet`]).
//!
//! A ledger file has one row per elder under a header row of the form's own
//! labels (`县(市、区)`, `被探访人姓名`, `公民身份号码`, …); the English keys
//! of [`Column::key`] are accepted too. Rows are matched to the registry by
//! citizen ID, so importing the same file twice changes nothing.

pub mod sheet;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::alerts::Category;
use crate::registry::NewElder;
use crate::registry::{self, CertificateError, CitizenId, CitizenIdError, RegistryError};
use sheet::Cell;

/// A closed set of answers, each with a stable code (stored, API) and the
/// record form's own word (sheets, printed form).
macro_rules! choices {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = ($code:literal, $label:literal $(, $alias:literal)*)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code: what the database and the API hold.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The record form's word for it.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// A code, the form's word, or a common variant of it.
            pub fn parse(text: &str) -> Option<$name> {
                let text = text.trim();
                $(if text == $code || text == $label $(|| text == $alias)* { return Some($name::$variant); })+
                None
            }

            /// The form's words, for error messages: `男、女`.
            pub fn labels() -> String {
                Self::ALL.iter().map(|c| c.label()).collect::<Vec<_>>().join("、")
            }
        }
    };
}

pub(crate) use choices;

choices! {
    /// 性别
    Sex { Male = ("male", "男"), Female = ("female", "女") }
}

choices! {
    /// 是否为低保对象 / 特困人员
    Support {
        None = ("none", "否", "无"),
        MinimumIncome = ("minimum_income", "低保对象", "低保"),
        Destitute = ("destitute", "特困人员", "特困"),
    }
}

choices! {
    /// 帮扶单位(组织): the kinds the record form lists.
    HelpOrg {
        PartyGovernment = ("party_government", "党政机关、群团组织"),
        Community = ("community", "乡镇(街道)、村(居)民委员会"),
        Enterprise = ("enterprise", "企业"),
        SocialOrganisation = ("social_organisation", "社会组织"),
        SocialWorker = ("social_worker", "专业社会工作者"),
        Volunteer = ("volunteer", "志愿者"),
        Other = ("other", "其他"),
    }
}

/// The household rows of the record form's part 2: 户主, 2 and 3.
pub const MEMBERS: usize = 3;

/// One household member (part 2); position 1 is the head of household.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HouseholdMember {
    pub name: String,
    pub sex: Option<Sex>,
    /// Checked like the elder's, without the age rule.
    pub citizen_id: Option<String>,
    /// 与被探访人关系
    pub relation: Option<String>,
    /// 健康状况
    pub health: Option<String>,
    pub support: Support,
}

/// Part 3, 家庭生活条件. Safety answers are `None` when not recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LivingConditions {
    pub water_safe: Option<bool>,
    pub power_safe: Option<bool>,
    pub housing_safe: Option<bool>,
    /// 家庭每月收入, in fen (1/100 yuan).
    pub monthly_income_fen: Option<i64>,
    /// 每月领取养老保险、社会救助和社会福利补贴等情况
    pub benefits: Option<String>,
}

/// Part 4, 已享受帮扶情况.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HelpReceived {
    pub orgs: Vec<HelpOrg>,
    /// 帮扶责任人
    pub person: Option<String>,
    /// 帮扶措施
    pub measures: Option<String>,
}

/// What the ledger holds about an elder beyond the registration the alert
/// engine needs: parts 1 (是否残疾) to 4 of the record form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ElderDetails {
    /// 是否残疾 (a certificate number implies it).
    pub disabled: bool,
    /// At most [`MEMBERS`], the head of household first.
    pub members: Vec<HouseholdMember>,
    pub living: LivingConditions,
    pub help: HelpReceived,
}

/// One elder's row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// 编号: the elder's number in Anxin, on exported rows. An import matches
    /// rows by it first, then by citizen ID; rows with neither are new.
    pub id: Option<i64>,
    /// Part 1; `inactivity_hours` is not in the ledger and stays `None`.
    pub elder: NewElder,
    pub details: ElderDetails,
    /// 探访责任人: user names of visitors, sorted.
    pub visitors: Vec<String>,
    /// 退出原因 and 退出日期: the elder left the programme. An import applies
    /// a new exit to an elder on record; it never undoes or changes one.
    pub exit: Option<crate::enrolment::Exit>,
    /// 紧急联系人同意联系: how the emergency contact agreed to be called. With
    /// it, an import puts them on the elder's call list (as family); an
    /// empty cell leaves the call list as it is.
    pub emergency_consent: Option<String>,
}

/// A field of a household member's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberField {
    Name,
    Sex,
    CitizenId,
    Relation,
    Health,
    Support,
}

impl MemberField {
    const ALL: [MemberField; 6] = [
        MemberField::Name,
        MemberField::Sex,
        MemberField::CitizenId,
        MemberField::Relation,
        MemberField::Health,
        MemberField::Support,
    ];
}

/// A column of a ledger sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Id,
    County,
    Township,
    Village,
    Address,
    LivesAtRegistered,
    Name,
    CitizenId,
    Phone,
    EmergencyContact,
    EmergencyPhone,
    Disabled,
    DisabilityCert,
    Category(Category),
    /// 留守: the date the children left.
    LeftBehindSince,
    /// Member 0 is the head of household.
    Member(usize, MemberField),
    WaterSafe,
    PowerSafe,
    HousingSafe,
    MonthlyIncome,
    Benefits,
    HelpOrgs,
    HelpPerson,
    HelpMeasures,
    Visitors,
    ExitReason,
    ExitDate,
    EmergencyConsent,
}

impl Column {
    /// Every column, in the order a ledger is written.
    pub fn all() -> Vec<Column> {
        let mut columns = vec![
            Column::Id,
            Column::County,
            Column::Township,
            Column::Village,
            Column::Address,
            Column::LivesAtRegistered,
            Column::Name,
            Column::CitizenId,
            Column::Phone,
            Column::EmergencyContact,
            Column::EmergencyPhone,
            Column::Disabled,
            Column::DisabilityCert,
        ];
        columns.extend(Category::ALL.map(Column::Category));
        columns.push(Column::LeftBehindSince);
        for member in 0..MEMBERS {
            columns.extend(MemberField::ALL.map(|field| Column::Member(member, field)));
        }
        columns.extend([
            Column::WaterSafe,
            Column::PowerSafe,
            Column::HousingSafe,
            Column::MonthlyIncome,
            Column::Benefits,
            Column::HelpOrgs,
            Column::HelpPerson,
            Column::HelpMeasures,
            Column::Visitors,
            Column::ExitReason,
            Column::ExitDate,
            Column::EmergencyConsent,
        ]);
        columns
    }

    /// The record form's label: the header townships use.
    pub fn header(self) -> String {
        let fixed = match self {
            Column::Id => "编号",
            Column::County => "县(市、区)",
            Column::Township => "乡镇(街道)",
            Column::Village => "村(居)",
            Column::Address => "家庭住址",
            Column::LivesAtRegistered => "是否居住在户籍所在地",
            Column::Name => "被探访人姓名",
            Column::CitizenId => "公民身份号码",
            Column::Phone => "联系电话",
            Column::EmergencyContact => "紧急联系人",
            Column::EmergencyPhone => "紧急联系人电话",
            Column::Disabled => "是否残疾",
            Column::DisabilityCert => "残疾人证号",
            Column::Category(category) => match category {
                Category::LivingAlone => "是否独居",
                Category::EmptyNest => "是否空巢",
                Category::LeftBehind => "是否留守",
                Category::Dependent => "是否失能",
                Category::SeverelyDisabled => "是否重残",
                Category::BereavedFamily => "是否计划生育特殊家庭老年人",
            },
            Column::LeftBehindSince => "子女外出时间",
            Column::Member(member, field) => {
                let who = if member == 0 { "户主".to_string() } else { format!("家庭成员{}", member + 1) };
                let what = match field {
                    MemberField::Name => "姓名",
                    MemberField::Sex => "性别",
                    MemberField::CitizenId => "公民身份号码",
                    MemberField::Relation => "与被探访人关系",
                    MemberField::Health => "健康状况",
                    MemberField::Support => "是否为低保对象/特困人员",
                };
                return format!("{who}{what}");
            }
            Column::WaterSafe => "饮水是否安全",
            Column::PowerSafe => "生活用电是否安全",
            Column::HousingSafe => "住房是否安全",
            Column::MonthlyIncome => "家庭每月收入(元)",
            Column::Benefits => "家庭每月领取养老保险、社会救助和社会福利补贴等情况",
            Column::HelpOrgs => "帮扶单位(组织)",
            Column::HelpPerson => "帮扶责任人",
            Column::HelpMeasures => "帮扶措施",
            Column::Visitors => "探访责任人",
            Column::ExitReason => "退出原因",
            Column::ExitDate => "退出日期",
            Column::EmergencyConsent => "紧急联系人同意联系",
        };
        fixed.to_string()
    }

    /// The English key, accepted as a header too.
    pub fn key(self) -> String {
        let fixed = match self {
            Column::Id => "id",
            Column::County => "county",
            Column::Township => "township",
            Column::Village => "village",
            Column::Address => "address",
            Column::LivesAtRegistered => "lives_at_registered",
            Column::Name => "name",
            Column::CitizenId => "citizen_id",
            Column::Phone => "phone",
            Column::EmergencyContact => "emergency_contact",
            Column::EmergencyPhone => "emergency_phone",
            Column::Disabled => "disabled",
            Column::DisabilityCert => "disability_cert",
            Column::Category(category) => category.as_str(),
            Column::LeftBehindSince => "left_behind_since",
            Column::Member(member, field) => {
                let what = match field {
                    MemberField::Name => "name",
                    MemberField::Sex => "sex",
                    MemberField::CitizenId => "citizen_id",
                    MemberField::Relation => "relation",
                    MemberField::Health => "health",
                    MemberField::Support => "support",
                };
                return format!("member{}_{what}", member + 1);
            }
            Column::WaterSafe => "water_safe",
            Column::PowerSafe => "power_safe",
            Column::HousingSafe => "housing_safe",
            Column::MonthlyIncome => "monthly_income",
            Column::Benefits => "benefits",
            Column::HelpOrgs => "help_orgs",
            Column::HelpPerson => "help_person",
            Column::HelpMeasures => "help_measures",
            Column::Visitors => "visitors",
            Column::ExitReason => "exit_reason",
            Column::ExitDate => "exit_date",
            Column::EmergencyConsent => "emergency_consent",
        };
        fixed.to_string()
    }

    /// Columns a ledger cannot do without.
    fn required(self) -> bool {
        matches!(
            self,
            Column::County | Column::Township | Column::Village | Column::Address | Column::Name | Column::CitizenId
        )
    }
}

/// Headers compare without spaces and with full-width brackets and slashes
/// made half-width, as typed in Excel they vary.
fn normalise_header(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '／' => '/',
            other => other,
        })
        .collect::<String>()
        .to_lowercase()
}

/// What is wrong with one cell (or the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Required,
    TooLong(usize),
    CitizenId(CitizenIdError),
    TooYoung {
        birth: String,
    },
    Phone,
    NotYesNo,
    NotAChoice {
        allowed: String,
    },
    NotAnAmount,
    /// Excel keeps numbers to 15 digits: an 18-digit ID typed as a number is
    /// already wrong in the file.
    IdAsNumber,
    DuplicateCitizenId {
        line: usize,
    },
    /// One elder's number (编号) on two rows.
    DuplicateId {
        line: usize,
    },
    UnknownVisitor,
    UnknownId,
    CitizenIdTaken {
        elder_id: i64,
    },
    CertificateWithoutDisability,
    Certificate(CertificateError),
    /// Every 是否… column says 否: annex 2 needs at least one category.
    NoCategory,
    /// 留守 without the date the children left.
    LeftBehindSince,
    NotADate,
    DateInFuture,
    /// 退出原因 without 退出日期, or the other way round.
    ExitIncomplete,
    /// A new elder cannot be registered as having left.
    NewElderLeft,
    /// 紧急联系人同意联系 without the contact's name and phone.
    ConsentWithoutContact,
    /// A warning: 独居, yet the household rows list others.
    LivesAloneWithHousehold {
        others: usize,
    },
    /// The elder on record left already, otherwise: an import does not
    /// change or undo an exit.
    ExitChanged {
        on: String,
    },
    MissingColumn,
    NoHeader,
    NoRows,
    /// Over one of [`sheet::Limits`].
    TooLarge(sheet::Limit),
    Unreadable(String),
}

impl Problem {
    /// Its name in the translation files (`[ledger_problem]`), where each
    /// language has its words with the placeholders of [`Problem::english_template`].
    pub fn key(&self) -> &'static str {
        match self {
            Problem::Required => "required",
            Problem::TooLong(_) => "too_long",
            Problem::CitizenId(CitizenIdError::Length(_)) => "citizen_id_length",
            Problem::CitizenId(CitizenIdError::Characters) => "citizen_id_characters",
            Problem::CitizenId(CitizenIdError::BirthDate(_)) => "citizen_id_birth_date",
            Problem::CitizenId(CitizenIdError::CheckDigit { .. }) => "citizen_id_check_digit",
            Problem::TooYoung { .. } => "too_young",
            Problem::Phone => "phone",
            Problem::NotYesNo => "not_yes_no",
            Problem::NotAChoice { .. } => "not_a_choice",
            Problem::NotAnAmount => "not_an_amount",
            Problem::IdAsNumber => "id_as_number",
            Problem::DuplicateCitizenId { .. } => "duplicate_citizen_id",
            Problem::DuplicateId { .. } => "duplicate_id",
            Problem::UnknownVisitor => "unknown_visitor",
            Problem::UnknownId => "unknown_id",
            Problem::CitizenIdTaken { .. } => "citizen_id_taken",
            Problem::CertificateWithoutDisability => "certificate_without_disability",
            Problem::Certificate(CertificateError::Shape) => "certificate_shape",
            Problem::Certificate(CertificateError::NotTheElders) => "certificate_not_the_elders",
            Problem::Certificate(CertificateError::BadCitizenId(_)) => "certificate_citizen_id",
            Problem::Certificate(CertificateError::NotSevere(_)) => "certificate_not_severe",
            Problem::NoCategory => "no_category",
            Problem::LeftBehindSince => "left_behind_since",
            Problem::NotADate => "not_a_date",
            Problem::DateInFuture => "date_in_future",
            Problem::ExitIncomplete => "exit_incomplete",
            Problem::LivesAloneWithHousehold { .. } => "lives_alone_with_household",
            Problem::NewElderLeft => "new_elder_left",
            Problem::ConsentWithoutContact => "consent_without_contact",
            Problem::ExitChanged { .. } => "exit_changed",
            Problem::MissingColumn => "missing_column",
            Problem::NoHeader => "no_header",
            Problem::NoRows => "no_rows",
            Problem::TooLarge(sheet::Limit::Bytes(_)) => "file_too_large",
            Problem::TooLarge(sheet::Limit::UnpackedBytes(_)) => "file_unpacks_too_large",
            Problem::TooLarge(sheet::Limit::Rows(_)) => "too_many_rows",
            Problem::TooLarge(sheet::Limit::Columns(_)) => "too_many_columns",
            Problem::Unreadable(_) => "unreadable",
        }
    }

    /// Every problem, one of each kind (for the translation files' test).
    pub fn examples() -> Vec<Problem> {
        vec![
            Problem::Required,
            Problem::TooLong(50),
            Problem::CitizenId(CitizenIdError::Length(17)),
            Problem::CitizenId(CitizenIdError::Characters),
            Problem::CitizenId(CitizenIdError::BirthDate("19451301".into())),
            Problem::CitizenId(CitizenIdError::CheckDigit { found: '1', expected: 'X' }),
            Problem::TooYoung { birth: "1990-01-01".into() },
            Problem::Phone,
            Problem::NotYesNo,
            Problem::NotAChoice { allowed: "是、否".into() },
            Problem::NotAnAmount,
            Problem::IdAsNumber,
            Problem::DuplicateCitizenId { line: 3 },
            Problem::DuplicateId { line: 3 },
            Problem::UnknownVisitor,
            Problem::UnknownId,
            Problem::CitizenIdTaken { elder_id: 1 },
            Problem::CertificateWithoutDisability,
            Problem::Certificate(CertificateError::Shape),
            Problem::Certificate(CertificateError::NotTheElders),
            Problem::Certificate(CertificateError::BadCitizenId(CitizenIdError::Characters)),
            Problem::Certificate(CertificateError::NotSevere(3)),
            Problem::NoCategory,
            Problem::LeftBehindSince,
            Problem::NotADate,
            Problem::DateInFuture,
            Problem::ExitIncomplete,
            Problem::LivesAloneWithHousehold { others: 2 },
            Problem::NewElderLeft,
            Problem::ConsentWithoutContact,
            Problem::ExitChanged { on: "2026-05-14".into() },
            Problem::MissingColumn,
            Problem::NoHeader,
            Problem::NoRows,
            Problem::TooLarge(sheet::Limit::Bytes(20)),
            Problem::TooLarge(sheet::Limit::UnpackedBytes(200)),
            Problem::TooLarge(sheet::Limit::Rows(50_000)),
            Problem::TooLarge(sheet::Limit::Columns(256)),
            Problem::Unreadable("not a spreadsheet".into()),
        ]
    }

    /// Its words in English with `{name}` placeholders (the command line's
    /// language; the console's words are in its translation files).
    pub fn english_template(&self) -> &'static str {
        match self {
            Problem::Required => "is required",
            Problem::TooLong(_) => "is longer than {max} characters",
            Problem::CitizenId(CitizenIdError::Length(_)) => "has {n} characters; it needs 18",
            Problem::CitizenId(CitizenIdError::Characters) => "must be 17 digits followed by a digit or X",
            Problem::CitizenId(CitizenIdError::BirthDate(_)) => "has no real birth date in characters 7 to 14 ({date})",
            Problem::CitizenId(CitizenIdError::CheckDigit { .. }) => {
                "ends in {found}, but its check digit is {expected}"
            }
            Problem::TooYoung { .. } => "gives a birth date of {birth}: the elder must be 60 or older (annex 2)",
            Problem::Phone => {
                "is not a phone number: a mobile is 1, then 3 to 9, then 9 more digits; a landline an area code and 7 or 8 digits"
            }
            Problem::NotYesNo => "must be 是 or 否",
            Problem::NotAChoice { .. } => "must be one of {allowed}",
            Problem::NotAnAmount => "is not an amount in yuan",
            Problem::IdAsNumber => {
                "is stored as a number, which Excel rounds to 15 digits: format the column as text and type the ID again"
            }
            Problem::DuplicateCitizenId { .. } => "is the same as on line {line}",
            Problem::DuplicateId { .. } => "is the same elder number as on line {line}: each elder once",
            Problem::UnknownVisitor => "is not a visitor's user name",
            Problem::CitizenIdTaken { .. } => "is already registered for the elder numbered {elder_id}",
            Problem::UnknownId => "is not the number of an elder in Anxin: leave it empty for a new elder",
            Problem::CertificateWithoutDisability => "is given, but 是否残疾 says 否",
            Problem::Certificate(CertificateError::Shape) => {
                "is not a second-generation certificate number: the citizen ID, the category digit (1 to 7), the grade digit (1 to 4)"
            }
            Problem::Certificate(CertificateError::NotTheElders) => "does not carry the elder's citizen ID",
            Problem::Certificate(CertificateError::BadCitizenId(_)) => "carries a citizen ID that is not valid",
            Problem::Certificate(CertificateError::NotSevere(_)) => {
                "says 是, but the disability certificate is grade {grade}: 重残 is grade 1 or 2 (annex 2)"
            }
            Problem::NoCategory => "every category says 否: an elder of the programme is at least one (annex 2)",
            Problem::LeftBehindSince => "is required for a 留守 elder (the half-year re-check counts from it)",
            Problem::NotADate => "is not a date: use YYYY-MM-DD",
            Problem::DateInFuture => "is in the future",
            Problem::ExitIncomplete => "退出原因 and 退出日期 go together: give both or neither",
            Problem::LivesAloneWithHousehold { .. } => {
                "says 独居, yet the household lists {others} other people: check who lives in the home (imported)"
            }
            Problem::NewElderLeft => "is an exit for an elder not on record: register only elders in the programme",
            Problem::ConsentWithoutContact => "is a consent to be called, but 紧急联系人 or 紧急联系人电话 is empty",
            Problem::ExitChanged { .. } => {
                "differs from the exit on record ({on}): an import neither changes nor undoes an exit (re-entry is on the elder page)"
            }
            Problem::MissingColumn => "column is missing",
            Problem::NoHeader => "no header row: the first ten rows hold no 被探访人姓名 (or name) column",
            Problem::NoRows => "the file holds no elder",
            Problem::TooLarge(sheet::Limit::Bytes(_)) => "the file is larger than {mb} MB",
            Problem::TooLarge(sheet::Limit::UnpackedBytes(_)) => "the workbook unpacks to more than {mb} MB",
            Problem::TooLarge(sheet::Limit::Rows(_)) => "the sheet has more than {max} rows",
            Problem::TooLarge(sheet::Limit::Columns(_)) => "the sheet has more than {max} columns",
            Problem::Unreadable(_) => "the file cannot be read: {why}",
        }
    }

    /// The values of its placeholders.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            Problem::TooLong(max) => vec![("max", max.to_string())],
            Problem::CitizenId(CitizenIdError::Length(n)) => vec![("n", n.to_string())],
            Problem::CitizenId(CitizenIdError::BirthDate(date)) => vec![("date", date.clone())],
            Problem::CitizenId(CitizenIdError::CheckDigit { found, expected }) => {
                vec![("found", found.to_string()), ("expected", expected.to_string())]
            }
            Problem::TooYoung { birth } => vec![("birth", birth.clone())],
            Problem::NotAChoice { allowed } => vec![("allowed", allowed.clone())],
            Problem::DuplicateCitizenId { line } | Problem::DuplicateId { line } => vec![("line", line.to_string())],
            Problem::CitizenIdTaken { elder_id } => vec![("elder_id", elder_id.to_string())],
            Problem::Certificate(CertificateError::NotSevere(grade)) => vec![("grade", grade.to_string())],
            Problem::ExitChanged { on } => vec![("on", on.clone())],
            Problem::LivesAloneWithHousehold { others } => vec![("others", others.to_string())],
            Problem::TooLarge(sheet::Limit::Bytes(mb) | sheet::Limit::UnpackedBytes(mb)) => {
                vec![("mb", mb.to_string())]
            }
            Problem::TooLarge(sheet::Limit::Rows(max) | sheet::Limit::Columns(max)) => vec![("max", max.to_string())],
            Problem::Unreadable(why) => vec![("why", why.clone())],
            _ => Vec::new(),
        }
    }

    /// `template` (its words in some language) with the placeholders filled.
    pub fn fill(&self, template: &str) -> String {
        self.params()
            .iter()
            .fold(template.to_string(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
    }

    /// The problem in English.
    pub fn english(&self) -> String {
        self.fill(self.english_template())
    }

    /// Why a file could not be read at all.
    pub fn of_sheet(error: &sheet::SheetError) -> Problem {
        match error {
            sheet::SheetError::TooLarge(limit) => Problem::TooLarge(*limit),
            other => Problem::Unreadable(other.to_string()),
        }
    }
}

/// A problem at a line (as the spreadsheet numbers them) and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// 1-based; 0 for the file as a whole.
    pub line: usize,
    /// The column's header as written in the file.
    pub column: Option<String>,
    /// The cell's text.
    pub value: Option<String>,
    pub problem: Problem,
}

impl RowProblem {
    /// A problem with the file as a whole.
    pub fn file(problem: Problem) -> RowProblem {
        RowProblem { line: 0, column: None, value: None, problem }
    }
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}", self.line)?;
        }
        if let Some(column) = &self.column {
            write!(f, "{}{column}", if self.line > 0 { ", " } else { "" })?;
        }
        if let Some(value) = self.value.as_deref().filter(|v| !v.is_empty()) {
            write!(f, " {value:?}")?;
        }
        if self.line > 0 || self.column.is_some() {
            write!(f, ": ")?;
        }
        write!(f, "{}", self.problem.english())
    }
}

/// A ledger file read and checked: every row valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// Each row with its line in the file.
    pub rows: Vec<(usize, LedgerRow)>,
    /// Headers that are not ledger columns (e.g. 序号), left alone.
    pub ignored_columns: Vec<String>,
    /// What looks wrong but is no reason to refuse the row (a 独居 elder with
    /// household members besides themself): shown, imported.
    pub warnings: Vec<RowProblem>,
}

/// Reads the rows of a sheet (as [`sheet::read`] gives them) into a ledger,
/// judging age on `today` and visitor names against `visitors`. Either every
/// row is valid, or every problem found is returned. Every field comes from
/// the file; for an import over what is on record, see [`read_over`].
pub fn read(
    rows: &[Vec<Cell>],
    today: chrono::NaiveDate,
    visitors: &HashSet<String>,
) -> Result<Ledger, Vec<RowProblem>> {
    read_over(rows, today, visitors, &[])
}

/// [`read`] for an import over `on_record` (the ledger as stored): a row
/// that matches an elder on record (by 编号, else by citizen ID) takes each
/// column the file does not carry from the record, so a file of part 1's
/// columns changes part 1 and leaves the rest — assignments included — as
/// they are. A column the file carries, even empty, is the file's.
pub fn read_over(
    rows: &[Vec<Cell>],
    today: chrono::NaiveDate,
    visitors: &HashSet<String>,
    on_record: &[LedgerRow],
) -> Result<Ledger, Vec<RowProblem>> {
    let by_name: HashMap<String, Column> = Column::all()
        .into_iter()
        .flat_map(|column| [(normalise_header(&column.header()), column), (normalise_header(&column.key()), column)])
        .collect();
    let name_headers = [normalise_header(&Column::Name.header()), normalise_header(&Column::Name.key())];
    let header_index = rows
        .iter()
        .take(10)
        .position(|row| row.iter().any(|cell| name_headers.contains(&normalise_header(&cell.text()))))
        .ok_or_else(|| vec![RowProblem::file(Problem::NoHeader)])?;
    let mut columns: HashMap<Column, (usize, String)> = HashMap::new();
    let mut ignored_columns = Vec::new();
    for (index, cell) in rows[header_index].iter().enumerate() {
        let header = cell.text().trim().to_string();
        match by_name.get(&normalise_header(&header)) {
            Some(column) => {
                columns.entry(*column).or_insert((index, header));
            }
            None if !header.is_empty() => ignored_columns.push(header),
            None => {}
        }
    }
    let missing: Vec<RowProblem> = Column::all()
        .into_iter()
        .filter(|column| column.required() && !columns.contains_key(column))
        .map(|column| RowProblem {
            line: header_index + 1,
            column: Some(column.header()),
            value: None,
            problem: Problem::MissingColumn,
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }

    // The columns the file lacks are read, for a row on record, from the
    // record's own cells placed after the widest row.
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let absent: Vec<(usize, Column)> =
        Column::all().into_iter().enumerate().filter(|(_, column)| !columns.contains_key(column)).collect();
    let mut with_record = columns.clone();
    for (k, (_, column)) in absent.iter().enumerate() {
        with_record.insert(*column, (width + k, column.header()));
    }
    let by_id: HashMap<i64, &LedgerRow> = on_record.iter().filter_map(|row| Some((row.id?, row))).collect();
    let by_citizen_id: HashMap<String, &LedgerRow> =
        on_record.iter().filter_map(|row| Some((row.elder.citizen_id.as_ref()?.as_str().to_string(), row))).collect();
    let cell_of = |row: &[Cell], column: Column| {
        columns.get(&column).and_then(|(index, _)| row.get(*index)).map(|cell| cell.text().trim().to_uppercase())
    };

    let mut problems = Vec::new();
    let mut ledger = Vec::new();
    let mut seen: HashMap<CitizenId, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate().skip(header_index + 1) {
        if row.iter().all(|cell| cell.text().trim().is_empty()) {
            continue;
        }
        let line = index + 1;
        let record = if absent.is_empty() {
            None
        } else {
            cell_of(row, Column::Id)
                .filter(|id| !id.is_empty())
                .and_then(|id| id.parse::<i64>().ok())
                .and_then(|id| by_id.get(&id))
                .or_else(|| cell_of(row, Column::CitizenId).and_then(|id| by_citizen_id.get(&id)))
                .copied()
        };
        let merged: Vec<Cell>;
        let (row, columns) = match record {
            Some(record) => {
                let recorded = cells(record);
                let mut cells_of_row = row.clone();
                cells_of_row.resize(width, Cell::Empty);
                cells_of_row.extend(absent.iter().map(|(position, _)| Cell::Text(recorded[*position].clone())));
                merged = cells_of_row;
                (&merged[..], &with_record)
            }
            None => (&row[..], &columns),
        };
        let mut reader = RowReader { row, line, columns, problems: Vec::new() };
        let parsed = reader.ledger_row(today, visitors);
        if record.is_some() {
            // What the record holds in the columns the file lacks is written
            // back as it is: not the file's to answer for.
            reader.problems.retain(|problem| {
                !problem
                    .column
                    .as_ref()
                    .is_some_and(|header| absent.iter().any(|(_, column)| column.header() == *header))
            });
        }
        if let Some(id) = parsed.elder.citizen_id.as_ref() {
            if let Some(first) = seen.get(id) {
                reader.problem(Column::CitizenId, Problem::DuplicateCitizenId { line: *first });
            } else {
                seen.insert(id.clone(), line);
            }
        }
        if reader.problems.is_empty() {
            ledger.push((line, parsed));
        } else {
            problems.append(&mut reader.problems);
        }
    }
    if problems.is_empty() && ledger.is_empty() {
        problems.push(RowProblem::file(Problem::NoRows));
    }
    let warnings = ledger.iter().filter_map(|(line, row)| lives_alone_with_others(*line, row)).collect();
    if problems.is_empty() { Ok(Ledger { rows: ledger, ignored_columns, warnings }) } else { Err(problems) }
}

/// 独居 against the household rows: a warning when someone other than the
/// elder is listed (the household may be registered together while the
/// elder lives alone, so it is not a refusal).
fn lives_alone_with_others(line: usize, row: &LedgerRow) -> Option<RowProblem> {
    if !Category::parse_list(&row.elder.categories).contains(&Category::LivingAlone) {
        return None;
    }
    let others = row
        .details
        .members
        .iter()
        .filter(|m| m.name != row.elder.name && !matches!(m.relation.as_deref(), Some("本人" | "本人自己" | "self")))
        .count();
    (others > 0).then(|| RowProblem {
        line,
        column: Some(Column::Category(Category::LivingAlone).header()),
        value: Some("是".into()),
        problem: Problem::LivesAloneWithHousehold { others },
    })
}

/// Reads one row's cells, collecting every problem rather than stopping at
/// the first.
struct RowReader<'a> {
    row: &'a [Cell],
    line: usize,
    columns: &'a HashMap<Column, (usize, String)>,
    problems: Vec<RowProblem>,
}

impl RowReader<'_> {
    fn cell(&self, column: Column) -> Option<&Cell> {
        self.columns.get(&column).and_then(|(index, _)| self.row.get(*index))
    }

    /// The cell's text, trimmed; `None` when empty or the column is absent.
    fn text(&self, column: Column) -> Option<String> {
        self.cell(column).map(Cell::text).map(|text| text.trim().to_string()).filter(|text| !text.is_empty())
    }

    fn problem(&mut self, column: Column, problem: Problem) {
        let header = self.columns.get(&column).map_or_else(|| column.header(), |(_, header)| header.clone());
        let value = self.cell(column).map(Cell::text);
        self.problems.push(RowProblem { line: self.line, column: Some(header), value, problem });
    }

    fn required(&mut self, column: Column, max: usize) -> String {
        match self.text(column) {
            None => {
                self.problem(column, Problem::Required);
                String::new()
            }
            Some(text) => self.limit(column, text, max),
        }
    }

    fn optional(&mut self, column: Column, max: usize) -> Option<String> {
        self.text(column).map(|text| self.limit(column, text, max))
    }

    fn limit(&mut self, column: Column, text: String, max: usize) -> String {
        if text.chars().count() > max {
            self.problem(column, Problem::TooLong(max));
        }
        text
    }

    fn yes_no(&mut self, column: Column) -> Option<bool> {
        let text = self.text(column)?;
        match text.as_str() {
            "是" | "√" | "✓" | "Y" | "y" | "yes" | "Yes" | "true" | "1" => Some(true),
            "否" | "×" | "N" | "n" | "no" | "No" | "false" | "0" => Some(false),
            _ => {
                self.problem(column, Problem::NotYesNo);
                None
            }
        }
    }

    fn phone(&mut self, column: Column) -> Option<String> {
        let text = self.text(column)?;
        match registry::PhoneNumber::parse("phone", &text) {
            Ok(phone) => Some(phone.as_str().to_string()),
            Err(_) => {
                self.problem(column, Problem::Phone);
                None
            }
        }
    }

    /// A citizen ID; `elder` applies the age rule.
    fn citizen_id(&mut self, column: Column, today: chrono::NaiveDate, elder: bool) -> Option<CitizenId> {
        if matches!(self.cell(column), Some(Cell::Number(_))) {
            self.problem(column, Problem::IdAsNumber);
            return None;
        }
        let text = self.text(column)?;
        if elder {
            return match registry::elder_citizen_id(Some(&text), today) {
                Ok(id) => id,
                Err(RegistryError::BadCitizenId(error)) => {
                    self.problem(column, Problem::CitizenId(error));
                    None
                }
                Err(RegistryError::TooYoung(birth)) => {
                    self.problem(column, Problem::TooYoung { birth });
                    None
                }
                Err(other) => {
                    self.problem(column, Problem::Unreadable(other.to_string()));
                    None
                }
            };
        }
        match CitizenId::parse(&text) {
            Ok(id) => Some(id),
            Err(error) => {
                self.problem(column, Problem::CitizenId(error));
                None
            }
        }
    }

    fn amount_fen(&mut self, column: Column) -> Option<i64> {
        let text = self.text(column)?;
        let parsed = parse_yuan(&text);
        if parsed.is_none() {
            self.problem(column, Problem::NotAnAmount);
        }
        parsed
    }

    fn member(&mut self, member: usize, today: chrono::NaiveDate) -> Option<HouseholdMember> {
        let column = |field| Column::Member(member, field);
        let any = MemberField::ALL.iter().any(|field| self.text(column(*field)).is_some());
        if !any {
            return None;
        }
        let name = self.required(column(MemberField::Name), 64);
        let sex = self.text(column(MemberField::Sex)).and_then(|text| {
            let sex = Sex::parse(&text);
            if sex.is_none() {
                self.problem(column(MemberField::Sex), Problem::NotAChoice { allowed: Sex::labels() });
            }
            sex
        });
        let support = match self.text(column(MemberField::Support)) {
            None => Support::None,
            Some(text) => Support::parse(&text).unwrap_or_else(|| {
                self.problem(column(MemberField::Support), Problem::NotAChoice { allowed: Support::labels() });
                Support::None
            }),
        };
        Some(HouseholdMember {
            name,
            sex,
            citizen_id: self.citizen_id(column(MemberField::CitizenId), today, false).map(|id| id.as_str().to_string()),
            relation: self.optional(column(MemberField::Relation), 32),
            health: self.optional(column(MemberField::Health), 100),
            support,
        })
    }

    /// A date cell: text as `YYYY-MM-DD` (or with / or .), or an Excel date.
    fn date(&mut self, column: Column) -> Option<chrono::NaiveDate> {
        if let Some(Cell::Number(serial)) = self.cell(column) {
            // Excel counts days from 1899-12-30; a serial is a whole number of days.
            let date =
                format!("{}", serial.trunc()).parse::<u64>().ok().filter(|days| (1..100_000).contains(days)).and_then(
                    |days| chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(days)),
                );
            if date.is_none() {
                self.problem(column, Problem::NotADate);
            }
            return date;
        }
        let text = self.text(column)?.replace(['/', '.'], "-");
        let date = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok();
        if date.is_none() {
            self.problem(column, Problem::NotADate);
        }
        date
    }

    /// 退出原因 and 退出日期, both or neither; the date not in the future.
    fn exit(&mut self, today: chrono::NaiveDate) -> Option<crate::enrolment::Exit> {
        use crate::enrolment::{Exit, ExitReason};
        let reason = self.text(Column::ExitReason).and_then(|text| {
            let reason = ExitReason::parse(&text);
            if reason.is_none() {
                self.problem(Column::ExitReason, Problem::NotAChoice { allowed: ExitReason::labels() });
            }
            reason
        });
        let on = self.date(Column::ExitDate);
        let typed = |column| self.cell(column).is_some_and(|cell| !cell.text().trim().is_empty());
        match (reason, on) {
            (Some(_), Some(on)) if on > today => {
                self.problem(Column::ExitDate, Problem::DateInFuture);
                None
            }
            (Some(reason), Some(on)) => Some(Exit { reason, on }),
            _ if typed(Column::ExitReason) != typed(Column::ExitDate) => {
                let column = if typed(Column::ExitReason) { Column::ExitDate } else { Column::ExitReason };
                self.problem(column, Problem::ExitIncomplete);
                None
            }
            _ => None,
        }
    }

    fn ledger_row(&mut self, today: chrono::NaiveDate, visitors: &HashSet<String>) -> LedgerRow {
        let mut categories: Vec<Category> = Category::ALL
            .into_iter()
            .filter(|category| self.yes_no(Column::Category(*category)) == Some(true))
            .collect();
        let id = self.text(Column::Id).and_then(|text| {
            let id = text.parse::<i64>().ok().filter(|id| *id > 0);
            if id.is_none() {
                self.problem(Column::Id, Problem::UnknownId);
            }
            id
        });
        let citizen_id = match self.text(Column::CitizenId) {
            None if id.is_some() => None,
            None => {
                self.problem(Column::CitizenId, Problem::Required);
                None
            }
            Some(_) => self.citizen_id(Column::CitizenId, today, true),
        };
        let mut disability_cert = self.optional(Column::DisabilityCert, 40);
        let certificate = disability_cert.as_deref().and_then(|text| {
            match registry::DisabilityCertificate::parse(text, citizen_id.as_ref()) {
                Ok(certificate) => Some(certificate),
                Err(error) => {
                    self.problem(Column::DisabilityCert, Problem::Certificate(error));
                    None
                }
            }
        });
        if let Some(certificate) = &certificate {
            disability_cert = Some(certificate.number.clone());
        }
        match registry::annex_two(categories.clone(), certificate.as_ref()) {
            Ok(checked) => categories = checked,
            Err(RegistryError::BadCertificate(error)) => {
                self.problem(Column::Category(Category::SeverelyDisabled), Problem::Certificate(error));
            }
            Err(_) => self.problem(Column::Category(Category::LivingAlone), Problem::NoCategory),
        }
        let since = self.date(Column::LeftBehindSince);
        let left_behind_since = match registry::left_behind_since(&categories, since, today) {
            Ok(since) => since,
            Err(RegistryError::LeftBehindInFuture(_)) => {
                self.problem(Column::LeftBehindSince, Problem::DateInFuture);
                None
            }
            Err(_) => {
                // An unreadable date has its own problem already.
                if self.cell(Column::LeftBehindSince).is_none_or(|cell| cell.text().trim().is_empty()) {
                    self.problem(Column::LeftBehindSince, Problem::LeftBehindSince);
                }
                None
            }
        };
        let disabled = match self.yes_no(Column::Disabled) {
            Some(false) if disability_cert.is_some() => {
                self.problem(Column::DisabilityCert, Problem::CertificateWithoutDisability);
                false
            }
            Some(answer) => answer,
            None => disability_cert.is_some(),
        };
        let elder = NewElder {
            county: self.required(Column::County, 64),
            township: self.required(Column::Township, 64),
            village: self.required(Column::Village, 64),
            address: self.required(Column::Address, 200),
            lives_at_registered: self.yes_no(Column::LivesAtRegistered).unwrap_or(true),
            name: self.required(Column::Name, 64),
            citizen_id,
            phone: self.phone(Column::Phone),
            emergency_contact: self.optional(Column::EmergencyContact, 64),
            emergency_phone: self.phone(Column::EmergencyPhone),
            disability_cert,
            categories: Category::join(&categories),
            inactivity_hours: None,
            left_behind_since,
        };
        let members = (0..MEMBERS).filter_map(|member| self.member(member, today)).collect();
        let living = LivingConditions {
            water_safe: self.yes_no(Column::WaterSafe),
            power_safe: self.yes_no(Column::PowerSafe),
            housing_safe: self.yes_no(Column::HousingSafe),
            monthly_income_fen: self.amount_fen(Column::MonthlyIncome),
            benefits: self.optional(Column::Benefits, 500),
        };
        let mut orgs = Vec::new();
        if let Some(text) = self.text(Column::HelpOrgs) {
            for word in split_list(&text, true) {
                match HelpOrg::parse(&word) {
                    Some(org) if !orgs.contains(&org) => orgs.push(org),
                    Some(_) => {}
                    None => self.problem(Column::HelpOrgs, Problem::NotAChoice { allowed: HelpOrg::labels() }),
                }
            }
            orgs.sort_by_key(|org| HelpOrg::ALL.iter().position(|o| o == org));
        }
        let help = HelpReceived {
            orgs,
            person: self.optional(Column::HelpPerson, 64),
            measures: self.optional(Column::HelpMeasures, 500),
        };
        let mut names: Vec<String> =
            self.text(Column::Visitors).map(|text| split_list(&text, false)).unwrap_or_default();
        names.sort();
        names.dedup();
        if names.iter().any(|name| !visitors.contains(name)) {
            self.problem(Column::Visitors, Problem::UnknownVisitor);
        }
        let exit = self.exit(today);
        let emergency_consent = self.optional(Column::EmergencyConsent, 100);
        if emergency_consent.is_some() && (elder.emergency_contact.is_none() || elder.emergency_phone.is_none()) {
            self.problem(Column::EmergencyConsent, Problem::ConsentWithoutContact);
        }
        LedgerRow {
            id,
            elder,
            details: ElderDetails { disabled, members, living, help },
            visitors: names,
            exit,
            emergency_consent,
        }
    }
}

/// `1,200`, `1200.5`, `1200元` → fen.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let cleaned: String = text.trim().trim_end_matches('元').chars().filter(|c| *c != ',' && *c != '，').collect();
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || whole.len() > 12 {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 2 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let fen: i64 = format!("{fraction:0<2}").parse().ok()?;
    Some(whole.parse::<i64>().ok()? * 100 + fen)
}

/// fen → `1200` or `1200.5`.
pub fn format_yuan(fen: i64) -> String {
    let (yuan, rest) = (fen / 100, fen % 100);
    match rest {
        0 => yuan.to_string(),
        r if r % 10 == 0 => format!("{yuan}.{}", r / 10),
        r => format!("{yuan}.{r:02}"),
    }
}

/// A list in one cell. Help organisations' own labels hold `、`, so their
/// lists are split on semicolons and commas only; visitor names on `、` too.
fn split_list(text: &str, labels_hold_enumeration_comma: bool) -> Vec<String> {
    text.split(|c: char| matches!(c, ';' | '；' | ',' | '，' | '\n') || (!labels_hold_enumeration_comma && c == '、'))
        .map(str::trim)
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "是".into(),
        Some(false) => "否".into(),
        None => String::new(),
    }
}

/// The cells of a row, in [`Column::all`] order.
pub fn cells(row: &LedgerRow) -> Vec<String> {
    let elder = &row.elder;
    let details = &row.details;
    let categories = Category::parse_list(&elder.categories);
    Column::all()
        .into_iter()
        .map(|column| match column {
            Column::Id => row.id.map(|id| id.to_string()).unwrap_or_default(),
            Column::County => elder.county.clone(),
            Column::Township => elder.township.clone(),
            Column::Village => elder.village.clone(),
            Column::Address => elder.address.clone(),
            Column::LivesAtRegistered => yes_no(Some(elder.lives_at_registered)),
            Column::Name => elder.name.clone(),
            Column::CitizenId => elder.citizen_id.as_ref().map(|id| id.as_str().to_string()).unwrap_or_default(),
            Column::Phone => elder.phone.clone().unwrap_or_default(),
            Column::EmergencyContact => elder.emergency_contact.clone().unwrap_or_default(),
            Column::EmergencyPhone => elder.emergency_phone.clone().unwrap_or_default(),
            Column::Disabled => yes_no(Some(details.disabled)),
            Column::DisabilityCert => elder.disability_cert.clone().unwrap_or_default(),
            Column::Category(category) => yes_no(Some(categories.contains(&category))),
            Column::LeftBehindSince => elder.left_behind_since.map(|d| d.to_string()).unwrap_or_default(),
            Column::Member(member, field) => details.members.get(member).map_or_else(String::new, |m| match field {
                MemberField::Name => m.name.clone(),
                MemberField::Sex => m.sex.map(|s| s.label().to_string()).unwrap_or_default(),
                MemberField::CitizenId => m.citizen_id.clone().unwrap_or_default(),
                MemberField::Relation => m.relation.clone().unwrap_or_default(),
                MemberField::Health => m.health.clone().unwrap_or_default(),
                MemberField::Support => m.support.label().to_string(),
            }),
            Column::WaterSafe => yes_no(details.living.water_safe),
            Column::PowerSafe => yes_no(details.living.power_safe),
            Column::HousingSafe => yes_no(details.living.housing_safe),
            Column::MonthlyIncome => details.living.monthly_income_fen.map(format_yuan).unwrap_or_default(),
            Column::Benefits => details.living.benefits.clone().unwrap_or_default(),
            Column::HelpOrgs => details.help.orgs.iter().map(|org| org.label()).collect::<Vec<_>>().join("；"),
            Column::HelpPerson => details.help.person.clone().unwrap_or_default(),
            Column::HelpMeasures => details.help.measures.clone().unwrap_or_default(),
            Column::Visitors => row.visitors.join("、"),
            Column::ExitReason => row.exit.map(|exit| exit.reason.label().to_string()).unwrap_or_default(),
            Column::ExitDate => row.exit.map(|exit| exit.on.to_string()).unwrap_or_default(),
            Column::EmergencyConsent => row.emergency_consent.clone().unwrap_or_default(),
        })
        .collect()
}

/// The header row, in [`Column::all`] order.
/// The columns whose cells differ between a row on record and the same
/// elder's row after an import (the 编号 aside).
pub fn changed_columns(before: &LedgerRow, after: &LedgerRow) -> Vec<Column> {
    let (before, after) = (cells(before), cells(after));
    Column::all()
        .into_iter()
        .zip(before.iter().zip(&after))
        .filter(|(column, (was, is))| *column != Column::Id && was != is)
        .map(|(column, _)| column)
        .collect()
}

pub fn headers() -> Vec<String> {
    Column::all().into_iter().map(Column::header).collect()
}

/// A whole ledger as sheet rows: the header row, then one row per elder.
pub fn sheet_rows(ledger: &[LedgerRow]) -> Vec<Vec<String>> {
    std::iter::once(headers()).chain(ledger.iter().map(cells)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn text_rows(rows: &[&[&str]]) -> Vec<Vec<Cell>> {
        rows.iter().map(|row| row.iter().map(|text| Cell::Text(text.to_string())).collect()).collect()
    }

    #[test]
    fn every_header_is_distinct_and_read_back_as_its_column() {
        let headers = headers();
        let unique: HashSet<&String> = headers.iter().collect();
        assert_eq!(unique.len(), headers.len());
        let keys: HashSet<String> = Column::all().into_iter().map(Column::key).collect();
        assert_eq!(keys.len(), headers.len());
    }

    #[test]
    fn a_row_round_trips_through_its_cells() {
        let visitors: HashSet<String> = ["li".to_string(), "zhao".to_string()].into();
        let header: Vec<&str> = vec![
            "序号",
            "县（市、区）",
            "乡镇(街道)",
            "村(居)",
            "家庭住址",
            "被探访人姓名",
            "公民身份号码",
            "是否独居",
        ];
        let mut rows = text_rows(&[&["振兴区特殊困难老年人台账"], &header]);
        rows.push(
            ["1", "振兴区", "站前街道", "锦山社区", "锦山大街 12 号", "王秀英", "11010519491231002X", "是"]
                .iter()
                .map(|t| Cell::Text(t.to_string()))
                .collect(),
        );
        let ledger = read(&rows, day("2026-11-29"), &visitors).unwrap();
        assert_eq!(ledger.ignored_columns, vec!["序号".to_string()]);
        assert_eq!(ledger.rows[0].0, 3);
        let row = &ledger.rows[0].1;
        assert_eq!(row.elder.citizen_id.as_ref().map(CitizenId::as_str), Some("11010519491231002X"));

        let full = LedgerRow {
            id: Some(7),
            elder: NewElder {
                categories: "living_alone,left_behind,dependent,severely_disabled".into(),
                left_behind_since: Some(day("2026-03-01")),
                phone: Some("13904150001".into()),
                emergency_contact: Some("王丽".into()),
                emergency_phone: Some("13904150011".into()),
                disability_cert: Some("11010519491231002X42".into()),
                ..row.elder.clone()
            },
            details: ElderDetails {
                disabled: true,
                members: vec![HouseholdMember {
                    name: "王秀英".into(),
                    sex: Some(Sex::Female),
                    citizen_id: Some("11010519491231002X".into()),
                    relation: Some("本人".into()),
                    health: Some("高血压".into()),
                    support: Support::Destitute,
                }],
                living: LivingConditions {
                    water_safe: Some(true),
                    power_safe: Some(false),
                    housing_safe: None,
                    monthly_income_fen: Some(120_050),
                    benefits: Some("养老金 800 元".into()),
                },
                help: HelpReceived {
                    orgs: vec![HelpOrg::PartyGovernment, HelpOrg::Community],
                    person: Some("刘主任".into()),
                    measures: Some("每周送餐".into()),
                },
            },
            visitors: vec!["li".into(), "zhao".into()],
            exit: Some(crate::enrolment::Exit { reason: crate::enrolment::ExitReason::Died, on: day("2026-11-20") }),
            emergency_consent: Some("电话确认".into()),
        };
        let mut sheet = vec![headers().into_iter().map(Cell::Text).collect::<Vec<_>>()];
        sheet.push(cells(&full).into_iter().map(Cell::Text).collect());
        let back = read(&sheet, day("2026-11-29"), &visitors).unwrap();
        assert_eq!(back.rows[0].1, full);
    }

    #[test]
    fn every_problem_of_every_row_is_reported_with_line_and_column() {
        let visitors = HashSet::new();
        let rows = text_rows(&[
            &["county", "township", "village", "address", "name", "citizen_id", "phone", "visitors", "是否独居"],
            &["振兴区", "站前街道", "锦山社区", "1 号", "甲", "110105194912310021", "1390415000", "", "是"],
            &["振兴区", "", "锦山社区", "2 号", "乙", "11010519491231002X", "", "nobody", "也许"],
            &["振兴区", "站前街道", "锦山社区", "3 号", "丙", "11010519491231002X", "", "", "否"],
        ]);
        let problems = read(&rows, day("2026-11-29"), &visitors).unwrap_err();
        let described: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            described,
            vec![
                "line 2, citizen_id \"110105194912310021\": ends in 1, but its check digit is X",
                "line 2, phone \"1390415000\": is not a phone number: a mobile is 1, then 3 to 9, then 9 more digits; a landline an area code and 7 or 8 digits",
                "line 3, 是否独居 \"也许\": must be 是 or 否",
                "line 3, 是否独居 \"也许\": every category says 否: an elder of the programme is at least one (annex 2)",
                "line 3, township: is required",
                "line 3, visitors \"nobody\": is not a visitor's user name",
                "line 4, 是否独居 \"否\": every category says 否: an elder of the programme is at least one (annex 2)",
                "line 4, citizen_id \"11010519491231002X\": is the same as on line 3",
            ]
        );
        assert_eq!(problems[0].problem.key(), "citizen_id_check_digit");
        assert_eq!(problems[0].problem.params(), vec![("found", "1".to_string()), ("expected", "X".to_string())]);
    }

    #[test]
    fn a_problem_with_the_citizen_id_reads_as_the_id_s_own_error() {
        let mut keys = std::collections::BTreeSet::new();
        for problem in Problem::examples() {
            assert!(keys.insert(problem.key()), "{} twice", problem.key());
            assert!(!problem.english().contains('{'), "{}: {}", problem.key(), problem.english());
            if let Problem::CitizenId(error) = &problem {
                assert_eq!(problem.english(), error.to_string());
            }
            if let Problem::TooLarge(limit) = &problem {
                assert_eq!(problem.english(), sheet::SheetError::TooLarge(*limit).to_string());
            }
        }
    }

    #[test]
    fn a_lone_elder_with_household_members_is_imported_with_a_warning() {
        let header: &[&str] = &[
            "县(市、区)",
            "乡镇(街道)",
            "村(居)",
            "家庭住址",
            "被探访人姓名",
            "公民身份号码",
            "是否独居",
            "户主姓名",
            "户主与被探访人关系",
        ];
        let rows = text_rows(&[
            header,
            &["振兴区", "站前街道", "锦山社区", "1 号", "王秀英", "11010519491231002X", "是", "王秀英", "本人"],
            &["振兴区", "站前街道", "锦山社区", "2 号", "李桂兰", "210603195001014564", "是", "李建国", "儿子"],
        ]);
        let ledger = read(&rows, day("2026-11-29"), &HashSet::new()).unwrap();
        assert_eq!(ledger.rows.len(), 2, "both imported");
        let warnings: Vec<String> = ledger.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            vec![
                "line 3, 是否独居 \"是\": says 独居, yet the household lists 1 other people: check who lives in the home (imported)"
            ]
        );
    }

    #[test]
    fn an_id_excel_turned_into_a_number_is_refused_with_the_reason() {
        let mut rows = text_rows(&[&[
            "县(市、区)",
            "乡镇(街道)",
            "村(居)",
            "家庭住址",
            "被探访人姓名",
            "公民身份号码",
            "是否空巢",
        ]]);
        rows.push(vec![
            Cell::Text("振兴区".into()),
            Cell::Text("站前街道".into()),
            Cell::Text("锦山社区".into()),
            Cell::Text("1 号".into()),
            Cell::Text("甲".into()),
            Cell::Number(1.101_051_949_123_1e17),
            Cell::Text("是".into()),
        ]);
        let problems = read(&rows, day("2026-11-29"), &HashSet::new()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].problem, Problem::IdAsNumber);
    }

    #[test]
    fn missing_columns_and_headers_are_named() {
        let rows = text_rows(&[&["被探访人姓名", "家庭住址"], &["甲", "1 号"]]);
        let problems = read(&rows, day("2026-11-29"), &HashSet::new()).unwrap_err();
        let missing: Vec<_> = problems.iter().map(|p| p.column.clone().unwrap()).collect();
        assert_eq!(missing, vec!["县(市、区)", "乡镇(街道)", "村(居)", "公民身份号码"]);
        let none = read(&text_rows(&[&["a"], &["b"]]), day("2026-11-29"), &HashSet::new()).unwrap_err();
        assert_eq!(none[0].problem, Problem::NoHeader);
    }

    #[test]
    fn amounts_are_kept_to_the_fen() {
        assert_eq!(parse_yuan("1,200"), Some(120_000));
        assert_eq!(parse_yuan("1200.5元"), Some(120_050));
        assert_eq!(parse_yuan("0.05"), Some(5));
        assert_eq!(parse_yuan("1200.555"), None);
        assert_eq!(parse_yuan("about 100"), None);
        assert_eq!(format_yuan(120_050), "1200.5");
        assert_eq!(format_yuan(5), "0.05");
        assert_eq!(format_yuan(120_000), "1200");
    }
}
