//! Every S3 call, behind one adapter: presigned GET and PUT links, head and delete of a recording's object.
//! Presigning signs locally with the client's own credentials: no request leaves the process.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_http::label::{fmt_string, EncodingStrategy};
use aws_smithy_http::query_writer::QueryWriter;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::error::StoreError;

/// A presigned PUT: where to send the bytes, the headers the upload must carry, and when the link ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// Throttling and 5xx from S3 are worth a retry later (503); anything else is a failure.
fn s3_error<E, R>(op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let unavailable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => matches!(
            e.err().code(),
            Some("SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout")
        ),
        _ => false,
    };
    let text = format!("{op}: {}", DisplayErrorContext(&err));
    if unavailable {
        StoreError::Unavailable(text)
    } else {
        StoreError::Failed(text)
    }
}

/// A presigned GET link and the real moment it stops working.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// The recordings bucket.
#[derive(Debug, Clone)]
pub struct S3Recordings {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// The provider the client signs with, to learn when its credentials expire.
    credentials: Option<SharedCredentialsProvider>,
    cached: Arc<Mutex<Option<Credentials>>>,
    /// The in-process signer of GET links, once the first link has shown whether it signs as the client does.
    links: Arc<OnceLock<Option<LinkSigner>>>,
}

/// Credentials this close to their expiry are fetched anew.
const CREDENTIALS_REFRESH: Duration = Duration::from_secs(300);

impl S3Recordings {
    /// `credentials`: the provider `client` signs with (from the `SdkConfig` it was built from).
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        S3Recordings {
            client,
            bucket: bucket.into(),
            credentials,
            cached: Arc::default(),
            links: Arc::default(),
        }
    }

    /// The client, for set-up (creating the bucket) and tests.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl S3Recordings {
    /// The credentials links are signed with, and how long they remain valid when the SDK knows (a Lambda
    /// role's session credentials expire; a link signed with them dies with them). Whole seconds.
    async fn signing_credentials(&self) -> Result<(Duration, Option<Credentials>), StoreError> {
        let Some(provider) = &self.credentials else {
            return Ok((Duration::MAX, None));
        };
        let mut cached = self.cached.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|c| c.expiry().is_none_or(|e| e > SystemTime::now() + CREDENTIALS_REFRESH));
        if !fresh {
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| StoreError::Unavailable(format!("signing credentials: {e}")))?;
            *cached = Some(credentials);
        }
        let left = match cached.as_ref().and_then(|c| c.expiry()) {
            Some(expiry) => Duration::from_secs(expiry.duration_since(SystemTime::now()).unwrap_or_default().as_secs()),
            None => Duration::MAX,
        };
        Ok((left, cached.clone()))
    }

    /// A presigned GET link to `key`, valid from `now` for `ttl`: from the in-process signer once it has
    /// shown that it makes the client's links ([`LinkSigner`]), from the client until then.
    pub async fn presign_get(&self, key: &str, now: DateTime<Utc>, ttl: Duration) -> Result<Link, StoreError> {
        let window = self.window(now, ttl).await?;
        let expires_at = window.expires_at;
        if let Some(url) = self
            .links
            .get()
            .and_then(Option::as_ref)
            .and_then(|s| s.sign(key, &window))
        {
            return Ok(Link { url, expires_at });
        }
        let url = self.client_get_link(key, &window).await?;
        self.links.get_or_init(|| {
            let region = self.client.config().region().map(|r| r.as_ref().to_owned());
            let signer = region.and_then(|region| LinkSigner::learn(&url, key, region, &window));
            if signer.is_none() {
                tracing::warn!("recording links are presigned through the S3 client: the in-process signer did not make the same link");
            }
            signer
        });
        Ok(Link { url, expires_at })
    }

    /// A GET link to `key` presigned by the S3 client, for `window`.
    async fn client_get_link(&self, key: &str, window: &Window) -> Result<String, StoreError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(window.config()?)
            .await
            .map_err(|e| StoreError::Failed(format!("presign: {e}")))?;
        Ok(request.uri().to_owned())
    }

    /// A presigned PUT of `key`, valid from `now` for `ttl`, bound to `content_type` and `content_length`:
    /// the upload must send exactly those headers ([`Upload::headers`]).
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: i64,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Upload, StoreError> {
        let window = self.window(now, ttl).await?;
        let request: PresignedRequest = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length)
            .presigned(window.config()?)
            .await
            .map_err(|e| StoreError::Failed(format!("presign: {e}")))?;
        Ok(Upload {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            expires_at: window.expires_at,
        })
    }

    /// The size of `key`'s object, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<i64>, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.content_length.unwrap_or(0))),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(None),
            Err(e) => Err(s3_error("HeadObject", e)),
        }
    }

    /// Stores `bytes` as `key`'s object (a recording that arrived inside a webhook delivery).
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(())
    }

    /// Starts an upload of `key`'s object in parts (a copied recording, streamed): see [`PartUpload`].
    pub async fn start_parts(&self, key: &str, content_type: &str) -> Result<PartUpload, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", e))?;
        let upload_id = out
            .upload_id
            .ok_or_else(|| StoreError::Failed("CreateMultipartUpload: no upload id".into()))?;
        Ok(PartUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            parts: Vec::new(),
        })
    }

    /// Deletes `key`'s object; deleting one that is already gone succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", e))?;
        Ok(())
    }

    /// The window of a link from `now` for `ttl` (capped by the credentials' life), and the credentials.
    async fn window(&self, now: DateTime<Utc>, ttl: Duration) -> Result<Window, StoreError> {
        let (left, credentials) = self.signing_credentials().await?;
        let ttl = ttl.min(left);
        if ttl < Duration::from_secs(1) {
            return Err(StoreError::Unavailable(
                "signing credentials are about to expire".into(),
            ));
        }
        // The signature starts at the injected clock's now, so the link's lifetime and `expiresAt` agree.
        let seconds = u64::try_from(now.timestamp()).map_err(|_| StoreError::Failed("time before 1970".into()))?;
        let whole_seconds = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let expires_at = whole_seconds
            .checked_add_signed(chrono::Duration::from_std(ttl).map_err(|e| StoreError::Failed(e.to_string()))?)
            .ok_or_else(|| StoreError::Failed("link expiry out of range".into()))?;
        Ok(Window {
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
            ttl,
            expires_at,
            credentials,
        })
    }
}

/// When a link's signature starts, how long it lasts, when it stops working, and what signs it.
struct Window {
    start: SystemTime,
    ttl: Duration,
    expires_at: DateTime<Utc>,
    credentials: Option<Credentials>,
}

impl Window {
    /// The client's presigning configuration for this window.
    fn config(&self) -> Result<PresigningConfig, StoreError> {
        PresigningConfig::builder()
            .start_time(self.start)
            .expires_in(self.ttl)
            .build()
            .map_err(|e| StoreError::Failed(format!("presigning config: {e}")))
    }
}

/// GET links signed in process with the SDK's SigV4 signer, without the client's request pipeline (its
/// endpoint rules, interceptors and identity resolution run for every link and took most of get-call's time
/// outside DynamoDB). The bucket's address comes from a link the client made, and the signer is used only
/// once it has made that same link, byte for byte: a configuration it does not sign as the client does
/// (another endpoint scheme, a new SDK) keeps the client's links.
#[derive(Debug, Clone, PartialEq)]
struct LinkSigner {
    /// Everything before the object's key: `https://bucket.s3.eu-west-1.amazonaws.com`, or path-style
    /// `http://127.0.0.1:4566/bucket`.
    base: String,
    region: String,
}

impl LinkSigner {
    /// The signer that makes `client_link`, the client's link to `key` for `window`, or `None`.
    fn learn(client_link: &str, key: &str, region: String, window: &Window) -> Option<LinkSigner> {
        let (address, _) = client_link.split_once('?')?;
        let base = address.strip_suffix(&object_path(key))?.to_owned();
        let signer = LinkSigner { base, region };
        (signer.sign(key, window).as_deref() == Some(client_link)).then_some(signer)
    }

    /// A GET link to `key` for `window` as the client presigns it (the same query, `x-id` first; an unsigned
    /// payload; the path neither normalised nor encoded twice), or `None` without credentials.
    fn sign(&self, key: &str, window: &Window) -> Option<String> {
        let identity: Identity = window.credentials.clone()?.into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        settings.expires_in = Some(window.ttl);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(window.start)
            .settings(settings)
            .build()
            .ok()?
            .into();
        let unsigned = format!("{}{}?x-id=GetObject", self.base, object_path(key));
        let request = SignableRequest::new("GET", &unsigned, std::iter::empty(), SignableBody::UnsignedPayload).ok()?;
        let (instructions, _) = aws_sigv4::http_request::sign(request, &params).ok()?.into_parts();
        let (_, query) = instructions.into_parts();
        let mut link = QueryWriter::new_from_string(&unsigned).ok()?;
        for (name, value) in query {
            link.insert(name, &value);
        }
        Some(link.build_uri().to_string())
    }
}

/// `/` and the object key as the client writes it in a request's path.
fn object_path(key: &str) -> String {
    format!("/{}", fmt_string(key, EncodingStrategy::Greedy))
}

/// An object written in parts (S3 multipart upload): every part but the last at least 5 MiB. Nothing is
/// visible until [`PartUpload::complete`]; [`PartUpload::abort`] removes what was sent.
pub struct PartUpload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<aws_sdk_s3::types::CompletedPart>,
}

impl PartUpload {
    pub async fn part(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        let number = i32::try_from(self.parts.len() + 1).map_err(|_| StoreError::Failed("too many parts".into()))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("UploadPart", e))?;
        self.parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }

    pub async fn complete(self) -> Result<(), StoreError> {
        let parts = aws_sdk_s3::types::CompletedMultipartUpload::builder()
            .set_parts(Some(self.parts))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", e))?;
        Ok(())
    }

    pub async fn abort(self) {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = result {
            // The bucket's lifecycle rule removes incomplete uploads in any case.
            tracing::warn!(key = %self.key, error = %DisplayErrorContext(&e), "abort of a multipart upload failed");
        }
    }
}

/// Bytes fetched per ranged GET when a recording is read in place.
#[cfg(feature = "audio")]
const READ_WINDOW: u64 = 1024 * 1024;

/// A recording object read in place with ranged GETs, one window at a time, as a blocking `Read + Seek`:
/// what the recording check hands the audio reader, so that a file of any size is checked in bounded
/// memory and a container whose index is at its end (MP4) costs one more request, not the whole file.
/// Use it from a blocking thread (`tokio::task::spawn_blocking`): each fetch waits on the runtime.
#[cfg(feature = "audio")]
pub struct RangeReader {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    len: u64,
    pos: u64,
    window_start: u64,
    window: Vec<u8>,
    runtime: tokio::runtime::Handle,
    /// Ranged GETs made so far.
    pub requests: u32,
}

#[cfg(feature = "audio")]
impl S3Recordings {
    /// A reader of `key`'s `len` bytes, fetching through the current runtime.
    pub fn range_reader(&self, key: &str, len: u64) -> RangeReader {
        RangeReader {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            len,
            pos: 0,
            window_start: 0,
            window: Vec::new(),
            runtime: tokio::runtime::Handle::current(),
            requests: 0,
        }
    }
}

#[cfg(feature = "audio")]
impl RangeReader {
    fn fetch(&mut self, start: u64) -> std::io::Result<()> {
        let end = (start + READ_WINDOW).min(self.len) - 1;
        let get = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={start}-{end}"));
        let bytes = self.runtime.block_on(async {
            let out = get.send().await.map_err(|e| s3_error("GetObject", e).to_string())?;
            out.body
                .collect()
                .await
                .map(|b| b.into_bytes())
                .map_err(|e| format!("GetObject body: {e}"))
        });
        self.requests += 1;
        let bytes = bytes.map_err(std::io::Error::other)?;
        self.window_start = start;
        self.window = bytes.to_vec();
        Ok(())
    }
}

#[cfg(feature = "audio")]
impl std::io::Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let in_window = self.pos >= self.window_start && self.pos < self.window_start + self.window.len() as u64;
        if !in_window {
            self.fetch(self.pos)?;
            if self.window.is_empty() {
                return Ok(0);
            }
        }
        let offset = (self.pos - self.window_start) as usize;
        let n = buf.len().min(self.window.len() - offset);
        buf[..n].copy_from_slice(&self.window[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(feature = "audio")]
impl std::io::Seek for RangeReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target =
            target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(feature = "audio")]
impl symphonia::core::io::MediaSource for RangeReader {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use aws_config::SdkConfig;
    use aws_sdk_s3::config::Region;

    use super::*;

    /// Keys with every kind of character a path can hold: what the client percent-encodes, what it leaves.
    const KEYS: [&str; 6] = [
        "recordings/2025/03/01/acme/call_1.wav",
        "recordings/2025/03/01/acme/call with spaces+plus=eq&amp.mp3",
        "recordings/a//double/slash/./dot/../up",
        "recordings/ünïcödé/通话/émoji-📞.wav",
        "recordings/~tilde/percent%41/quote'/star*/colon:/at@/comma,/semi;",
        "recordings/bracket[]/brace{}/pipe|/caret^/back`tick/hash#/question?",
    ];

    fn recordings(region: &str, endpoint: Option<&str>, path_style: bool, token: Option<&str>) -> S3Recordings {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            Some(SystemTime::now() + Duration::from_secs(6 * 3600)),
            "test",
        );
        let mut sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(credentials));
        if let Some(url) = endpoint {
            sdk = sdk.endpoint_url(url);
        }
        let sdk = sdk.build();
        S3Recordings::new(
            crate::aws::s3(&sdk, path_style),
            "callrecords-recordings-123456789012",
            sdk.credentials_provider(),
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T10:20:30.456Z")
            .unwrap()
            .to_utc()
    }

    /// In every addressing style, with and without a session token, the in-process signer makes the very
    /// link the client makes, for every kind of key.
    #[tokio::test]
    async fn the_in_process_signer_makes_the_clients_link_for_every_key_and_endpoint() {
        let setups = [
            ("eu-west-1", None, false, None),
            ("us-east-1", None, false, Some("session/token+with=odd&chars")),
            ("ap-southeast-2", None, true, None),
            ("us-east-1", Some("http://127.0.0.1:4566"), true, None),
            (
                "us-east-1",
                Some("https://s3.internal.example:8443/prefix"),
                true,
                Some("token"),
            ),
            ("eu-central-1", Some("https://objects.example"), false, None),
        ];
        for (region, endpoint, path_style, token) in setups {
            let recordings = recordings(region, endpoint, path_style, token);
            let window = recordings.window(now(), Duration::from_secs(3600)).await.unwrap();
            let first = recordings.client_get_link(KEYS[0], &window).await.unwrap();
            let signer = LinkSigner::learn(&first, KEYS[0], region.to_owned(), &window)
                .unwrap_or_else(|| panic!("{region} {endpoint:?} {path_style}: {first}"));
            for key in KEYS {
                let client = recordings.client_get_link(key, &window).await.unwrap();
                assert_eq!(signer.sign(key, &window).as_deref(), Some(client.as_str()), "{key}");
            }
            assert!(first.contains("X-Amz-Expires=3600"), "{first}");
            assert_eq!(first.contains("X-Amz-Security-Token"), token.is_some(), "{first}");
        }
    }

    /// The first link comes from the client and teaches the signer; the next come from the signer, and a
    /// link it cannot reproduce leaves the client in charge.
    #[tokio::test]
    async fn presign_get_learns_the_signer_from_its_first_link_and_refuses_one_it_cannot_make() {
        let recordings = recordings("eu-west-1", None, false, None);
        assert!(recordings.links.get().is_none());
        let first = recordings
            .presign_get(KEYS[0], now(), Duration::from_secs(3600))
            .await
            .unwrap();
        let signer = recordings.links.get().cloned().flatten().expect("a signer");
        assert_eq!(
            signer.base,
            "https://callrecords-recordings-123456789012.s3.eu-west-1.amazonaws.com"
        );
        let later = recordings
            .presign_get(KEYS[1], now(), Duration::from_secs(60))
            .await
            .unwrap();
        let window = recordings.window(now(), Duration::from_secs(60)).await.unwrap();
        assert_eq!(later.url, recordings.client_get_link(KEYS[1], &window).await.unwrap());
        assert_eq!(
            later.expires_at - first.expires_at,
            chrono::Duration::seconds(60 - 3600)
        );

        let tampered = first.url.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601");
        let window = recordings.window(now(), Duration::from_secs(3600)).await.unwrap();
        assert_eq!(LinkSigner::learn(&tampered, KEYS[0], "eu-west-1".into(), &window), None);
        assert_eq!(
            LinkSigner::learn(&first.url, KEYS[1], "eu-west-1".into(), &window),
            None
        );
        assert_eq!(
            LinkSigner::learn(&first.url, KEYS[0], "eu-west-2".into(), &window),
            None
        );
        let without = Window {
            credentials: None,
            ..window
        };
        assert_eq!(signer.sign(KEYS[0], &without), None);
    }
}
