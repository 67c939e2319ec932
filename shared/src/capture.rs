//! Recordings behind a provider's link, copied into the bucket before the link expires (Retell's last 24 h
//! or 10 min, Vapi's are short-lived). The webhook receiver stores the call at once with its recording
//! `pending` and queues a [`CaptureJob`]; the capture worker (feature `capture`) fetches the link and writes
//! the bytes as the call's recording object, which the bucket's object-created event then checks exactly
//! as it checks an upload (format, duration).
//!
//! What is fetched, and how ([`crate::config::Capture`]):
//! - `https://` only (plain `http://` to loopback when a test configures it; the template never does), on a
//!   host of the provider's allow-list, with no credentials in the URL; a redirect is followed (at most 3)
//!   only to an allowed host;
//! - within a time limit for the whole transfer and a size limit (the `Content-Length`, and the bytes
//!   counted as they arrive);
//! - streamed: parts of 8 MiB go to S3 as they fill (a multipart upload), so memory stays bounded
//!   whatever the file's size; a file under one part is one PutObject;
//! - the format is read from the first bytes (magic numbers), not from the link or its headers.
//!
//! A failure that may pass (a 404 or 5xx, a timeout, a reset) is retried by the queue, `attempts` times in
//! all; one that cannot (a host not allowed, too large, not audio) and the last try mark the recording
//! `failed` with the reason. The link itself is never logged (it carries the provider's signature): only
//! its host.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::Capture;
use crate::webhook::Provider;

/// One recording to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureJob {
    pub tenant: String,
    pub call_id: String,
    pub provider: Provider,
    pub url: String,
}

/// Why a link is not fetched at all.
pub fn refused(url: &str, provider: Provider, config: &Capture) -> Option<String> {
    let Ok(url) = Url::parse(url) else {
        return Some("the recording link is not a URL".into());
    };
    allowed(&url, provider, config).err()
}

/// The link's host when it may be fetched, else why not.
pub fn allowed(url: &Url, provider: Provider, config: &Capture) -> Result<String, String> {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    match url.scheme() {
        "https" => {}
        "http" if config.allow_loopback_http && loopback => {}
        other => return Err(format!("recording links must be https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("recording links may not carry credentials".into());
    }
    let on_list = config
        .hosts_of(provider)
        .iter()
        .any(|allowed| match allowed.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => *allowed == host,
        });
    if on_list {
        Ok(host)
    } else {
        Err(format!("host {host} is not on {provider}'s allow-list"))
    }
}

#[cfg(feature = "capture")]
pub use worker::{Captured, Fetcher};

#[cfg(feature = "capture")]
mod worker {
    use futures::StreamExt;

    use super::*;
    use crate::app::App;
    use crate::error::StoreError;
    use crate::ids::{CallId, TenantId};
    use crate::model::{RecordingStatus, StoredRecording};
    use crate::recording;
    use crate::store::calls::ForUpdate;
    use crate::validate::RecordingFormat;

    /// Bytes per multipart part (S3 wants at least 5 MiB for all but the last).
    const PART: usize = 8 * 1024 * 1024;

    /// Bytes enough to tell every format the API stores by its magic number.
    const SNIFF: usize = 64;

    /// What one try of a job did.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Captured {
        /// The bytes are the call's recording object at `key` (the object-created check follows).
        Stored { key: String, bytes: u64 },
        /// Nothing to do: the call is gone, opted out, or already has its recording.
        Skipped(&'static str),
        /// The recording is marked `failed` for this reason.
        Failed(String),
    }

    /// A failure of one try: worth another (`Retry`), or final.
    enum Fault {
        Retry(String),
        Final(String),
    }

    /// The HTTP client of the worker, built once per process.
    pub struct Fetcher {
        client: reqwest::Client,
    }

    impl Fetcher {
        pub fn new(config: &Capture) -> Result<Fetcher, StoreError> {
            let failed = |e: &dyn std::fmt::Display| StoreError::Failed(format!("capture client: {e}"));
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let policy_config = config.clone();
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(config.timeout)
                .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() >= 3 {
                        return attempt.stop();
                    }
                    // The provider is not known here: a redirect must stay on a host some provider's list
                    // names and keep the scheme rules; the job's own check ran on the first link.
                    let ok = Provider::ALL
                        .iter()
                        .any(|p| allowed(attempt.url(), *p, &policy_config).is_ok());
                    if ok {
                        attempt.follow()
                    } else {
                        attempt.stop()
                    }
                }))
                .build()
                .map_err(|e| failed(&e))?;
            Ok(Fetcher { client })
        }
    }

    fn sniff(head: &[u8]) -> Option<RecordingFormat> {
        [
            RecordingFormat::Wav,
            RecordingFormat::M4a,
            RecordingFormat::Ogg,
            RecordingFormat::Webm,
            RecordingFormat::Mp3,
        ]
        .into_iter()
        .find(|f| crate::audio::looks_like(f.as_str(), head))
    }

    impl App {
        /// One try of `job`, the `receive_count`-th (1 for the first). `Err` asks the queue for another
        /// try; on the last one a failure marks the recording `failed` instead.
        pub async fn capture(
            &self,
            fetcher: &Fetcher,
            job: &CaptureJob,
            receive_count: u32,
        ) -> Result<Captured, StoreError> {
            let bad = |e: String| StoreError::Failed(format!("capture job: {e}"));
            let tenant = TenantId::parse(&job.tenant).map_err(|e| bad(e.to_string()))?;
            let id = CallId::parse(&job.call_id).map_err(|e| bad(e.to_string()))?;
            let Some(read) = self.store.read_for_update(&tenant, &id).await? else {
                return Ok(Captured::Skipped("the call is gone"));
            };
            if let Some(skip) = nothing_to_do(&read) {
                return Ok(Captured::Skipped(skip));
            }
            let fault = match self.fetch_and_store(fetcher, job, &tenant, &id).await {
                Ok(captured) => return Ok(captured),
                Err(fault) => fault,
            };
            let reason = match fault {
                Fault::Retry(why) if receive_count < self.config.capture.attempts => {
                    tracing::warn!(call = %id, attempt = receive_count, reason = %why, "recording capture failed; retried");
                    return Err(StoreError::Unavailable(why));
                }
                Fault::Retry(why) => format!("{why} (after {receive_count} tries)"),
                Fault::Final(why) => why,
            };
            tracing::warn!(call = %id, reason = %reason, "recording capture failed");
            self.mark_failed(&tenant, &id, &reason).await?;
            Ok(Captured::Failed(reason))
        }

        async fn fetch_and_store(
            &self,
            fetcher: &Fetcher,
            job: &CaptureJob,
            tenant: &TenantId,
            id: &CallId,
        ) -> Result<Captured, Fault> {
            let config = &self.config.capture;
            let url = Url::parse(&job.url).map_err(|_| Fault::Final("the recording link is not a URL".into()))?;
            let host = allowed(&url, job.provider, config).map_err(Fault::Final)?;
            let response = fetcher
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| Fault::Retry(format!("fetching from {host}: {}", without_url(&e))))?;
            let status = response.status();
            if status.is_redirection() {
                return Err(Fault::Final(format!("{host} redirected to a host not allowed")));
            }
            if !status.is_success() {
                return Err(Fault::Retry(format!("{host} answered {}", status.as_u16())));
            }
            if response.content_length().is_some_and(|n| n > config.max_bytes) {
                return Err(Fault::Final(format!("larger than {} bytes", config.max_bytes)));
            }
            let mut stream = response.bytes_stream();
            let mut buffer: Vec<u8> = Vec::new();
            let mut total: u64 = 0;
            let mut target: Option<(RecordingFormat, String)> = None;
            let mut parts: Option<crate::store::s3::PartUpload> = None;
            let result: Result<(), Fault> = async {
                loop {
                    let chunk = match stream.next().await {
                        Some(chunk) => {
                            chunk.map_err(|e| Fault::Retry(format!("reading from {host}: {}", without_url(&e))))?
                        }
                        None => break,
                    };
                    total += chunk.len() as u64;
                    if total > config.max_bytes {
                        return Err(Fault::Final(format!("larger than {} bytes", config.max_bytes)));
                    }
                    buffer.extend_from_slice(&chunk);
                    if target.is_none() && buffer.len() >= SNIFF {
                        target = Some(self.claim(tenant, id, &buffer).await?);
                    }
                    if buffer.len() >= PART {
                        let (format, key) = target.as_ref().expect("claimed once the first bytes came");
                        if parts.is_none() {
                            let started = self
                                .recordings
                                .start_parts(key, format.content_type())
                                .await
                                .map_err(|e| Fault::Retry(e.to_string()))?;
                            parts = Some(started);
                        }
                        let part: Vec<u8> = buffer.drain(..PART).collect();
                        if let Some(upload) = parts.as_mut() {
                            upload.part(part).await.map_err(|e| Fault::Retry(e.to_string()))?;
                        }
                    }
                }
                Ok(())
            }
            .await;
            if let Err(fault) = result {
                if let Some(upload) = parts.take() {
                    upload.abort().await;
                }
                return Err(fault);
            }
            if total == 0 {
                return Err(Fault::Final("the recording link gave an empty file".into()));
            }
            let (format, key) = match target {
                Some(t) => t,
                None => self.claim(tenant, id, &buffer).await?,
            };
            match parts {
                Some(mut upload) => {
                    let done = async {
                        upload.part(buffer).await?;
                        upload.complete().await
                    };
                    done.await.map_err(|e| Fault::Retry(e.to_string()))?;
                }
                None => self
                    .recordings
                    .put(&key, buffer, format.content_type())
                    .await
                    .map_err(|e| Fault::Retry(e.to_string()))?,
            }
            tracing::info!(call = %id, host = %host, bytes = total, key = %key, "recording captured");
            Ok(Captured::Stored { key, bytes: total })
        }

        /// The format of the first bytes, and the call's recording `pending` at that format's key (so the
        /// object-created check finds the call waiting for it).
        async fn claim(&self, tenant: &TenantId, id: &CallId, head: &[u8]) -> Result<(RecordingFormat, String), Fault> {
            let format = sniff(head).ok_or_else(|| {
                Fault::Final("the recording link's bytes are not a wav, mp3, m4a, ogg or webm file".into())
            })?;
            let retry = |e: StoreError| Fault::Retry(e.to_string());
            for _ in 0..5 {
                let read = self
                    .store
                    .read_for_update(tenant, id)
                    .await
                    .map_err(retry)?
                    .ok_or_else(|| Fault::Final("the call is gone".into()))?;
                if let Some(skip) = nothing_to_do(&read) {
                    return Err(Fault::Final(skip.into()));
                }
                let key = recording::object_key(tenant, id, read.summary.created_at, format.as_str());
                let pending = StoredRecording::pending(Some(format.as_str()), Some(key.clone()));
                if recording::expires_at(&read.summary, &pending, self.config.retention) <= self.clock.now() {
                    return Err(Fault::Final(
                        "the call ended longer ago than recordings are kept".into(),
                    ));
                }
                if read.recording.as_ref() == Some(&pending) {
                    return Ok((format, key));
                }
                if self
                    .store
                    .update_recording(tenant, id, &read, &pending)
                    .await
                    .map_err(retry)?
                    .is_some()
                {
                    return Ok((format, key));
                }
            }
            Err(Fault::Retry("the call kept changing".into()))
        }

        async fn mark_failed(&self, tenant: &TenantId, id: &CallId, reason: &str) -> Result<(), StoreError> {
            for _ in 0..5 {
                let Some(read) = self.store.read_for_update(tenant, id).await? else {
                    return Ok(());
                };
                if nothing_to_do(&read).is_some() {
                    return Ok(());
                }
                let failed = StoredRecording::failed(reason);
                if self.store.update_recording(tenant, id, &read, &failed).await?.is_some() {
                    return Ok(());
                }
            }
            Err(StoreError::Unavailable(format!(
                "call {id}: recording not marked failed"
            )))
        }
    }

    /// Why a call needs no capture: opted out, or its recording is already there (or was, and expired).
    fn nothing_to_do(read: &ForUpdate) -> Option<&'static str> {
        if read.summary.opt_out_sensitive_data_storage {
            return Some("the call opted out of sensitive-data storage");
        }
        match read.recording.as_ref().map(|r| r.status) {
            Some(RecordingStatus::Completed) => Some("the recording is already stored"),
            Some(RecordingStatus::Expired) => Some("the recording's retention has ended"),
            _ => None,
        }
    }

    /// An HTTP error's text without the link (which carries the provider's signature).
    fn without_url(e: &reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "the body broke off"
        } else {
            "request failed"
        };
        kind.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Capture {
        Capture {
            hosts: [
                vec!["*.retellai.com".into(), "dxc03zgurdly9.cloudfront.net".into()],
                vec!["storage.vapi.ai".into()],
                vec![],
            ],
            ..Capture::default()
        }
    }

    #[test]
    fn only_https_links_on_the_providers_list_are_fetched() {
        let c = config();
        assert_eq!(refused("https://storage.vapi.ai/abc.wav", Provider::Vapi, &c), None);
        assert_eq!(
            refused("https://a.retellai.com/r.wav?sig=1", Provider::Retell, &c),
            None
        );
        assert_eq!(
            refused("https://dxc03zgurdly9.cloudfront.net/r.wav", Provider::Retell, &c),
            None
        );
        for (link, provider) in [
            ("http://storage.vapi.ai/abc.wav", Provider::Vapi),
            ("https://storage.vapi.ai.evil.com/abc.wav", Provider::Vapi),
            ("https://retellai.com/r.wav", Provider::Retell),
            ("https://xretellai.com/r.wav", Provider::Retell),
            ("https://storage.vapi.ai/abc.wav", Provider::Retell),
            ("https://user:pw@storage.vapi.ai/abc.wav", Provider::Vapi),
            ("ftp://storage.vapi.ai/abc.wav", Provider::Vapi),
            ("https://169.254.169.254/latest/meta-data", Provider::Vapi),
            ("not a url", Provider::Vapi),
            ("https://anything.example/x.mp3", Provider::ElevenLabs),
        ] {
            assert!(refused(link, provider, &c).is_some(), "{link}");
        }
    }

    #[test]
    fn loopback_http_only_when_configured_and_listed() {
        let mut c = config();
        c.hosts[1].push("127.0.0.1".into());
        assert!(refused("http://127.0.0.1:9/r.wav", Provider::Vapi, &c).is_some());
        c.allow_loopback_http = true;
        assert_eq!(refused("http://127.0.0.1:9/r.wav", Provider::Vapi, &c), None);
        assert!(refused("http://10.0.0.1/r.wav", Provider::Vapi, &c).is_some());
        assert!(refused("http://127.0.0.1:9/r.wav", Provider::Retell, &c).is_some());
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let job = CaptureJob {
            tenant: "acme".into(),
            call_id: "vapi:abc".into(),
            provider: Provider::Vapi,
            url: "https://storage.vapi.ai/abc.wav".into(),
        };
        let text = serde_json::to_string(&job).expect("json");
        assert!(text.contains("\"callId\":\"vapi:abc\""), "{text}");
        assert_eq!(serde_json::from_str::<CaptureJob>(&text).expect("json"), job);
    }
}
