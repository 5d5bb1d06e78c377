//! A visit's evidence (探访佐证), recorded on the visitor's phone: when the
//! visit ended, the two signatures of the record form (被探访人 and 探访人员,
//! drawn with a finger, or the elder's thumb mark), and — only with the
//! visitor's consent — where the phone was when the visit began and one
//! photo. Location and health are sensitive personal data (PIPL art. 28):
//! coordinates are kept to compare with the home's recorded location and
//! are shown to officials only as that distance.

use serde::{Deserialize, Serialize};

/// The signature pad's drawing box, in its own units (the phone scales it).
pub const PAD_WIDTH: u16 = 300;
pub const PAD_HEIGHT: u16 = 120;
/// A signature's text at most: a long signature is a few thousand characters.
pub const SIGNATURE_MAX_CHARS: usize = 12_000;
/// A photo at most, after the phone resized it (bytes of JPEG).
pub const PHOTO_MAX_BYTES: usize = 600 * 1024;
/// The longest side a photo is kept at.
pub const PHOTO_MAX_SIDE: u32 = 1280;

/// A signature (签字) drawn on the pad: strokes of points in the pad's box.
/// Its text form is what the phone sends and the store keeps: strokes
/// separated by `;`, points by spaces, each point `x,y` in whole units —
/// plain numbers, so nothing in it can be markup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    strokes: Vec<Vec<(u16, u16)>>,
}

/// Why a piece of evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the signature could not be read (strokes of x,y points in a {PAD_WIDTH}×{PAD_HEIGHT} box)")]
    Signature,
    #[error("the signature is too long (at most {SIGNATURE_MAX_CHARS} characters)")]
    SignatureTooLong,
    #[error("the location could not be read (latitude −90..90, longitude −180..180, accuracy in metres)")]
    Location,
    #[error("the visit cannot end before it began")]
    EndBeforeStart,
}

impl Signature {
    /// Reads the pad's text. Empty text is no signature (`None`).
    pub fn parse(text: &str) -> Result<Option<Signature>, EvidenceError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.len() > SIGNATURE_MAX_CHARS {
            return Err(EvidenceError::SignatureTooLong);
        }
        let point = |p: &str| -> Option<(u16, u16)> {
            let (x, y) = p.split_once(',')?;
            let (x, y) = (x.parse::<u16>().ok()?, y.parse::<u16>().ok()?);
            (x <= PAD_WIDTH && y <= PAD_HEIGHT).then_some((x, y))
        };
        let strokes = text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|stroke| stroke.split_whitespace().map(point).collect::<Option<Vec<_>>>())
            .collect::<Option<Vec<_>>>()
            .ok_or(EvidenceError::Signature)?;
        if strokes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Signature { strokes }))
    }

    /// The text form (as parsed).
    pub fn text(&self) -> String {
        self.strokes
            .iter()
            .map(|s| s.iter().map(|(x, y)| format!("{x},{y}")).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// An SVG path (`d`) drawing the strokes; a stroke of one point (a tap,
    /// a thumb pressed) is drawn as a dot by the round line caps.
    pub fn svg_path(&self) -> String {
        let mut d = String::new();
        for stroke in &self.strokes {
            for (i, (x, y)) in stroke.iter().enumerate() {
                d.push_str(&format!("{}{x} {y} ", if i == 0 { "M" } else { "L" }));
            }
            if stroke.len() == 1 {
                d.push_str("l0.1 0 ");
            }
        }
        d.trim_end().to_string()
    }
}

/// How the elder confirmed the visit: a signature, or (unable to write) a
/// thumb pressed on the pad (按手印).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ElderMark {
    #[default]
    Signature,
    Thumb,
}

impl ElderMark {
    pub fn code(self) -> &'static str {
        match self {
            ElderMark::Signature => "signature",
            ElderMark::Thumb => "thumb",
        }
    }

    pub fn parse(code: &str) -> Option<ElderMark> {
        match code {
            "signature" | "" => Some(ElderMark::Signature),
            "thumb" => Some(ElderMark::Thumb),
            _ => None,
        }
    }
}

/// Where the phone was (WGS 84, as the phone reports it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    /// The phone's own estimate, metres (95 %); absent when it gave none.
    pub accuracy_m: Option<f64>,
}

impl Location {
    /// Reads latitude, longitude and accuracy as the phone sends them; all
    /// empty is no location.
    pub fn parse(latitude: &str, longitude: &str, accuracy: &str) -> Result<Option<Location>, EvidenceError> {
        let (latitude, longitude, accuracy) = (latitude.trim(), longitude.trim(), accuracy.trim());
        if latitude.is_empty() && longitude.is_empty() {
            return Ok(None);
        }
        let number = |text: &str| text.parse::<f64>().ok().filter(|n| n.is_finite());
        let (Some(latitude), Some(longitude)) = (number(latitude), number(longitude)) else {
            return Err(EvidenceError::Location);
        };
        let accuracy_m = match accuracy {
            "" => None,
            text => Some(number(text).filter(|a| (0.0..=100_000.0).contains(a)).ok_or(EvidenceError::Location)?),
        };
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(EvidenceError::Location);
        }
        Ok(Some(Location { latitude, longitude, accuracy_m }))
    }

    /// The great-circle distance to `other`, metres (haversine on a sphere
    /// of the Earth's mean radius: within 0.5 % at these distances).
    pub fn distance_m(&self, other: &Location) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (a, b) = (self.latitude.to_radians(), other.latitude.to_radians());
        let d_lat = b - a;
        let d_lon = (other.longitude - self.longitude).to_radians();
        let h = (d_lat / 2.0).sin().powi(2) + a.cos() * b.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }
}

/// What the phone recorded beside the form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evidence {
    /// When the visit ended (local time of its day).
    pub ended: Option<chrono::NaiveTime>,
    /// 被探访人(签字) and how it was made.
    pub elder_signature: Option<Signature>,
    pub elder_mark: ElderMark,
    /// 探访人员(签字)
    pub visitor_signature: Option<Signature>,
    /// Where the phone was when the visit began, with the visitor's consent.
    pub location: Option<Location>,
    /// One photo, JPEG, already resized and stripped of its metadata.
    pub photo: Option<Vec<u8>>,
}

impl Evidence {
    /// Nothing recorded: nothing to keep.
    pub fn is_empty(&self) -> bool {
        *self == Evidence::default()
    }

    /// Checks the end against the start (same day, local time).
    pub fn check(self, started: Option<chrono::NaiveTime>) -> Result<Evidence, EvidenceError> {
        if let (Some(started), Some(ended)) = (started, self.ended)
            && ended < started
        {
            return Err(EvidenceError::EndBeforeStart);
        }
        Ok(self)
    }
}

/// A distance for officials: metres under a kilometre, else kilometres.
pub fn distance_words(metres: f64) -> String {
    if metres < 1_000.0 { format!("{:.0} m", metres.round()) } else { format!("{:.1} km", metres / 1_000.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_read_from_its_strokes_and_drawn_as_a_path() {
        let signature = Signature::parse("10,20 30,40 50,45; 100,60").unwrap().unwrap();
        assert_eq!(signature.text(), "10,20 30,40 50,45;100,60");
        assert_eq!(signature.svg_path(), "M10 20 L30 40 L50 45 M100 60 l0.1 0");
        assert_eq!(Signature::parse("  ").unwrap(), None, "an empty pad is no signature");
        assert_eq!(Signature::parse(";").unwrap(), None);
        for bad in ["10,20 x,3", "301,5", "5,121", "10;20", "<svg onload=1>", "1,2,3", "-1,5"] {
            assert_eq!(Signature::parse(bad), Err(EvidenceError::Signature), "{bad}");
        }
        let long = vec!["100,100"; 2_000].join(" ");
        assert_eq!(Signature::parse(&long), Err(EvidenceError::SignatureTooLong));
    }

    #[test]
    fn a_location_is_checked_and_its_distance_measured() {
        assert_eq!(Location::parse("", "", "").unwrap(), None);
        let here = Location::parse("40.1292", "124.3945", "12.5").unwrap().unwrap();
        assert_eq!(here.accuracy_m, Some(12.5));
        for (lat, lon, acc) in
            [("91", "124", ""), ("40", "181", ""), ("40", "", ""), ("NaN", "1", ""), ("40", "124", "-3")]
        {
            assert_eq!(Location::parse(lat, lon, acc), Err(EvidenceError::Location), "{lat},{lon},{acc}");
        }
        // One thousandth of a degree of latitude is about 111 m anywhere.
        let north = Location { latitude: here.latitude + 0.001, ..here };
        assert!((here.distance_m(&north) - 111.2).abs() < 0.5, "{}", here.distance_m(&north));
        // Dandong to Shenyang, about 190 km as the crow flies.
        let shenyang = Location { latitude: 41.8057, longitude: 123.4315, accuracy_m: None };
        let km = here.distance_m(&shenyang) / 1000.0;
        assert!((200.0..215.0).contains(&km), "{km}");
        assert_eq!(distance_words(here.distance_m(&north)), "111 m");
        assert_eq!(distance_words(2_345.0), "2.3 km");
    }

    #[test]
    fn a_visit_cannot_end_before_it_began() {
        let at = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0);
        let evidence = Evidence { ended: at(9, 30), ..Evidence::default() };
        assert!(evidence.clone().check(at(9, 0)).is_ok());
        assert_eq!(evidence.clone().check(at(10, 0)), Err(EvidenceError::EndBeforeStart));
        assert!(evidence.check(None).is_ok());
        assert!(Evidence::default().is_empty());
    }
}
