//! Checking an uploaded call recording and reading its duration (feature `audio`).
//!
//! Pure: the caller hands in the bytes as a symphonia [`MediaSource`] and gets back either what the
//! recording is ([`Audio`]) or why it was refused ([`Rejected`]), whose text goes to API users as the
//! recording's failure reason. Nothing is decoded: the container is demuxed only, so the cost is one
//! pass over the packets at most, and never when the container states the duration.
//!
//! Accepted claims: `wav`, `mp3`, `m4a` (AAC in ISO-BMFF), `ogg` (Vorbis or Opus) and `webm`
//! (Matroska). A file is refused unless its first bytes match the claimed format *and* symphonia reads
//! it as that format, so a renamed file never passes as another kind.

use std::io::{self, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};

use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::well_known::{
    FORMAT_ID_ISOMP4, FORMAT_ID_MKV, FORMAT_ID_MP3, FORMAT_ID_OGG, FORMAT_ID_WAVE,
};
use symphonia::core::formats::{FormatId, FormatOptions, FormatReader, MediaInfo, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions, SeekBuffered};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::{Duration, TimeBase};

/// What an accepted recording is.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Seconds, rounded to 3 decimals.
    pub duration: f64,
}

/// Why a recording was refused; the text is shown to API users as the recording's failure reason, so
/// it is short, plain English, with no internals.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

impl Rejected {
    fn new(reason: impl Into<String>) -> Self {
        Rejected(reason.into())
    }
}

/// Packets read at most when the container does not state the duration: bounds the work an upload can
/// cause (about 55 hours of 20 ms Opus packets, far past any call).
const MAX_PACKETS: u64 = 10_000_000;

/// Bytes read ahead for the magic-number check; every format's check needs 12 at most.
const HEAD_LEN: usize = 16;

/// The claimed formats and the symphonia reader each must be read by.
fn format_id(format: &str) -> Option<FormatId> {
    match format {
        "wav" => Some(FORMAT_ID_WAVE),
        "mp3" => Some(FORMAT_ID_MP3),
        "m4a" => Some(FORMAT_ID_ISOMP4),
        "ogg" => Some(FORMAT_ID_OGG),
        "webm" => Some(FORMAT_ID_MKV),
        _ => None,
    }
}

fn unsupported() -> Rejected {
    Rejected::new("unsupported format (expected wav, mp3, m4a, ogg or webm)")
}

fn mismatch(format: &str) -> Rejected {
    Rejected(format!(
        "not {} {format} file (bytes do not match the format)",
        article(format)
    ))
}

/// The article before a format's name as it is read aloud ("an mp3", "a wav").
fn article(format: &str) -> &'static str {
    match format {
        "mp3" | "m4a" | "ogg" => "an",
        _ => "a",
    }
}

/// Checks a recording claimed to be `format` and reads its duration.
///
/// `format` is one of "wav" | "mp3" | "m4a" | "ogg" | "webm" (anything else: [`Rejected`]). `source`
/// is any symphonia [`MediaSource`], seekable or not; `len` is the object's size in bytes, which the
/// readers are told even when the source cannot say it (a streamed body). An m4a whose index (`moov`)
/// follows its media data, as ffmpeg writes by default, can only be read from a seekable source.
/// Never panics on any input: every symphonia error becomes a [`Rejected`].
pub fn inspect(format: &str, source: Box<dyn MediaSource>, len: u64) -> Result<Audio, Rejected> {
    // symphonia 0.6.1 multiplies a WAV's channel count in 16 bits, which panics where overflow checks
    // are on (debug and test builds) for a header claiming thousands of channels; release builds wrap
    // and then refuse the count. Caught here so such a file is refused in every build that unwinds.
    // Nothing outlives the closure, so no state a panic left half-made can be seen.
    panic::catch_unwind(AssertUnwindSafe(|| examine(format, source, len)))
        .unwrap_or_else(|_| Err(Rejected(format!("not a readable {format} file"))))
}

fn examine(format: &str, source: Box<dyn MediaSource>, len: u64) -> Result<Audio, Rejected> {
    let expected = format_id(format).ok_or_else(unsupported)?;
    if len == 0 {
        return Err(Rejected::new("empty file"));
    }

    let mut stream = MediaSourceStream::new(
        Box::new(KnownLength { inner: source, len }),
        MediaSourceStreamOptions::default(),
    );
    let head = read_head(&mut stream).map_err(|_| Rejected::new("file could not be read"))?;
    if head.is_empty() {
        return Err(Rejected::new("empty file"));
    }
    if !looks_like(format, &head) {
        return Err(mismatch(format));
    }
    // The head is still in the stream's buffer: rewind to the start without touching the source,
    // which may not be seekable.
    if stream.seek_buffered(0) != 0 {
        return Err(Rejected::new("file could not be read"));
    }

    let mut hint = Hint::new();
    hint.with_extension(format);
    let mut reader = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .map_err(|_| Rejected(format!("not a readable {format} file")))?;
    // The probe skips bytes it does not recognise, so it may have found another format further in.
    if reader.format_info().format != expected {
        return Err(mismatch(format));
    }

    let track = reader
        .default_track(TrackType::Audio)
        .cloned()
        .ok_or_else(|| Rejected::new("no audio track"))?;
    let seconds = match stated_duration(&track, reader.media_info()) {
        Some(seconds) => seconds,
        None => scanned_duration(reader.as_mut(), &track)?,
    };
    if !seconds.is_finite() {
        return Err(Rejected::new("duration could not be read"));
    }
    let duration = (seconds * 1000.0).round() / 1000.0;
    if duration <= 0.0 {
        return Err(Rejected::new("recording has no audio (zero duration)"));
    }
    Ok(Audio { duration })
}

/// The magic-number check alone on the first bytes of a file (at least the first 12 when the file has
/// them): true when `head` starts like a `format` file.
///
/// wav: "RIFF", a size, "WAVE"; mp3: an "ID3" tag or an MPEG audio frame header of layer III; m4a: an
/// ISO-BMFF "ftyp" box first; ogg: "OggS"; webm: the EBML magic 1A 45 DF A3.
pub fn looks_like(format: &str, head: &[u8]) -> bool {
    match format {
        "wav" => head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE",
        "mp3" => head.starts_with(b"ID3") || is_mp3_frame_header(head),
        "m4a" => {
            head.len() >= 8
                && &head[4..8] == b"ftyp"
                // The box's size covers at least its own header.
                && u32::from_be_bytes([head[0], head[1], head[2], head[3]]) >= 8
        }
        "ogg" => head.starts_with(b"OggS"),
        "webm" => head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]),
        _ => false,
    }
}

/// An MPEG audio frame header (MPEG-1, 2 or 2.5) of layer III with no reserved or invalid field: an
/// 11-bit frame sync, a known version, layer III, a real bit rate (neither free nor the invalid
/// index 15, as symphonia reads neither), a known sample rate and a known emphasis.
fn is_mp3_frame_header(head: &[u8]) -> bool {
    let [b0, b1, b2, b3, ..] = *head else {
        return false;
    };
    let sync = b0 == 0xFF && b1 & 0xE0 == 0xE0;
    let version = (b1 >> 3) & 0b11; // 01 is reserved
    let layer = (b1 >> 1) & 0b11; // 01 is layer III
    let bitrate = b2 >> 4;
    let sample_rate = (b2 >> 2) & 0b11;
    let emphasis = b3 & 0b11;
    sync && version != 0b01
        && layer == 0b01
        && bitrate != 0
        && bitrate != 0xF
        && sample_rate != 0b11
        && emphasis != 0b10
}

/// The first bytes of the stream, fewer only when the stream is shorter.
fn read_head(stream: &mut MediaSourceStream<'_>) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    stream.by_ref().take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The duration the container states, in seconds: the track's playable frame count over its sample
/// rate, else the track's duration in its time base, else the whole media's (a Matroska segment
/// states only the latter). A stated zero is not taken at its word: a recorder that never finished
/// its header leaves one, so the packets are counted instead.
fn stated_duration(track: &Track, media: &MediaInfo) -> Option<f64> {
    let sample_rate = track
        .codec_params
        .as_ref()
        .and_then(|params| params.audio())
        .and_then(|params| params.sample_rate)
        .filter(|rate| *rate > 0);
    let from_frames = match (track.num_frames, sample_rate) {
        (Some(frames), Some(rate)) => Some(frames as f64 / f64::from(rate)),
        _ => None,
    };
    from_frames
        .or_else(|| seconds(track.time_base, track.duration))
        .or_else(|| seconds(media.time_base, media.duration))
        .filter(|seconds| *seconds > 0.0)
}

fn seconds(time_base: Option<TimeBase>, duration: Option<Duration>) -> Option<f64> {
    Some(time_base?.calc_duration(duration?)?.as_secs_f64())
}

/// The duration found by reading every packet of the track (without decoding it), for containers
/// that do not state one: the sum of the packets' durations in the track's time base or, where the
/// container gives packets a timestamp but no duration (Matroska's simple blocks, as a browser's
/// recorder writes them), the span of their timestamps plus one more packet's worth for the last.
///
/// The data ending inside a packet ends the scan once a packet has been read: a Matroska file
/// written live has no size to stop at, so its end is always met that way.
fn scanned_duration(reader: &mut dyn FormatReader, track: &Track) -> Result<f64, Rejected> {
    let time_base = track
        .time_base
        .ok_or_else(|| Rejected::new("duration could not be read"))?;
    let mut read: u64 = 0;
    let mut seen: u64 = 0;
    let mut summed: u64 = 0;
    let mut first: i128 = 0;
    let mut last: i128 = 0;
    let mut gap: i128 = 0;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
                if seen > 0 {
                    break;
                }
                return Err(Rejected::new("file is truncated"));
            }
            Err(_) => return Err(Rejected::new("recording is damaged")),
        };
        read += 1;
        if read > MAX_PACKETS {
            return Err(Rejected::new("recording is too long to measure"));
        }
        if packet.track_id != track.id {
            continue;
        }
        let pts = i128::from(packet.pts.get());
        if seen == 0 {
            (first, last) = (pts, pts);
        } else if pts > last {
            (gap, last) = (pts - last, pts);
        } else {
            first = first.min(pts);
        }
        seen += 1;
        summed = summed.saturating_add(packet.dur.get());
    }
    let ticks = if summed > 0 {
        summed
    } else if seen > 0 {
        // Timestamps before zero are the encoder's priming, not heard.
        let span = last + gap - first.max(0);
        u64::try_from(span).unwrap_or(0)
    } else {
        0
    };
    let time = time_base
        .calc_duration(Duration::new(ticks))
        .ok_or_else(|| Rejected::new("duration could not be read"))?;
    Ok(time.as_secs_f64())
}

/// A source that reports the object's size even when it cannot tell it itself (a streamed body), so
/// the readers that use the size to find their way about the file get it.
struct KnownLength {
    inner: Box<dyn MediaSource>,
    len: u64,
}

impl Read for KnownLength {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for KnownLength {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl MediaSource for KnownLength {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use symphonia::core::io::ReadOnlySource;

    /// A seekable source over bytes, as an object read into memory.
    fn seekable(bytes: &[u8]) -> Box<dyn MediaSource> {
        Box::new(Cursor::new(bytes.to_vec()))
    }

    /// A source that cannot seek, as a streamed body.
    fn streamed(bytes: &[u8]) -> Box<dyn MediaSource> {
        Box::new(ReadOnlySource::new(Cursor::new(bytes.to_vec())))
    }

    fn check(format: &str, bytes: &[u8]) -> Result<Audio, Rejected> {
        inspect(format, seekable(bytes), bytes.len() as u64)
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    /// A canonical PCM WAV: 16-bit mono at `rate` Hz, `frames` samples of a square wave.
    fn pcm_wav(rate: u32, frames: u32) -> Vec<u8> {
        let data_len = frames * 2;
        let mut wav = Vec::with_capacity(44 + data_len as usize);
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data_len).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
        wav.extend_from_slice(&1u16.to_le_bytes()); // mono
        wav.extend_from_slice(&rate.to_le_bytes());
        wav.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
        wav.extend_from_slice(&2u16.to_le_bytes()); // block align
        wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..frames {
            let sample: i16 = if (i / 10) % 2 == 0 { 8000 } else { -8000 };
            wav.extend_from_slice(&sample.to_le_bytes());
        }
        wav
    }

    /// Deterministic noise (xorshift), so a failure reproduces.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    const FORMATS: [&str; 5] = ["wav", "mp3", "m4a", "ogg", "webm"];

    fn rejected(reason: &str) -> Result<Audio, Rejected> {
        Err(Rejected(reason.to_owned()))
    }

    #[test]
    fn pcm_wav_duration_is_exact() {
        let wav = pcm_wav(8000, 20_000);
        assert_eq!(check("wav", &wav), Ok(Audio { duration: 2.5 }));
    }

    #[test]
    fn pcm_wav_from_a_stream_that_cannot_seek() {
        let wav = pcm_wav(8000, 20_000);
        let got = inspect("wav", streamed(&wav), wav.len() as u64);
        assert_eq!(got, Ok(Audio { duration: 2.5 }));
    }

    #[test]
    fn wav_claimed_as_mp3_is_rejected() {
        let wav = pcm_wav(8000, 20_000);
        assert_eq!(
            check("mp3", &wav),
            rejected("not an mp3 file (bytes do not match the format)")
        );
    }

    #[test]
    fn empty_file_is_rejected() {
        for format in FORMATS {
            assert_eq!(check(format, &[]), rejected("empty file"), "{format}");
        }
        // A size that says otherwise does not make an empty body acceptable.
        assert_eq!(inspect("wav", seekable(&[]), 100), rejected("empty file"));
    }

    #[test]
    fn unknown_format_is_rejected() {
        let wav = pcm_wav(8000, 800);
        for format in ["flac", "WAV", "", "wav "] {
            assert_eq!(check(format, &wav), Err(unsupported()), "{format:?}");
            assert!(!looks_like(format, &wav), "{format:?}");
        }
    }

    #[test]
    fn random_bytes_are_rejected_for_every_format() {
        for seed in 1..=20 {
            let bytes = noise(seed, 4096);
            for format in FORMATS {
                assert!(check(format, &bytes).is_err(), "{format}, seed {seed}");
            }
        }
    }

    #[test]
    fn random_bytes_behind_the_right_magic_are_rejected() {
        let heads: [(&str, &[u8]); 5] = [
            ("wav", b"RIFF\x00\x10\x00\x00WAVE"),
            ("mp3", b"ID3"),
            ("m4a", b"\x00\x00\x00\x18ftyp"),
            ("ogg", b"OggS"),
            ("webm", b"\x1a\x45\xdf\xa3"),
        ];
        for seed in 1..=20 {
            for (format, head) in heads {
                let mut bytes = head.to_vec();
                bytes.extend(noise(seed, 4096));
                assert!(looks_like(format, &bytes), "{format}");
                assert!(check(format, &bytes).is_err(), "{format}, seed {seed}");
            }
        }
    }

    #[test]
    fn truncated_wav_header_is_rejected() {
        let wav = pcm_wav(8000, 20_000);
        for cut in [1, 4, 11, 12, 20, 30, 36, 40, 43] {
            let got = check("wav", &wav[..cut]);
            assert!(got.is_err(), "cut at {cut}: {got:?}");
        }
    }

    #[test]
    fn wav_claiming_thousands_of_channels_is_rejected() {
        let mut wav = pcm_wav(8000, 800);
        wav[22..24].copy_from_slice(&0x8000u16.to_le_bytes());
        assert_eq!(check("wav", &wav), rejected("not a readable wav file"));
    }

    #[test]
    fn wav_with_no_samples_is_rejected() {
        let wav = pcm_wav(8000, 0);
        assert_eq!(check("wav", &wav), rejected("recording has no audio (zero duration)"));
    }

    #[test]
    fn looks_like_checks_the_magic_numbers() {
        assert!(looks_like("wav", b"RIFF\x24\x00\x00\x00WAVEfmt "));
        assert!(!looks_like("wav", b"RIFF\x24\x00\x00\x00AVI LIST"));
        assert!(!looks_like("wav", b"RIFF\x24\x00\x00\x00WAV"));
        assert!(looks_like("mp3", b"ID3\x04\x00\x00\x00\x00\x00\x0a"));
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz; MPEG-2 layer III, 32 kbit/s, 16 kHz.
        assert!(looks_like("mp3", &[0xFF, 0xFB, 0x90, 0x64]));
        assert!(looks_like("mp3", &[0xFF, 0xF3, 0x48, 0xC4]));
        assert!(!looks_like("mp3", &[0xFF, 0xFD, 0x90, 0x64]), "layer II");
        assert!(!looks_like("mp3", &[0xFF, 0xEB, 0x90, 0x64]), "reserved version");
        assert!(!looks_like("mp3", &[0xFF, 0xFB, 0xF0, 0x64]), "bad bit rate");
        assert!(!looks_like("mp3", &[0xFF, 0xFB, 0x9C, 0x64]), "reserved sample rate");
        assert!(!looks_like("mp3", &[0xFF, 0xFB, 0x90, 0x66]), "reserved emphasis");
        assert!(!looks_like("mp3", &[0xFF, 0xFB, 0x90]), "short");
        assert!(looks_like("m4a", b"\x00\x00\x00\x1cftypM4A "));
        assert!(!looks_like("m4a", b"\x00\x00\x00\x1cmoov\x00\x00"));
        assert!(!looks_like("m4a", b"\x00\x00\x00\x00ftypM4A "));
        assert!(looks_like("ogg", b"OggS\x00\x02"));
        assert!(!looks_like("ogg", b"oggs\x00\x02"));
        assert!(looks_like("webm", &[0x1A, 0x45, 0xDF, 0xA3, 0x9F]));
        assert!(!looks_like("webm", &[0x1A, 0x45, 0xDF]));
        for format in FORMATS {
            assert!(!looks_like(format, &[]), "{format}");
        }
    }

    // Fixtures: a 440 Hz tone from ffmpeg (fixtures/audio/README.md has the commands); the lossy ones
    // last 1.5 s. What a container states, or its packets add up to, differs from the tone's length by
    // the encoder's padding: symphonia's MP4 reader counts AAC's 1024 priming samples (64 ms at
    // 16 kHz, the largest here) as it ignores the edit list; Opus adds a 6.5 ms pre-skip; Matroska
    // times to the millisecond and a live-written file's last 20 ms packet is estimated. 0.1 s covers
    // all of them and still tells a 1.5 s file from a 1.4 or 1.6 s one.
    const LOSSY_TOLERANCE: f64 = 0.1;

    fn fixture_duration(format: &str, name: &str, source: Box<dyn MediaSource>) -> f64 {
        let len = fixture(name).len() as u64;
        match inspect(format, source, len) {
            Ok(audio) => audio.duration,
            Err(err) => panic!("{name}: {err}"),
        }
    }

    /// The fixture's duration, the same whether its source can seek or not.
    fn assert_near(format: &str, name: &str, want: f64) {
        let bytes = fixture(name);
        let from_file = fixture_duration(format, name, seekable(&bytes));
        let from_stream = fixture_duration(format, name, streamed(&bytes));
        assert!(
            (from_file - want).abs() <= LOSSY_TOLERANCE,
            "{name}: {from_file} s, want {want} s"
        );
        assert!(
            (from_stream - want).abs() <= LOSSY_TOLERANCE,
            "{name} streamed: {from_stream} s, want {want} s"
        );
    }

    #[test]
    fn wav_fixture_duration_is_exact() {
        let bytes = fixture("tone.wav");
        assert_eq!(check("wav", &bytes), Ok(Audio { duration: 1.0 }));
        let streamed = inspect("wav", streamed(&bytes), bytes.len() as u64);
        assert_eq!(streamed, Ok(Audio { duration: 1.0 }));
    }

    #[test]
    fn mp3_fixture_duration() {
        assert_near("mp3", "tone.mp3", 1.5);
    }

    #[test]
    fn m4a_fixture_duration() {
        let bytes = fixture("tone.m4a");
        let got = fixture_duration("m4a", "tone.m4a", seekable(&bytes));
        assert!((got - 1.5).abs() <= LOSSY_TOLERANCE, "{got} s");
        assert_near("m4a", "tone-faststart.m4a", 1.5);
    }

    #[test]
    fn m4a_with_its_index_last_needs_a_seekable_source() {
        let bytes = fixture("tone.m4a");
        let got = inspect("m4a", streamed(&bytes), bytes.len() as u64);
        assert_eq!(got, rejected("not a readable m4a file"));
    }

    #[test]
    fn ogg_vorbis_fixture_duration() {
        assert_near("ogg", "tone.ogg", 1.5);
    }

    #[test]
    fn ogg_opus_fixture_duration() {
        assert_near("ogg", "tone-opus.ogg", 1.5);
    }

    #[test]
    fn webm_fixture_duration() {
        assert_near("webm", "tone.webm", 1.5);
    }

    /// Written to a pipe, as a browser's recorder writes: no duration in the header and no packet
    /// durations, so the duration comes from the packets' timestamps.
    #[test]
    fn live_webm_fixture_duration() {
        assert_near("webm", "tone-live.webm", 1.5);
    }

    /// A lone MP3 frame header, junk, then a whole file of another format: the probe skips the junk
    /// and finds that format, which is not what was claimed.
    #[test]
    fn another_format_behind_the_claimed_magic_is_rejected() {
        for name in ["tone.wav", "tone.ogg", "tone.webm"] {
            let mut bytes = vec![0xFF, 0xFB, 0x90, 0x64];
            bytes.extend(noise(7, 64));
            bytes.extend(fixture(name));
            assert_eq!(check("mp3", &bytes), Err(mismatch("mp3")), "{name}");
        }
    }

    #[test]
    fn fixture_claimed_as_another_format_is_rejected() {
        let files = [
            ("wav", "tone.wav"),
            ("mp3", "tone.mp3"),
            ("m4a", "tone.m4a"),
            ("ogg", "tone.ogg"),
            ("webm", "tone.webm"),
        ];
        for (actual, name) in files {
            let bytes = fixture(name);
            for claim in FORMATS.into_iter().filter(|claim| *claim != actual) {
                assert_eq!(check(claim, &bytes), Err(mismatch(claim)), "{name} as {claim}");
            }
        }
        assert_eq!(
            check("m4a", &fixture("tone.ogg")),
            rejected("not an m4a file (bytes do not match the format)")
        );
    }

    /// Cut short or with bytes overwritten, a real file is either read or refused, never a panic.
    #[test]
    fn damaged_fixtures_never_panic() {
        let files = [
            ("wav", "tone.wav"),
            ("mp3", "tone.mp3"),
            ("m4a", "tone.m4a"),
            ("m4a", "tone-faststart.m4a"),
            ("ogg", "tone.ogg"),
            ("ogg", "tone-opus.ogg"),
            ("webm", "tone.webm"),
            ("webm", "tone-live.webm"),
        ];
        for (format, name) in files {
            let bytes = fixture(name);
            for cut in (0..bytes.len()).step_by(97) {
                let _ = check(format, &bytes[..cut]);
                let _ = inspect(format, streamed(&bytes[..cut]), cut as u64);
            }
            for seed in 1..=40u64 {
                let mut damaged = bytes.clone();
                let spots = noise(seed, 24);
                for pair in spots.chunks(3) {
                    let at = (usize::from(pair[0]) << 8 | usize::from(pair[1])) % damaged.len();
                    damaged[at] = pair[2];
                }
                let _ = check(format, &damaged);
            }
        }
    }
}
