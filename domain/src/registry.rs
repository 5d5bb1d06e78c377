//! Checking what staff type in about an elder, once, at the boundary.

use crate::alerts::Category;

/// Why an elder's registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error(
        "unknown category {0:?}: use living_alone, empty_nest, left_behind, dependent, severely_disabled or bereaved_family"
    )]
    BadCategory(String),
    #[error("the inactivity threshold must be 1 to 72 hours, not {0}")]
    BadThreshold(i64),
    #[error(
        "{field} {value:?} is not a phone number: a mobile is 1, then 3 to 9, then 9 more digits; a landline is an area code and 7 or 8 digits (or the 7 or 8 digits alone); +86 may lead"
    )]
    BadPhone { field: &'static str, value: String },
    #[error("citizen ID {0}")]
    BadCitizenId(CitizenIdError),
    #[error("the elder must be 60 or older (annex 2); the citizen ID gives a birth date of {0}")]
    TooYoung(String),
    #[error("disability certificate {0}")]
    BadCertificate(CertificateError),
    #[error(
        "no special-difficulty category: an elder of the programme is at least one of living_alone, empty_nest, left_behind, dependent, severely_disabled, bereaved_family (annex 2)"
    )]
    NoCategory,
    #[error("left_behind needs the date the children left (for the half-year re-check)")]
    LeftBehindSince,
    #[error("the date the children left, {0}, is in the future")]
    LeftBehindInFuture(chrono::NaiveDate),
}

/// Why a disability certificate number (残疾人证号, second generation) was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error(
        "is not a second-generation certificate number: the holder's 18-character citizen ID, then the category digit (1 to 7), then the grade digit (1 to 4)"
    )]
    Shape,
    #[error("does not carry the elder's citizen ID")]
    NotTheElders,
    #[error("carries a citizen ID that is not valid: {0}")]
    BadCitizenId(CitizenIdError),
    #[error("says grade {0}: 重残 (severely_disabled) is grade 1 or 2 (annex 2)")]
    NotSevere(u8),
}

/// A second-generation disability certificate (二代残疾人证): its number is
/// the holder's citizen ID, the category digit (1 视力, 2 听力, 3 言语, 4 肢体,
/// 5 智力, 6 精神, 7 多重) and the grade digit (一级 to 四级).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabilityCertificate {
    pub number: String,
    pub holder: CitizenId,
    pub category: u8,
    pub grade: u8,
}

impl DisabilityCertificate {
    /// Reads a certificate number; when the elder's citizen ID is known the
    /// certificate must carry it.
    pub fn parse(text: &str, elder: Option<&CitizenId>) -> Result<DisabilityCertificate, CertificateError> {
        let number = text.trim().to_ascii_uppercase();
        let chars: Vec<char> = number.chars().collect();
        if chars.len() != 20 || !chars[18..].iter().all(char::is_ascii_digit) {
            return Err(CertificateError::Shape);
        }
        let holder = CitizenId::parse(&number[..18]).map_err(CertificateError::BadCitizenId)?;
        if elder.is_some_and(|elder| elder != &holder) {
            return Err(CertificateError::NotTheElders);
        }
        let digit = |c: char| u8::try_from(c.to_digit(10).unwrap_or(0)).unwrap_or(0);
        let (category, grade) = (digit(chars[18]), digit(chars[19]));
        if !(1..=7).contains(&category) || !(1..=4).contains(&grade) {
            return Err(CertificateError::Shape);
        }
        Ok(DisabilityCertificate { number, holder, category, grade })
    }

    /// 重残: grade 1 or 2 (annex 2).
    pub fn is_severe(&self) -> bool {
        self.grade <= 2
    }
}

/// Applies annex 2 to an elder's categories and certificate: 重残 follows
/// from a certificate of grade 1 or 2 (and is refused against grade 3 or
/// 4), and at least one category is required. Returns the categories with
/// 重残 added where the certificate says so.
pub fn annex_two(
    mut categories: Vec<Category>,
    certificate: Option<&DisabilityCertificate>,
) -> Result<Vec<Category>, RegistryError> {
    if let Some(certificate) = certificate {
        if certificate.is_severe() {
            if !categories.contains(&Category::SeverelyDisabled) {
                categories.push(Category::SeverelyDisabled);
            }
        } else if categories.contains(&Category::SeverelyDisabled) {
            return Err(RegistryError::BadCertificate(CertificateError::NotSevere(certificate.grade)));
        }
    }
    if categories.is_empty() {
        return Err(RegistryError::NoCategory);
    }
    categories.sort_by_key(|c| Category::ALL.iter().position(|a| a == c));
    Ok(categories)
}

/// Why a citizen ID number (公民身份号码, GB 11643) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CitizenIdError {
    #[error("has {0} characters; it needs 18")]
    Length(usize),
    #[error("must be 17 digits followed by a digit or X")]
    Characters,
    #[error("has no real birth date in characters 7 to 14 ({0})")]
    BirthDate(String),
    #[error("ends in {found}, but its check digit is {expected}")]
    CheckDigit { found: char, expected: char },
}

/// A citizen ID number whose check digit (GB 11643-1999, ISO 7064 MOD 11-2)
/// and birth date hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CitizenId {
    number: String,
    birth_date: chrono::NaiveDate,
}

/// The check digit of a citizen ID's first 17 digits (GB 11643-1999, ISO
/// 7064 MOD 11-2); a non-digit counts as 0.
pub fn check_digit(first17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17.chars().zip(WEIGHTS).map(|(c, w)| c.to_digit(10).unwrap_or(0) * w).sum();
    CHECK[(sum % 11) as usize]
}

impl CitizenId {
    pub fn parse(text: &str) -> Result<CitizenId, CitizenIdError> {
        let number = text.trim().to_ascii_uppercase();
        let chars: Vec<char> = number.chars().collect();
        if chars.len() != 18 {
            return Err(CitizenIdError::Length(chars.len()));
        }
        if !chars[..17].iter().all(char::is_ascii_digit) || !(chars[17].is_ascii_digit() || chars[17] == 'X') {
            return Err(CitizenIdError::Characters);
        }
        let birth = &number[6..14];
        let birth_date = chrono::NaiveDate::parse_from_str(birth, "%Y%m%d")
            .ok()
            .filter(|date| date.format("%Y").to_string().as_str() >= "1880")
            .ok_or_else(|| CitizenIdError::BirthDate(birth.to_string()))?;
        let expected = check_digit(&number[..17]);
        if chars[17] != expected {
            return Err(CitizenIdError::CheckDigit { found: chars[17], expected });
        }
        Ok(CitizenId { number, birth_date })
    }

    pub fn as_str(&self) -> &str {
        &self.number
    }

    pub fn birth_date(&self) -> chrono::NaiveDate {
        self.birth_date
    }

    /// Whole years of age on `day`.
    pub fn age_on(&self, day: chrono::NaiveDate) -> i32 {
        use chrono::Datelike;
        let mut age = day.year() - self.birth_date.year();
        if (day.month(), day.day()) < (self.birth_date.month(), self.birth_date.day()) {
            age -= 1;
        }
        age
    }
}

/// `2106**********123X`: the first four and last four characters of an
/// identifying number, the rest hidden — how ID and certificate numbers are
/// shown on screen until someone deliberately reveals one.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - 8;
    chars[..4].iter().chain(std::iter::repeat_n(&'*', hidden)).chain(&chars[chars.len() - 4..]).collect()
}

/// A Chinese phone number in one normal form: a mobile as its 11 digits
/// (`13904150001`), a landline as area code, dash and number
/// (`0415-2170478`) or the number alone (`2170478`). `+86`, spaces, dashes
/// and brackets are accepted on input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, RegistryError> {
        let bad = || RegistryError::BadPhone { field, value: text.to_string() };
        let trimmed = text.trim();
        let (international, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '（' | '）')).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if international || (digits.starts_with("86") && digits.len() >= 12) {
            digits = digits.strip_prefix("86").ok_or_else(bad)?.to_string();
            if !digits.starts_with('1') && !digits.starts_with('0') {
                // A landline dialled from abroad drops its trunk 0.
                digits.insert(0, '0');
            }
        }
        let local = |number: &str| (7..=8).contains(&number.len()) && !number.starts_with(['0', '1']);
        let bytes = digits.as_bytes();
        if digits.len() == 11 && bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1]) {
            return Ok(PhoneNumber(digits));
        }
        if digits.starts_with('0') {
            let code = if digits.starts_with("01") || digits.starts_with("02") { 3 } else { 4 };
            if digits.len() > code && local(&digits[code..]) {
                return Ok(PhoneNumber(format!("{}-{}", &digits[..code], &digits[code..])));
            }
            return Err(bad());
        }
        if local(&digits) {
            return Ok(PhoneNumber(digits));
        }
        Err(bad())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A mobile: the only kind that can receive an SMS.
    pub fn is_mobile(&self) -> bool {
        self.0.starts_with('1')
    }
}

pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<String, RegistryError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RegistryError::Missing(field));
    }
    if value.chars().count() > max {
        return Err(RegistryError::TooLong { field, max });
    }
    Ok(value.to_string())
}

pub(crate) fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, RegistryError> {
    value.filter(|v| !v.trim().is_empty()).map(|v| text(field, v, max)).transpose()
}

pub(crate) fn optional_phone(field: &'static str, value: Option<&str>) -> Result<Option<String>, RegistryError> {
    value.filter(|v| !v.trim().is_empty()).map(|v| PhoneNumber::parse(field, v).map(|p| p.0)).transpose()
}

fn categories(text: &str) -> Result<Vec<Category>, RegistryError> {
    let mut found = Vec::new();
    for word in text.split(',').map(str::trim).filter(|word| !word.is_empty()) {
        let category = Category::parse(word).ok_or_else(|| RegistryError::BadCategory(word.to_string()))?;
        if !found.contains(&category) {
            found.push(category);
        }
    }
    Ok(found)
}

/// The date a 留守 elder's children left: required with `left_behind`, not in
/// the future; dropped for anyone else.
pub fn left_behind_since(
    categories: &[Category],
    since: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
) -> Result<Option<chrono::NaiveDate>, RegistryError> {
    if !categories.contains(&Category::LeftBehind) {
        return Ok(None);
    }
    match since {
        None => Err(RegistryError::LeftBehindSince),
        Some(day) if day > today => Err(RegistryError::LeftBehindInFuture(day)),
        Some(day) => Ok(Some(day)),
    }
}

/// 留守 elders are looked at again every half year: whether the children are
/// still away (annex 2's "连续 6 个月以上"). Due once six months have passed
/// since the children left.
pub fn left_behind_recheck_due(since: chrono::NaiveDate, today: chrono::NaiveDate) -> bool {
    since.checked_add_months(chrono::Months::new(6)).is_some_and(|due| due <= today)
}

/// An elder's citizen ID, if given: valid, and 60 or older on `today`.
pub(crate) fn elder_citizen_id(
    text: Option<&str>,
    today: chrono::NaiveDate,
) -> Result<Option<CitizenId>, RegistryError> {
    let Some(text) = text.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let id = CitizenId::parse(text).map_err(RegistryError::BadCitizenId)?;
    if id.age_on(today) < 60 {
        return Err(RegistryError::TooYoung(id.birth_date().to_string()));
    }
    Ok(Some(id))
}

/// The fields of a registration as typed.
#[derive(Debug, Clone, Default)]
pub struct ElderForm<'a> {
    pub name: &'a str,
    pub county: &'a str,
    pub township: &'a str,
    pub village: &'a str,
    pub address: &'a str,
    pub phone: Option<&'a str>,
    pub emergency_contact: Option<&'a str>,
    pub emergency_phone: Option<&'a str>,
    /// Comma-separated annex 2 categories.
    pub categories: Option<&'a str>,
    /// Overrides the categories' inactivity threshold, in hours.
    pub inactivity_hours: Option<i64>,
    /// 公民身份号码; the elder must be 60 or older.
    pub citizen_id: Option<&'a str>,
    /// 残疾证号.
    pub disability_cert: Option<&'a str>,
    /// 是否在户籍地居住; `None` counts as yes.
    pub lives_at_registered: Option<bool>,
    /// For 留守: the date the children left, `YYYY-MM-DD`.
    pub left_behind_since: Option<&'a str>,
}

impl ElderForm<'_> {
    /// Checks every field, judging age on `today` (the deployment's local
    /// date, `AlertPolicy::today`); the first problem is the error.
    pub fn check_on(&self, today: chrono::NaiveDate) -> Result<NewElder, RegistryError> {
        let name = text("name", self.name, 64)?;
        let citizen_id = elder_citizen_id(self.citizen_id, today)?;
        let (county, township, village) = (
            text("county", self.county, 64)?,
            text("township", self.township, 64)?,
            text("village", self.village, 64)?,
        );
        let address = text("address", self.address, 200)?;
        let phone = optional_phone("phone", self.phone)?;
        let emergency_contact = optional_text("emergency contact", self.emergency_contact, 64)?;
        let emergency_phone = optional_phone("emergency phone", self.emergency_phone)?;
        let certificate = match self.disability_cert.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => {
                Some(DisabilityCertificate::parse(text, citizen_id.as_ref()).map_err(RegistryError::BadCertificate)?)
            }
        };
        let categories = annex_two(categories(self.categories.unwrap_or_default())?, certificate.as_ref())?;
        let since = match self.left_behind_since.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(text) => {
                Some(chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| RegistryError::LeftBehindSince)?)
            }
        };
        Ok(NewElder {
            name,
            county,
            township,
            village,
            address,
            phone,
            emergency_contact,
            emergency_phone,
            left_behind_since: left_behind_since(&categories, since, today)?,
            categories: Category::join(&categories),
            inactivity_hours: match self.inactivity_hours {
                Some(hours) if !(1..=72).contains(&hours) => return Err(RegistryError::BadThreshold(hours)),
                hours => hours,
            },
            citizen_id,
            disability_cert: certificate.map(|c| c.number),
            lives_at_registered: self.lives_at_registered.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citizen_ids_are_checked_by_their_check_digit_and_birth_date() {
        // 11010519491231002X is GB 11643's own example.
        let id = CitizenId::parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date().to_string(), "1949-12-31");
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert_eq!(id.age_on(day("2009-12-30")), 59);
        assert_eq!(id.age_on(day("2009-12-31")), 60);
        assert_eq!(
            CitizenId::parse("110105194912310021"),
            Err(CitizenIdError::CheckDigit { found: '1', expected: 'X' })
        );
        assert_eq!(CitizenId::parse("1101051949123100"), Err(CitizenIdError::Length(16)));
        assert_eq!(CitizenId::parse("11010519491231002Y"), Err(CitizenIdError::Characters));
        assert_eq!(CitizenId::parse("110105194902300027"), Err(CitizenIdError::BirthDate("19490230".into())));
    }

    #[test]
    fn an_elder_under_60_is_refused_with_the_birth_date() {
        let form = ElderForm {
            name: "王秀英",
            county: "振兴区",
            township: "站前街道",
            village: "锦山社区",
            address: "锦山大街 12 号",
            citizen_id: Some("11010519491231002X"),
            categories: Some("living_alone"),
            ..Default::default()
        };
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert_eq!(
            form.check_on(day("2026-11-29")).unwrap().citizen_id.as_ref().map(CitizenId::as_str),
            Some("11010519491231002X")
        );
        assert_eq!(form.check_on(day("2000-01-01")), Err(RegistryError::TooYoung("1949-12-31".into())));
        let bad = ElderForm { citizen_id: Some("110105194912310021"), ..form };
        assert_eq!(
            bad.check_on(day("2026-11-29")).unwrap_err().to_string(),
            "citizen ID ends in 1, but its check digit is X"
        );
    }

    #[test]
    fn masking_keeps_four_characters_at_each_end() {
        assert_eq!(mask("21060219450312123X"), "2106**********123X");
        assert_eq!(mask("2106021945"), "2106**1945");
        assert_eq!(mask("1234"), "****");
    }

    #[test]
    fn phone_numbers_are_chinese_mobiles_or_landlines_in_one_normal_form() {
        let phone = |text: &str| PhoneNumber::parse("phone", text).map(|p| p.as_str().to_string());
        for (typed, kept) in [
            (" 139-0415 0001 ", "13904150001"),
            ("+86 139 0415 0001", "13904150001"),
            ("8613904150001", "13904150001"),
            ("+86 415 2170478", "0415-2170478"),
            ("(0415) 2170478", "0415-2170478"),
            ("04152170478", "0415-2170478"),
            ("010-62345678", "010-62345678"),
            ("02087654321", "020-87654321"),
            ("2170478", "2170478"),
            ("87654321", "87654321"),
        ] {
            assert_eq!(phone(typed).as_deref(), Ok(kept), "{typed:?}");
        }
        assert!(PhoneNumber::parse("phone", "13904150001").unwrap().is_mobile());
        assert!(!PhoneNumber::parse("phone", "0415-2170478").unwrap().is_mobile());
        // A 10-digit number starting with 1, a mobile of the wrong second
        // digit, a landline too short, letters, nothing.
        for bad in ["1390415000", "12904150001", "139041500011", "0415-21704", "12345", "", "call me", "+1 202 5550100"]
        {
            assert!(phone(bad).is_err(), "{bad:?}");
        }
    }

    fn wang(categories: &'static str, cert: Option<&'static str>) -> ElderForm<'static> {
        ElderForm {
            name: "王秀英",
            county: "振兴区",
            township: "站前街道",
            village: "锦山社区",
            address: "锦山大街 12 号",
            citizen_id: Some("11010519491231002X"),
            categories: Some(categories),
            disability_cert: cert,
            ..ElderForm::default()
        }
    }

    #[test]
    fn a_certificate_of_grade_1_or_2_makes_the_elder_severely_disabled() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        // 肢体 (4), grade 2: 重残 follows.
        let severe = wang("living_alone", Some("11010519491231002x42")).check_on(today).unwrap();
        assert_eq!(severe.categories, "living_alone,severely_disabled");
        assert_eq!(severe.disability_cert.as_deref(), Some("11010519491231002X42"));
        // Grade 3 is not 重残, and says so if claimed.
        assert_eq!(
            wang("living_alone", Some("11010519491231002X43")).check_on(today).unwrap().categories,
            "living_alone"
        );
        assert_eq!(
            wang("severely_disabled", Some("11010519491231002X43")).check_on(today),
            Err(RegistryError::BadCertificate(CertificateError::NotSevere(3)))
        );
        // The certificate is the elder's own, and second-generation.
        assert_eq!(
            wang("living_alone", Some("21060219450312123842")).check_on(today),
            Err(RegistryError::BadCertificate(CertificateError::NotTheElders))
        );
        for bad in ["11010519491231002X", "11010519491231002X45", "11010519491231002X82", "残疾证 123"] {
            assert_eq!(
                wang("living_alone", Some(bad)).check_on(today),
                Err(RegistryError::BadCertificate(CertificateError::Shape)),
                "{bad}"
            );
        }
        // A certificate alone is category enough when it is grade 1 or 2.
        assert_eq!(wang("", Some("11010519491231002X11")).check_on(today).unwrap().categories, "severely_disabled");
        assert_eq!(wang("", None).check_on(today), Err(RegistryError::NoCategory));
    }

    #[test]
    fn a_left_behind_elder_has_the_date_the_children_left_and_is_rechecked_after_half_a_year() {
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        let today = day("2026-11-29");
        let left_behind = wang("left_behind", None);
        assert_eq!(left_behind.check_on(today), Err(RegistryError::LeftBehindSince));
        let since = ElderForm { left_behind_since: Some("2026-05-29"), ..left_behind.clone() };
        assert_eq!(since.check_on(today).unwrap().left_behind_since, Some(day("2026-05-29")));
        let future = ElderForm { left_behind_since: Some("2026-12-01"), ..left_behind };
        assert_eq!(future.check_on(today), Err(RegistryError::LeftBehindInFuture(day("2026-12-01"))));
        let not_left_behind = ElderForm { left_behind_since: Some("2026-05-29"), ..wang("empty_nest", None) };
        assert_eq!(not_left_behind.check_on(today).unwrap().left_behind_since, None, "kept only for 留守");
        assert!(left_behind_recheck_due(day("2026-05-29"), today));
        assert!(!left_behind_recheck_due(day("2026-05-30"), today));
        assert!(left_behind_recheck_due(day("2026-02-28"), day("2026-08-28")));
    }

    #[test]
    fn a_registration_names_the_field_that_is_wrong() {
        let form = ElderForm {
            name: "王秀英",
            county: "振兴区",
            township: "站前街道",
            village: "锦山社区",
            address: "锦山大街 12 号",
            categories: Some("empty_nest"),
            ..ElderForm::default()
        };
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(form.check_on(today).unwrap().name, "王秀英");
        let no_village = ElderForm { village: "  ", ..form.clone() };
        assert_eq!(no_village.check_on(today).unwrap_err().to_string(), "village is required");
        let categories = ElderForm { categories: Some("dependent, living_alone,dependent"), ..form.clone() };
        assert_eq!(categories.check_on(today).unwrap().categories, "living_alone,dependent");
        let bad_category = ElderForm { categories: Some("lonely"), ..form.clone() };
        assert!(bad_category.check_on(today).unwrap_err().to_string().starts_with("unknown category \"lonely\""));
        let bad_threshold = ElderForm { inactivity_hours: Some(0), ..form.clone() };
        assert!(bad_threshold.check_on(today).is_err());
        let bad_phone = ElderForm { emergency_phone: Some("tomorrow"), ..form };
        assert!(
            bad_phone
                .check_on(today)
                .unwrap_err()
                .to_string()
                .starts_with("emergency phone \"tomorrow\" is not a phone number")
        );
    }
}

/// An elder's registration, as entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewElder {
    /// 公民身份号码, checked (GB 11643).
    pub citizen_id: Option<CitizenId>,
    /// 残疾证号.
    pub disability_cert: Option<String>,
    /// 是否在户籍地居住.
    pub lives_at_registered: bool,
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub address: String,
    pub phone: Option<String>,
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    /// Annex 2 categories, e.g. `living_alone,dependent`.
    pub categories: String,
    /// Overrides the inactivity threshold of the categories, in hours.
    pub inactivity_hours: Option<i64>,
    /// For 留守 (`left_behind`): the date the children left.
    pub left_behind_since: Option<chrono::NaiveDate>,
}

impl Default for NewElder {
    fn default() -> Self {
        NewElder {
            citizen_id: None,
            disability_cert: None,
            lives_at_registered: true,
            name: String::new(),
            county: String::new(),
            township: String::new(),
            village: String::new(),
            address: String::new(),
            phone: None,
            emergency_contact: None,
            emergency_phone: None,
            categories: String::new(),
            inactivity_hours: None,
            left_behind_since: None,
        }
    }
}
