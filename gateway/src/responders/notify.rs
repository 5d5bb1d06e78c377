//! Sending a message to a phone through a provider the bureau contracts.
//!
//! [`Notifier`] is the interface; two providers implement it:
//!
//! - [`AliyunSms`]: Alibaba Cloud's Short Message Service (`SendSms`,
//!   version 2017-05-25), signed as its RPC API asks (signature version 1.0,
//!   HMAC-SHA1 over the sorted, percent-encoded query). China's SMS
//!   providers send only text from templates approved in advance; the
//!   template's variables are `village`, `kind` and `link`.
//! - [`HttpTemplate`]: any SMS or voice gateway with an HTTP API, from a
//!   request template (URL, method, headers, body with placeholders).
//!
//! What leaves: the contact's phone number and [`Message`] (the village, the
//! kind of alert, the link) — never a name, an ID number or a health detail.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hmac::{KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::alerts::delivery::http_client;
use anxin_domain::outbound;
use anxin_domain::responders::{Message, Purpose, link};

/// What the provider said when it took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id for it (Aliyun's `BizId`), when it gives one.
    pub reference: Option<String>,
}

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    pub reason: String,
    /// Worth trying again (the network, the provider's limits); `false`:
    /// this message will never be taken (a number the provider refuses).
    pub retry: bool,
}

impl SendError {
    fn again(reason: impl Into<String>) -> SendError {
        SendError { reason: reason.into(), retry: true }
    }

    fn never(reason: impl Into<String>) -> SendError {
        SendError { reason: reason.into(), retry: false }
    }
}

/// A provider that takes a message for one phone.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Its name in the logs and on `/metrics`.
    fn name(&self) -> &'static str;

    /// Sends `message` to `phone` (the registry's normal form: 11 digits for
    /// a mobile). `id` is the message's own id, for the provider's records.
    fn send<'a>(&'a self, id: i64, phone: &'a str, message: &'a Message) -> BoxFuture<'a, Result<Receipt, SendError>>;
}

/// How long one request to a provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn check_url(what: &str, url: &str) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(format!("{what} {url:?} must be an http:// or https:// URL"))
    }
}

/// Alibaba Cloud SMS (阿里云短信服务), `SendSms`.
pub struct AliyunSms {
    endpoint: String,
    access_key_id: String,
    access_key_secret: String,
    sign_name: String,
    template_code: String,
    /// The template for "the one who accepted has not arrived"; the alert's
    /// template when not set.
    late_template_code: Option<String>,
    region_id: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for AliyunSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliyunSms")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("sign_name", &self.sign_name)
            .field("template_code", &self.template_code)
            .finish_non_exhaustive()
    }
}

/// Aliyun's SMS endpoint.
pub const ALIYUN_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";

/// What an Aliyun SMS provider is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliyunConfig {
    /// [`ALIYUN_ENDPOINT`] unless told (a test's stand-in, a proxy).
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// 短信签名, as approved.
    pub sign_name: String,
    /// 模板 CODE of the alert's template (variables `village`, `kind`, `link`).
    pub template_code: String,
    pub late_template_code: Option<String>,
    pub region_id: Option<String>,
}

/// RFC 3986's unreserved characters stay; everything else is `%XX`
/// (upper case), a space `%20` — Aliyun's POP encoding.
const POP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn pop_encode(text: &str) -> String {
    utf8_percent_encode(text, POP).to_string()
}

/// The canonical query of `params` (sorted by name, each part encoded).
pub fn aliyun_canonical_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(name, _)| name.as_str() != "Signature")
        .map(|(name, value)| format!("{}={}", pop_encode(name), pop_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Aliyun's RPC signature (version 1.0) of a request: Base64 of
/// HMAC-SHA1(`secret&`, `METHOD&%2F&` + the encoded canonical query).
pub fn aliyun_signature(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    use base64::Engine;
    let string_to_sign = format!("{method}&{}&{}", pop_encode("/"), pop_encode(&aliyun_canonical_query(params)));
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Aliyun's answer to `SendSms`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliyunAnswer {
    code: Option<String>,
    message: Option<String>,
    biz_id: Option<String>,
}

/// Codes after which the same message will never be taken.
const ALIYUN_NEVER: &[&str] = &[
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_PARAMETERS",
    "isv.PARAM_LENGTH_LIMIT",
];

impl AliyunSms {
    pub fn new(config: AliyunConfig) -> Result<AliyunSms, String> {
        let endpoint = config.endpoint.unwrap_or_else(|| ALIYUN_ENDPOINT.into());
        check_url("the Aliyun SMS endpoint", &endpoint)?;
        for (what, value) in [
            ("access_key_id", &config.access_key_id),
            ("access_key_secret", &config.access_key_secret),
            ("sign_name", &config.sign_name),
            ("template_code", &config.template_code),
        ] {
            if value.trim().is_empty() {
                return Err(format!("the Aliyun SMS provider needs its {what}"));
            }
        }
        Ok(AliyunSms {
            endpoint,
            access_key_id: config.access_key_id,
            access_key_secret: config.access_key_secret,
            sign_name: config.sign_name,
            template_code: config.template_code,
            late_template_code: config.late_template_code,
            region_id: config.region_id.unwrap_or_else(|| "cn-hangzhou".into()),
            client: http_client(REQUEST_TIMEOUT)?,
        })
    }

    /// The signed query of one `SendSms` at `timestamp` (`YYYY-MM-DDThh:mm:ssZ`).
    pub fn signed_query(&self, id: i64, phone: &str, message: &Message, nonce: &str, timestamp: &str) -> String {
        let template = match message.purpose {
            Purpose::Late => self.late_template_code.as_deref().unwrap_or(&self.template_code),
            Purpose::Alert => &self.template_code,
        };
        let template_param =
            serde_json::json!({ "village": message.village, "kind": message.kind, "link": message.link }).to_string();
        let params: BTreeMap<String, String> = [
            ("AccessKeyId", self.access_key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("OutId", &id.to_string()),
            ("PhoneNumbers", phone),
            ("RegionId", &self.region_id),
            ("SignName", &self.sign_name),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", template),
            ("TemplateParam", &template_param),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let signature = aliyun_signature("GET", &params, &self.access_key_secret);
        format!("Signature={}&{}", pop_encode(&signature), aliyun_canonical_query(&params))
    }

    async fn send_one(&self, id: i64, phone: &str, message: &Message) -> Result<Receipt, SendError> {
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let query = self.signed_query(id, phone, message, &link::nonce(), &timestamp);
        let separator = if self.endpoint.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}{query}", self.endpoint);
        let response =
            self.client.get(url).send().await.map_err(|error| SendError::again(format!("Aliyun SMS: {error}")))?;
        let status = response.status();
        let body = response.text().await.map_err(|error| SendError::again(format!("Aliyun SMS: {error}")))?;
        let answer: Option<AliyunAnswer> = serde_json::from_str(&body).ok();
        match answer {
            Some(AliyunAnswer { code: Some(code), biz_id, .. }) if code == "OK" => Ok(Receipt { reference: biz_id }),
            Some(AliyunAnswer { code: Some(code), message, .. }) => {
                let reason = format!("Aliyun SMS answered {code}: {}", message.unwrap_or_default());
                if ALIYUN_NEVER.contains(&code.as_str()) {
                    Err(SendError::never(reason))
                } else {
                    Err(SendError::again(reason))
                }
            }
            _ => Err(SendError::again(format!("Aliyun SMS answered HTTP {status} without a code"))),
        }
    }
}

impl Notifier for AliyunSms {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    fn send<'a>(&'a self, id: i64, phone: &'a str, message: &'a Message) -> BoxFuture<'a, Result<Receipt, SendError>> {
        Box::pin(self.send_one(id, phone, message))
    }
}

/// How a template's placeholders are escaped in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// Inside a JSON string: `"` and `\` and control characters escaped.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// What a generic HTTP provider is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTemplateConfig {
    /// May hold placeholders (escaped for a URL).
    pub url: String,
    /// `POST` unless told; `GET` sends no body.
    pub method: Option<String>,
    /// Header values may hold placeholders (`{secret}` for a token).
    pub headers: BTreeMap<String, String>,
    /// With placeholders `{phone}`, `{text}`, `{village}`, `{kind}`,
    /// `{link}`, `{id}` and `{secret}`.
    pub body: Option<String>,
    pub format: BodyFormat,
    /// Put in `{secret}`, and signs each request's body
    /// (`X-Anxin-Signature`, as the webhook's).
    pub secret: Option<String>,
}

/// Any gateway with an HTTP API: the request is the template with the
/// message put in; any 2xx is taken, a 4xx other than 408 and 429 will never
/// be, the rest are tried again.
pub struct HttpTemplate {
    config: HttpTemplateConfig,
    method: reqwest::Method,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTemplate").field("url", &self.config.url).field("method", &self.method).finish()
    }
}

fn json_escape(text: &str) -> String {
    let quoted = serde_json::Value::String(text.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn form_escape(text: &str) -> String {
    utf8_percent_encode(text, POP).to_string()
}

impl HttpTemplate {
    pub fn new(config: HttpTemplateConfig) -> Result<HttpTemplate, String> {
        check_url("the SMS provider's url", &config.url)?;
        let method = match config.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("POST") => reqwest::Method::POST,
            Some("GET") => reqwest::Method::GET,
            Some("PUT") => reqwest::Method::PUT,
            Some(other) => return Err(format!("the SMS provider's method {other:?} is not GET, POST or PUT")),
        };
        Ok(HttpTemplate { config, method, client: http_client(REQUEST_TIMEOUT)? })
    }

    /// `template` with each placeholder replaced by `escape(value)`.
    fn fill(&self, template: &str, values: &[(&str, &str)], escape: fn(&str) -> String) -> String {
        let mut out = template.to_string();
        for (name, value) in values {
            out = out.replace(&format!("{{{name}}}"), &escape(value));
        }
        out
    }

    async fn send_one(&self, id: i64, phone: &str, message: &Message) -> Result<Receipt, SendError> {
        let text = message.text();
        let id = id.to_string();
        let secret = self.config.secret.clone().unwrap_or_default();
        let values = [
            ("phone", phone),
            ("text", text.as_str()),
            ("village", message.village.as_str()),
            ("kind", message.kind.as_str()),
            ("link", message.link.as_str()),
            ("id", id.as_str()),
            ("secret", secret.as_str()),
        ];
        let url = self.fill(&self.config.url, &values, form_escape);
        let mut request = self.client.request(self.method.clone(), url);
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), self.fill(value, &values, |v| v.to_string()));
        }
        if let Some(body) = &self.config.body
            && self.method != reqwest::Method::GET
        {
            let (escape, content_type): (fn(&str) -> String, _) = match self.config.format {
                BodyFormat::Json => (json_escape, "application/json"),
                BodyFormat::Form => (form_escape, "application/x-www-form-urlencoded"),
            };
            let body = self.fill(body, &values, escape);
            if !self.config.headers.keys().any(|name| name.eq_ignore_ascii_case("content-type")) {
                request = request.header("content-type", content_type);
            }
            if let Some(secret) = &self.config.secret {
                let signature = outbound::sign(secret, chrono::Utc::now().timestamp(), body.as_bytes());
                request = request.header(outbound::SIGNATURE_HEADER, signature);
            }
            request = request.body(body);
        }
        let response = request.send().await.map_err(|error| SendError::again(format!("SMS provider: {error}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Receipt { reference: None });
        }
        let reason = format!("SMS provider answered HTTP {status}");
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Err(SendError::never(reason))
        } else {
            Err(SendError::again(reason))
        }
    }
}

impl Notifier for HttpTemplate {
    fn name(&self) -> &'static str {
        "http"
    }

    fn send<'a>(&'a self, id: i64, phone: &'a str, message: &'a Message) -> BoxFuture<'a, Result<Receipt, SendError>> {
        Box::pin(self.send_one(id, phone, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    /// The worked examples of Aliyun's documentation: the SMS service's
    /// `SendSms` and the RPC signature page's `DescribeRegions`.
    #[test]
    fn the_aliyun_signature_matches_its_documentation_s_examples() {
        let send_sms = params(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        assert_eq!(aliyun_signature("GET", &send_sms, "testSecret"), "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        let describe_regions = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        assert_eq!(aliyun_signature("GET", &describe_regions, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        assert_eq!(pop_encode("a b*~"), "a%20b%2A~");
    }

    #[test]
    fn a_template_s_placeholders_are_escaped_for_where_they_stand() {
        assert_eq!(json_escape(r#"他说"好"\"#), r#"他说\"好\"\\"#);
        assert_eq!(form_escape("a&b=c 村"), "a%26b%3Dc%20%E6%9D%91");
    }
}
