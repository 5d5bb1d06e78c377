//! A visit's photo, as the console keeps it: decoded (so only an image is
//! kept), at most [`PHOTO_MAX_SIDE`] on its longest side, and encoded
//! afresh as a JPEG — which leaves behind everything but the pixels (EXIF,
//! with the place and the phone's make, XMP, comments). The phone resizes
//! it first; the console does not trust that it did.

use std::io::Cursor;

use anxin_domain::evidence::{PHOTO_MAX_BYTES, PHOTO_MAX_SIDE};
use base64::Engine;

/// Why a photo was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("the photo is larger than {} kB", PHOTO_MAX_BYTES / 1024)]
    TooLarge,
    #[error("the photo is not a JPEG image")]
    NotAnImage,
}

/// The JPEG quality a kept photo is encoded at.
const QUALITY: u8 = 80;

/// A photo sent in the visit form: a `data:image/jpeg;base64,` URL (or the
/// bare base64), cleaned by [`clean`]. Empty text is no photo.
pub fn from_form(text: &str) -> Result<Option<Vec<u8>>, PhotoError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let encoded = text.strip_prefix("data:image/jpeg;base64,").unwrap_or(text);
    if encoded.len() > PHOTO_MAX_BYTES / 3 * 4 + 4 {
        return Err(PhotoError::TooLarge);
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| PhotoError::NotAnImage)?;
    clean(&bytes).map(Some)
}

/// Decodes, bounds and re-encodes a JPEG.
pub fn clean(bytes: &[u8]) -> Result<Vec<u8>, PhotoError> {
    if bytes.len() > PHOTO_MAX_BYTES {
        return Err(PhotoError::TooLarge);
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8_000);
    limits.max_image_height = Some(8_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let picture = reader.decode().map_err(|_| PhotoError::NotAnImage)?;
    let picture = if picture.width().max(picture.height()) > PHOTO_MAX_SIDE {
        picture.resize(PHOTO_MAX_SIDE, PHOTO_MAX_SIDE, image::imageops::FilterType::Triangle)
    } else {
        picture
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&picture.to_rgb8())
        .map_err(|_| PhotoError::NotAnImage)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use anxin_testkit::camera_jpeg;

    #[test]
    fn a_photo_is_kept_without_its_metadata_and_no_larger_than_the_limit() {
        let sent = camera_jpeg(1600, 900);
        assert!(sent.windows(4).any(|w| w == b"Exif"));
        let kept = clean(&sent).unwrap();
        assert!(!kept.windows(4).any(|w| w == b"Exif") && !kept.windows(3).any(|w| w == b"GPS"), "metadata stripped");
        let picture = image::load_from_memory_with_format(&kept, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((picture.width(), picture.height()), (1280, 720), "the longest side bounded, the shape kept");
        let small = clean(&camera_jpeg(64, 48)).unwrap();
        let picture = image::load_from_memory_with_format(&small, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((picture.width(), picture.height()), (64, 48), "a small photo is not enlarged");
    }

    #[test]
    fn what_is_not_a_jpeg_or_too_large_is_refused() {
        assert_eq!(clean(b"<svg onload=alert(1)>"), Err(PhotoError::NotAnImage));
        assert_eq!(clean(&vec![0xFF; PHOTO_MAX_BYTES + 1]), Err(PhotoError::TooLarge));
        assert_eq!(from_form("data:image/jpeg;base64,!!!"), Err(PhotoError::NotAnImage));
        assert_eq!(from_form(""), Ok(None));
        let sent = base64::engine::general_purpose::STANDARD.encode(camera_jpeg(32, 32));
        assert!(from_form(&format!("data:image/jpeg;base64,{sent}")).unwrap().is_some());
    }
}
