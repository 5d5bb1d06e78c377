//! Checking what staff type in about an elder, once, at the boundary.

use crate::alerts::Category;
use crate::store::NewElder;

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

fn text(field: &'static str, value: &str, max: usize) -> Result<String, RegistryError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(RegistryError::Missing(field));
    }
    if value.chars().count() > max {
        return Err(RegistryError::TooLong { field, max });
    }
    Ok(value.to_string())
}

fn optional_text(field: &'static str, value: Option<&str>, max: usize) -> Result<Option<String>, RegistryError> {
    value.filter(|v| !v.trim().is_empty()).map(|v| text(field, v, max)).transpose()
}

fn optional_phone(field: &'static str, value: Option<&str>) -> Result<Option<String>, RegistryError> {
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
}

impl ElderForm<'_> {
    /// Checks every field; the first problem is the error.
    pub fn check(&self) -> Result<NewElder, RegistryError> {
        Ok(NewElder {
            name: text("name", self.name, 64)?,
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(form.check().unwrap().name, "王秀英");
        let no_village = ElderForm { village: "  ", ..form.clone() };
        assert_eq!(no_village.check().unwrap_err().to_string(), "village is required");
        let categories = ElderForm { categories: Some("dependent, living_alone,dependent"), ..form.clone() };
        assert_eq!(categories.check().unwrap().categories, "dependent,living_alone");
        let bad_category = ElderForm { categories: Some("lonely"), ..form.clone() };
        assert!(bad_category.check().unwrap_err().to_string().starts_with("unknown category \"lonely\""));
        let bad_threshold = ElderForm { inactivity_hours: Some(0), ..form.clone() };
        assert!(bad_threshold.check().is_err());
        let bad_phone = ElderForm { emergency_phone: Some("tomorrow"), ..form };
        assert!(
            bad_phone
                .check()
                .unwrap_err()
                .to_string()
                .starts_with("emergency phone \"tomorrow\" is not a phone number")
        );
    }
}
