//! Who may see and do what: roles, the regions they cover, and passwords.
//!
//! The rules are pure functions of a [`Principal`] and the thing asked for,
//! so every route of the console and API can ask the same question and the
//! role × scope matrix is tested once, here.
//!
//! - `admin`: everything, including the registry and the audit log.
//! - `oncall` (值班人员): alerts and elders of the regions they cover.
//! - `visitor` (探访人员): only the elders assigned to them.
//! - `official`: figures and elders of their regions, read-only.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use password_hash::rand_core::{OsRng, RngCore};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Oncall,
    Visitor,
    Official,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Oncall, Role::Visitor, Role::Official];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Oncall => "oncall",
            Role::Visitor => "visitor",
            Role::Official => "official",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Oncall staff and officials work within regions.
    pub fn needs_region(self) -> bool {
        matches!(self, Role::Oncall | Role::Official)
    }
}

/// A county, a township in it, or a village in that (县 / 乡镇 / 村).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    pub county: String,
    pub township: Option<String>,
    pub village: Option<String>,
}

impl Region {
    /// `振兴区`, `振兴区/站前街道` or `振兴区/站前街道/锦山社区`.
    pub fn parse(text: &str) -> Result<Region, AccessError> {
        let parts: Vec<&str> = text.split('/').map(str::trim).collect();
        if parts.iter().any(|part| part.is_empty()) || parts.len() > 3 {
            return Err(AccessError::BadRegion(text.to_string()));
        }
        Ok(Region {
            county: parts[0].to_string(),
            township: parts.get(1).map(|s| s.to_string()),
            village: parts.get(2).map(|s| s.to_string()),
        })
    }

    /// Whether a home at county / township / village lies in this region.
    pub fn covers(&self, county: &str, township: &str, village: &str) -> bool {
        self.county == county
            && self.township.as_deref().is_none_or(|t| t == township)
            && self.village.as_deref().is_none_or(|v| v == village)
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.county)?;
        if let Some(township) = &self.township {
            write!(f, "/{township}")?;
        }
        if let Some(village) = &self.village {
            write!(f, "/{village}")?;
        }
        Ok(())
    }
}

/// Someone signed in, with what they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    pub role: Role,
    pub regions: Vec<Region>,
    /// For visitors: the elders assigned to them.
    pub assigned_elders: Vec<i64>,
}

/// Where an elder lives, as the access rules need it.
#[derive(Debug, Clone, Copy)]
pub struct ElderPlace<'a> {
    pub elder_id: i64,
    pub county: &'a str,
    pub township: &'a str,
    pub village: &'a str,
}

/// Whatever belongs to one elder's home (the elder, an alert, a month's
/// visits) says where that is, in one way: the one place builder the access
/// rules are asked with (`principal.can_see_elder(&alert.place())`).
pub trait Placed {
    fn place(&self) -> ElderPlace<'_>;
}

impl Principal {
    fn covers(&self, place: &ElderPlace<'_>) -> bool {
        self.regions.iter().any(|region| region.covers(place.county, place.township, place.village))
    }

    /// May read this elder's page (profile, devices, activity, visits).
    pub fn can_see_elder(&self, place: &ElderPlace<'_>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Oncall | Role::Official => self.covers(place),
            Role::Visitor => self.assigned_elders.contains(&place.elder_id),
        }
    }

    /// May acknowledge and resolve this elder's alerts.
    pub fn can_handle_alerts(&self, place: &ElderPlace<'_>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Oncall => self.covers(place),
            Role::Visitor | Role::Official => false,
        }
    }

    /// May record visits and care services, and raise and close referrals,
    /// for this elder: the registry, on-call staff of the region, and the
    /// elder's own visitors. Officials only read.
    pub fn can_record_visits(&self, place: &ElderPlace<'_>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Oncall => self.covers(place),
            Role::Visitor => self.assigned_elders.contains(&place.elder_id),
            Role::Official => false,
        }
    }

    /// May read visit-rate figures (of the elders they may see).
    pub fn can_read_figures(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Oncall | Role::Official)
    }

    /// May create and edit elders, pair devices, assign visitors, manage users.
    pub fn can_edit_registry(&self) -> bool {
        self.role == Role::Admin
    }

    /// May read the audit log.
    pub fn can_read_audit(&self) -> bool {
        self.role == Role::Admin
    }

    /// May close and reopen a month's visit rate for `county` (关账): an
    /// official whose region is that whole county — the one who signs the
    /// county's figure. A township's official may not close it for others.
    pub fn can_close_month(&self, county: &str) -> bool {
        self.role == Role::Official
            && self.regions.iter().any(|r| r.county == county && r.township.is_none() && r.village.is_none())
    }

    /// May start and end a heightened watch for `region`: the registry for
    /// anywhere, an official for a region inside their own.
    pub fn can_watch_region(&self, region: &Region) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Official => self.regions.iter().any(|own| {
                own.county == region.county
                    && own.township.as_ref().is_none_or(|t| region.township.as_ref() == Some(t))
                    && own.village.as_ref().is_none_or(|v| region.village.as_ref() == Some(v))
            }),
            Role::Oncall | Role::Visitor => false,
        }
    }

    /// May put shifts on `county`'s duty roster and take them off: the
    /// registry, and on-call staff whose region is the whole county.
    pub fn can_keep_roster(&self, county: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Oncall => self.regions.iter().any(|r| r.county == county && r.township.is_none()),
            Role::Visitor | Role::Official => false,
        }
    }

    /// May see `county`'s duty roster: whoever handles its alerts.
    pub fn can_see_roster(&self, county: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Oncall => self.regions.iter().any(|r| r.county == county),
            Role::Visitor | Role::Official => false,
        }
    }

    /// The whole counties this principal may close months for.
    pub fn closable_counties(&self) -> Vec<String> {
        if self.role != Role::Official {
            return Vec::new();
        }
        self.regions.iter().filter(|r| r.township.is_none()).map(|r| r.county.clone()).collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("{0:?} is not a region: use COUNTY, COUNTY/TOWNSHIP or COUNTY/TOWNSHIP/VILLAGE")]
    BadRegion(String),
    #[error("unknown role {0:?}: use admin, oncall, visitor or official")]
    BadRole(String),
    #[error("a user name is 1 to 64 characters with no slash or control characters")]
    BadName,
    #[error("the {0} role needs at least one --region")]
    RegionNeeded(&'static str),
    #[error("a password needs at least 12 characters")]
    WeakPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks a user name as typed.
pub fn user_name(text: &str) -> Result<String, AccessError> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(AccessError::BadName);
    }
    Ok(name.to_string())
}

/// An argon2id hash (PHC string) of `password`, salted.
pub fn hash_password(password: &str) -> Result<String, AccessError> {
    if password.chars().count() < 12 {
        return Err(AccessError::WeakPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AccessError::Hash(error.to_string()))
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A one-time password: 20 characters from an alphabet without look-alikes,
/// from the operating system's random source.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
}

/// A bearer token: `anx_` and 64 hex digits from the OS's random source.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("anx_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, regions: &[&str], assigned: &[i64]) -> Principal {
        Principal {
            user_id: 1,
            name: "someone".into(),
            role,
            regions: regions.iter().map(|r| Region::parse(r).unwrap()).collect(),
            assigned_elders: assigned.to_vec(),
        }
    }

    #[test]
    fn every_role_against_an_elder_inside_and_outside_its_scope() {
        let inside = ElderPlace { elder_id: 7, county: "振兴区", township: "站前街道", village: "锦山社区" };
        let next_village =
            ElderPlace { elder_id: 8, county: "振兴区", township: "站前街道", village: "六道口社区" };
        let other_county =
            ElderPlace { elder_id: 9, county: "元宝区", township: "广济街道", village: "广济社区" };
        let admin = principal(Role::Admin, &[], &[]);
        let county_oncall = principal(Role::Oncall, &["振兴区"], &[]);
        let village_oncall = principal(Role::Oncall, &["振兴区/站前街道/锦山社区"], &[]);
        let official = principal(Role::Official, &["振兴区/站前街道"], &[]);
        let visitor = principal(Role::Visitor, &[], &[7]);
        // (who, sees inside, sees next village, sees other county, handles inside, handles other county)
        let matrix = [
            (&admin, true, true, true, true, true),
            (&county_oncall, true, true, false, true, false),
            (&village_oncall, true, false, false, true, false),
            (&official, true, true, false, false, false),
            (&visitor, true, false, false, false, false),
        ];
        for (who, see_in, see_next, see_other, handle_in, handle_other) in matrix {
            assert_eq!(who.can_see_elder(&inside), see_in, "{:?} sees inside", who.role);
            assert_eq!(who.can_see_elder(&next_village), see_next, "{:?} sees next village", who.role);
            assert_eq!(who.can_see_elder(&other_county), see_other, "{:?} sees other county", who.role);
            assert_eq!(who.can_handle_alerts(&inside), handle_in, "{:?} handles inside", who.role);
            assert_eq!(who.can_handle_alerts(&other_county), handle_other, "{:?} handles other county", who.role);
        }
        for who in [&county_oncall, &village_oncall, &official, &visitor] {
            assert!(!who.can_edit_registry() && !who.can_read_audit(), "{:?}", who.role);
        }
        assert!(admin.can_edit_registry() && admin.can_read_audit());
    }

    #[test]
    fn an_official_watches_regions_inside_their_own() {
        let township_official = principal(Role::Official, &["振兴区/站前街道"], &[]);
        let region = |text: &str| Region::parse(text).unwrap();
        assert!(township_official.can_watch_region(&region("振兴区/站前街道")));
        assert!(township_official.can_watch_region(&region("振兴区/站前街道/锦山社区")));
        assert!(!township_official.can_watch_region(&region("振兴区")), "not the whole county");
        assert!(!township_official.can_watch_region(&region("振兴区/汤池镇")));
        assert!(principal(Role::Admin, &[], &[]).can_watch_region(&region("元宝区")));
        assert!(!principal(Role::Oncall, &["振兴区"], &[]).can_watch_region(&region("振兴区")));
    }

    #[test]
    fn only_an_official_of_the_whole_county_closes_its_month() {
        let county_official = principal(Role::Official, &["振兴区"], &[]);
        assert!(county_official.can_close_month("振兴区"));
        assert!(!county_official.can_close_month("元宝区"));
        assert_eq!(county_official.closable_counties(), vec!["振兴区".to_string()]);
        let township_official = principal(Role::Official, &["振兴区/站前街道"], &[]);
        assert!(!township_official.can_close_month("振兴区"));
        assert!(township_official.closable_counties().is_empty());
        for role in [Role::Admin, Role::Oncall, Role::Visitor] {
            let who = principal(role, &["振兴区"], &[]);
            assert!(!who.can_close_month("振兴区") && who.closable_counties().is_empty(), "{role:?}");
        }
    }

    #[test]
    fn regions_and_names_are_checked_as_typed() {
        assert_eq!(Region::parse("振兴区/站前街道").unwrap().to_string(), "振兴区/站前街道");
        for bad in ["", "振兴区//锦山社区", "a/b/c/d", " / "] {
            assert!(Region::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(user_name("  值班员 李 ").unwrap(), "值班员 李");
        assert!(user_name("").is_err() && user_name("a/b").is_err() && user_name("a\nb").is_err());
        assert_eq!(Role::parse("oncall"), Some(Role::Oncall));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn passwords_are_argon2id_and_checked_against_their_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert_eq!(hash_password("short"), Err(AccessError::WeakPassword));
        let one = one_time_password();
        assert_eq!(one.len(), 20);
        assert_ne!(one, one_time_password());
    }
}
