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
        "{field} {value:?} is not a phone number: use 5 to 20 digits, optionally with a leading + and spaces or dashes"
    )]
    BadPhone { field: &'static str, value: String },
    #[error("citizen ID {0}")]
    BadCitizenId(CitizenIdError),
    #[error("the elder must be 60 or older (annex 2); the citizen ID gives a birth date of {0}")]
    TooYoung(String),
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

/// A phone number, kept as digits (with a leading `+` if given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, RegistryError> {
        let trimmed = text.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", trimmed),
        };
        let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !(5..=20).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(RegistryError::BadPhone { field, value: text.to_string() });
        }
        Ok(Self(format!("{plus}{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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

fn categories(text: &str) -> Result<String, RegistryError> {
    let mut found = Vec::new();
    for word in text.split(',').map(str::trim).filter(|word| !word.is_empty()) {
        let category = Category::parse(word).ok_or_else(|| RegistryError::BadCategory(word.to_string()))?;
        if !found.contains(&category) {
            found.push(category);
        }
    }
    Ok(Category::join(&found))
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
}

impl ElderForm<'_> {
    /// Checks every field, judging age on `today` (the deployment's local
    /// date, `AlertPolicy::today`); the first problem is the error.
    pub fn check_on(&self, today: chrono::NaiveDate) -> Result<NewElder, RegistryError> {
        Ok(NewElder {
            name: text("name", self.name, 64)?,
            citizen_id: elder_citizen_id(self.citizen_id, today)?,
            county: text("county", self.county, 64)?,
            township: text("township", self.township, 64)?,
            village: text("village", self.village, 64)?,
            address: text("address", self.address, 200)?,
            phone: optional_phone("phone", self.phone)?,
            emergency_contact: optional_text("emergency contact", self.emergency_contact, 64)?,
            emergency_phone: optional_phone("emergency phone", self.emergency_phone)?,
            categories: categories(self.categories.unwrap_or_default())?,
            inactivity_hours: match self.inactivity_hours {
                Some(hours) if !(1..=72).contains(&hours) => return Err(RegistryError::BadThreshold(hours)),
                hours => hours,
            },
            disability_cert: optional_text("disability certificate number", self.disability_cert, 40)?,
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
    fn phone_numbers_keep_their_digits_and_refuse_nonsense() {
        assert_eq!(PhoneNumber::parse("phone", " 139-0415 0001 ").unwrap().as_str(), "13904150001");
        assert_eq!(PhoneNumber::parse("phone", "+86 415 2170478").unwrap().as_str(), "+864152170478");
        assert_eq!(PhoneNumber::parse("phone", "2170478").unwrap().as_str(), "2170478");
        for bad in ["", "12", "call me", "1390415000112345678901", "13904150001x"] {
            assert!(PhoneNumber::parse("phone", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_registration_names_the_field_that_is_wrong() {
        let form = ElderForm {
            name: "王秀英",
            county: "振兴区",
            township: "站前街道",
            village: "锦山社区",
            address: "锦山大街 12 号",
            ..ElderForm::default()
        };
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(form.check_on(today).unwrap().name, "王秀英");
        let no_village = ElderForm { village: "  ", ..form.clone() };
        assert_eq!(no_village.check_on(today).unwrap_err().to_string(), "village is required");
        let categories = ElderForm { categories: Some("dependent, living_alone,dependent"), ..form.clone() };
        assert_eq!(categories.check_on(today).unwrap().categories, "dependent,living_alone");
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
        }
    }
}
