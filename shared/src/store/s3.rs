//! Every S3 call, behind one adapter: presigned GET and PUT links, head and delete of a recording's object.
//! Presigning signs locally with the client's own credentials: no request leaves the process.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
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
    /// How long the signing credentials remain valid, when the SDK knows (a Lambda role's session
    /// credentials expire; a link signed with them dies with them). Whole seconds.
    async fn credentials_left(&self) -> Result<Duration, StoreError> {
        let Some(provider) = &self.credentials else {
            return Ok(Duration::MAX);
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
        Ok(match cached.as_ref().and_then(|c| c.expiry()) {
            Some(expiry) => Duration::from_secs(expiry.duration_since(SystemTime::now()).unwrap_or_default().as_secs()),
            None => Duration::MAX,
        })
    }

    /// A presigned GET link to `key`, valid from `now` for `ttl`.
    pub async fn presign_get(&self, key: &str, now: DateTime<Utc>, ttl: Duration) -> Result<Link, StoreError> {
        let (config, expires_at) = self.presigning(now, ttl).await?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Failed(format!("presign: {e}")))?;
        Ok(Link {
            url: request.uri().to_owned(),
            expires_at,
        })
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
        let (config, expires_at) = self.presigning(now, ttl).await?;
        let request: PresignedRequest = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Failed(format!("presign: {e}")))?;
        Ok(Upload {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            expires_at,
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

    /// A presigning configuration from `now` for `ttl` (capped by the credentials' life), and when the link
    /// stops working.
    async fn presigning(
        &self,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(PresigningConfig, DateTime<Utc>), StoreError> {
        let ttl = ttl.min(self.credentials_left().await?);
        if ttl < Duration::from_secs(1) {
            return Err(StoreError::Unavailable(
                "signing credentials are about to expire".into(),
            ));
        }
        // The signature starts at the injected clock's now, so the link's lifetime and `expiresAt` agree.
        let start = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                u64::try_from(now.timestamp()).map_err(|_| StoreError::Failed("time before 1970".into()))?,
            );
        let config = PresigningConfig::builder()
            .start_time(start)
            .expires_in(ttl)
            .build()
            .map_err(|e| StoreError::Failed(format!("presigning config: {e}")))?;
        let whole_seconds = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| StoreError::Failed(e.to_string()))?;
        let expires_at = whole_seconds
            .checked_add_signed(ttl)
            .ok_or_else(|| StoreError::Failed("link expiry out of range".into()))?;
        Ok((config, expires_at))
    }
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
