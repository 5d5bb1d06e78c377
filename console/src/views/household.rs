//! Parts 2 to 4 of the record form (household, living conditions, help
//! received) as the elder page shows them.

use anxin_domain::ledger::{ElderDetails, format_yuan};
use anxin_domain::registry::mask;

use super::records::choice;
use crate::i18n::Lang;

/// Parts 2 to 4 as the elder page shows them: member ID numbers masked.
#[derive(Debug)]
pub struct HouseholdView {
    pub disabled: &'static str,
    pub members: Vec<[String; 6]>,
    pub water_safe: &'static str,
    pub power_safe: &'static str,
    pub housing_safe: &'static str,
    pub income: String,
    pub benefits: String,
    pub orgs: String,
    pub help_person: String,
    pub help_measures: String,
}

impl HouseholdView {
    pub fn of(details: &ElderDetails, lang: Lang) -> HouseholdView {
        let yes_no = |v: Option<bool>| match v {
            Some(true) => lang.t("common.yes"),
            Some(false) => lang.t("common.no"),
            None => "",
        };
        HouseholdView {
            disabled: yes_no(Some(details.disabled)),
            members: details
                .members
                .iter()
                .map(|m| {
                    [
                        m.name.clone(),
                        m.sex.map(|s| choice(lang, s.code(), s.label()).to_string()).unwrap_or_default(),
                        m.citizen_id.as_deref().map(mask).unwrap_or_default(),
                        m.relation.clone().unwrap_or_default(),
                        m.health.clone().unwrap_or_default(),
                        choice(lang, &format!("support_{}", m.support.code()), m.support.label()).to_string(),
                    ]
                })
                .collect(),
            water_safe: yes_no(details.living.water_safe),
            power_safe: yes_no(details.living.power_safe),
            housing_safe: yes_no(details.living.housing_safe),
            income: details.living.monthly_income_fen.map(format_yuan).unwrap_or_default(),
            benefits: details.living.benefits.clone().unwrap_or_default(),
            orgs: details.help.orgs.iter().map(|o| choice(lang, o.code(), o.label())).collect::<Vec<_>>().join("、"),
            help_person: details.help.person.clone().unwrap_or_default(),
            help_measures: details.help.measures.clone().unwrap_or_default(),
        }
    }
}
