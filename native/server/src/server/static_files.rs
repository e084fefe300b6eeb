//! Static files answered by the I/O thread without Python
//! (`--static-path-route` / `--static-path-mount`, granian's flags).
//!
//! A request whose path is under a route is answered here on HTTP/1.1 and
//! HTTP/2: GET and HEAD only (else 405), 404 for anything that is not a
//! regular file inside the mount, conditional requests (`If-None-Match`,
//! `If-Modified-Since`, RFC 9110 §13), one byte range (`Range`, `If-Range`,
//! RFC 9110 §14) and precompressed `.br` / `.gz` siblings chosen by
//! `Accept-Encoding`.
//!
//! Traversal: the path is percent-decoded once and split on `/`; `..`
//! segments, encoded `/` or `\`, backslashes and NUL are refused, and the
//! file found is canonicalized and must still be inside the canonical mount
//! (so a symlink pointing out of the mount is a 404).
//!
//! The decisions are pure functions ([`StaticFiles::route`], [`sanitize`],
//! [`evaluate`]); [`StaticFiles::respond`] does the file system work.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cormorant_core::http;

use super::file::BodyFile;

/// Longest path below a route looked at, in bytes (longer: 404): more
/// than any real file name needs, and bounds the work per request.
const MAX_PATH_LEN: usize = 4096;

/// The static routes of a worker.
#[derive(Debug)]
pub struct StaticFiles {
    mounts: Vec<Mount>,
    /// `cache-control: max-age=...`, or None for no header.
    cache_control: Option<Bytes>,
}

#[derive(Debug)]
struct Mount {
    /// The URL prefix, without a trailing `/`.
    route: Vec<u8>,
    /// The directory, canonical.
    dir: PathBuf,
}

/// A request to a static route, as far as the answer depends on it.
#[derive(Debug, Default)]
pub struct StaticRequest<'a> {
    pub method: &'a [u8],
    pub accept_encoding: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

impl<'a> StaticRequest<'a> {
    /// From a header list with lowercase names (the first field of each
    /// name counts).
    pub fn from_fields(method: &'a [u8], fields: &'a [(Bytes, Bytes)]) -> Self {
        let get = |name: &[u8]| {
            fields
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, v)| v.as_ref())
        };
        Self {
            method,
            accept_encoding: get(b"accept-encoding"),
            if_none_match: get(b"if-none-match"),
            if_modified_since: get(b"if-modified-since"),
            range: get(b"range"),
            if_range: get(b"if-range"),
        }
    }
}

/// The answer: a head, and a body (a file, possibly a range of it).
pub struct StaticResponse {
    pub status: u16,
    /// Fields, with `content-length` always present.
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: StaticBody,
}

pub enum StaticBody {
    /// No body (HEAD, 304), or a short text.
    Bytes(Bytes),
    /// The file, already positioned at its range.
    File(BodyFile),
}

impl StaticFiles {
    /// Routes paired with their directories (canonicalized here, so they
    /// must exist), and `Cache-Control` max-age in seconds (0: none).
    pub fn new(routes: Vec<(String, String)>, expires: u64) -> io::Result<Self> {
        let mut mounts = Vec::with_capacity(routes.len());
        for (route, dir) in routes {
            let dir = std::fs::canonicalize(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("static path mount {dir:?}: {e}")))?;
            let mut route = route.into_bytes();
            while route.last() == Some(&b'/') {
                route.pop();
            }
            mounts.push(Mount { route, dir });
        }
        // The longest route wins when routes nest.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.route.len()));
        Ok(Self {
            mounts,
            cache_control: (expires > 0).then(|| Bytes::from(format!("max-age={expires}"))),
        })
    }

    /// The mount a request-target falls under and the rest of its path
    /// (raw, still percent-encoded, starting with `/` or empty). Only the
    /// origin-form path counts; the query is ignored.
    pub fn route<'t>(&self, target: &'t [u8]) -> Option<(usize, &'t [u8])> {
        let path = match target.iter().position(|&b| b == b'?') {
            Some(i) => &target[..i],
            None => target,
        };
        if !path.starts_with(b"/") {
            return None;
        }
        self.mounts.iter().enumerate().find_map(|(i, m)| {
            let rest = path.strip_prefix(m.route.as_slice())?;
            (rest.is_empty() || rest[0] == b'/').then_some((i, rest))
        })
    }

    /// Answers a request for `rest` under mount `mount` (from
    /// [`Self::route`]).
    pub async fn respond(
        &self,
        mount: usize,
        rest: &[u8],
        req: &StaticRequest<'_>,
    ) -> StaticResponse {
        let head = req.method == b"HEAD";
        if req.method != b"GET" && !head {
            return text(
                405,
                b"Method Not Allowed",
                vec![(
                    Bytes::from_static(b"allow"),
                    Bytes::from_static(b"GET, HEAD"),
                )],
            );
        }
        let Some(m) = self.mounts.get(mount) else {
            return not_found();
        };
        let Some(rel) = sanitize(rest) else {
            return not_found();
        };
        let path = m.dir.join(rel);
        let Some((file, meta)) = open_inside(&m.dir, &path).await else {
            return not_found();
        };
        // Precompressed siblings: the best one the client accepts.
        let mut vary = false;
        let mut chosen = None;
        for (coding, ext) in [(&b"br"[..], "br"), (b"gzip", "gz")] {
            let mut name = path.clone().into_os_string();
            name.push(".");
            name.push(ext);
            let Some(sib) = open_inside(&m.dir, Path::new(&name)).await else {
                continue;
            };
            vary = true;
            if chosen.is_none() && accepts(req.accept_encoding, coding) {
                chosen = Some((coding, ext, sib));
            }
        }
        let (file, meta, encoding) = match chosen {
            Some((coding, ext, (f, mt))) => (f, mt, Some((coding, ext))),
            None => (file, meta, None),
        };
        let len = meta.len();
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let etag = etag(len, mtime, encoding.map(|e| e.1));
        let last_modified = httpdate::fmt_http_date(mtime);
        let mut headers = Vec::with_capacity(10);
        let mut field = |n: &'static [u8], v: Bytes| headers.push((Bytes::from_static(n), v));
        field(b"etag", Bytes::from(etag.clone()));
        field(b"last-modified", Bytes::from(last_modified.clone()));
        if let Some(cc) = &self.cache_control {
            field(b"cache-control", cc.clone());
        }
        if vary {
            field(b"vary", Bytes::from_static(b"accept-encoding"));
        }
        let decision = evaluate(req, &etag, &last_modified, mtime, len);
        if decision == Decision::NotModified {
            return StaticResponse {
                status: 304,
                headers,
                body: StaticBody::Bytes(Bytes::new()),
            };
        }
        if let Decision::Unsatisfiable = decision {
            headers.push((
                Bytes::from_static(b"content-range"),
                Bytes::from(format!("bytes */{len}")),
            ));
            let mut r = text(416, b"Range Not Satisfiable", headers);
            if head {
                r.body = StaticBody::Bytes(Bytes::new());
            }
            return r;
        }
        headers.push((
            Bytes::from_static(b"content-type"),
            Bytes::from_static(content_type(&path)),
        ));
        if let Some((coding, _)) = encoding {
            headers.push((
                Bytes::from_static(b"content-encoding"),
                Bytes::copy_from_slice(coding),
            ));
        }
        headers.push((
            Bytes::from_static(b"accept-ranges"),
            Bytes::from_static(b"bytes"),
        ));
        let (status, start, count) = match decision {
            Decision::Partial { start, end } => {
                headers.push((
                    Bytes::from_static(b"content-range"),
                    Bytes::from(format!("bytes {start}-{end}/{len}")),
                ));
                (206, start, end - start + 1)
            }
            _ => (200, 0, len),
        };
        headers.push((
            Bytes::from_static(b"content-length"),
            http::decimal_value(count),
        ));
        let body = if head || count == 0 {
            StaticBody::Bytes(Bytes::new())
        } else {
            match BodyFile::from_file(file, len).range(start, count).await {
                Ok(f) => StaticBody::File(f),
                Err(_) => return not_found(),
            }
        };
        StaticResponse {
            status,
            headers,
            body,
        }
    }
}

fn text(status: u16, body: &'static [u8], mut headers: Vec<(Bytes, Bytes)>) -> StaticResponse {
    headers.extend(http::plain_text_fields(body));
    StaticResponse {
        status,
        headers,
        body: StaticBody::Bytes(Bytes::from_static(body)),
    }
}

fn not_found() -> StaticResponse {
    text(404, b"Not Found", Vec::new())
}

/// Opens `path` if, once every symlink is resolved, it is a regular file
/// inside `dir` (which is canonical). The canonical path is what gets
/// opened.
async fn open_inside(dir: &Path, path: &Path) -> Option<(tokio::fs::File, std::fs::Metadata)> {
    let real = tokio::fs::canonicalize(path).await.ok()?;
    if !real.starts_with(dir) {
        return None;
    }
    let file = tokio::fs::File::open(&real).await.ok()?;
    let meta = file.metadata().await.ok()?;
    meta.is_file().then_some((file, meta))
}

/// The file path below a mount for the raw rest of a request path, or None
/// when it must not be served: `..` segments, `/`, `\` or NUL in encoded
/// form, backslashes, an empty path (the mount itself), or a path too long.
pub fn sanitize(rest: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if rest.len() > MAX_PATH_LEN {
        return None;
    }
    let mut out = PathBuf::new();
    for raw in rest.split(|&b| b == b'/') {
        let seg = http::percent_decode_strict(raw)?;
        if seg.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
            return None;
        }
        match seg.as_slice() {
            b"" | b"." => {}
            b".." => return None,
            s => out.push(std::ffi::OsStr::from_bytes(s)),
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// A strong entity tag from the length and modification time (and the
/// content coding, so each representation has its own).
fn etag(len: u64, mtime: SystemTime, encoding: Option<&str>) -> String {
    let t = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut tag = format!("\"{:x}-{:x}-{:x}", t.as_secs(), t.subsec_nanos(), len);
    if let Some(e) = encoding {
        tag.push('-');
        tag.push_str(e);
    }
    tag.push('"');
    tag
}

/// What to answer, from the request's conditions and range.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// 200 with the whole file.
    Full,
    /// 304 (RFC 9110 §15.4.5).
    NotModified,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 (RFC 9110 §15.5.17).
    Unsatisfiable,
}

/// Evaluates the preconditions (RFC 9110 §13.2.2: `If-None-Match`, or
/// else `If-Modified-Since`), then `If-Range` and `Range` (GET only).
pub fn evaluate(
    req: &StaticRequest<'_>,
    etag: &str,
    last_modified: &str,
    mtime: SystemTime,
    len: u64,
) -> Decision {
    if let Some(inm) = req.if_none_match {
        if etag_list_matches(inm, etag) {
            return Decision::NotModified;
        }
    } else if let Some(ims) = req.if_modified_since {
        let since = std::str::from_utf8(ims)
            .ok()
            .and_then(|s| httpdate::parse_http_date(s.trim()).ok());
        // Last-Modified has whole seconds.
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if since.is_some_and(|s| secs(mtime) <= secs(s)) {
            return Decision::NotModified;
        }
    }
    let Some(range) = req.range.filter(|_| req.method == b"GET") else {
        return Decision::Full;
    };
    if let Some(ir) = req.if_range {
        let ir = http::trim_ows(ir);
        // A strong comparison against the entity tag, or an exact date.
        let fresh = if ir.starts_with(b"\"") || ir.starts_with(b"W/") {
            ir == etag.as_bytes()
        } else {
            ir == last_modified.as_bytes()
        };
        if !fresh {
            return Decision::Full;
        }
    }
    parse_range(range, len)
}

/// `If-None-Match`: `*` or a list of entity tags, compared weakly.
fn etag_list_matches(list: &[u8], etag: &str) -> bool {
    let ours = etag.as_bytes();
    http::list(list).any(|t| t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == ours)
}

/// One `bytes` range (RFC 9110 §14.1.2). A header that is not one valid
/// byte range is ignored (Full), as RFC 9110 §14.2 allows; several ranges
/// are answered with the whole file too.
pub fn parse_range(v: &[u8], len: u64) -> Decision {
    let Ok(v) = std::str::from_utf8(v) else {
        return Decision::Full;
    };
    let Some(spec) = v
        .trim()
        .split_once('=')
        .filter(|(unit, _)| unit.trim().eq_ignore_ascii_case("bytes"))
        .map(|(_, s)| s.trim())
    else {
        return Decision::Full;
    };
    if spec.contains(',') {
        return Decision::Full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Decision::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(b) {
            Some(0) => Decision::Unsatisfiable,
            Some(_) if len == 0 => Decision::Unsatisfiable,
            Some(n) => Decision::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            None => Decision::Full,
        },
        // bytes=A-
        (false, true) => match num(a) {
            Some(s) if s >= len => Decision::Unsatisfiable,
            Some(s) => Decision::Partial {
                start: s,
                end: len - 1,
            },
            None => Decision::Full,
        },
        // bytes=A-B
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if e < s => Decision::Full,
            (Some(s), Some(_)) if s >= len => Decision::Unsatisfiable,
            (Some(s), Some(e)) => Decision::Partial {
                start: s,
                end: e.min(len - 1),
            },
            _ => Decision::Full,
        },
        (true, true) => Decision::Full,
    }
}

/// Whether `Accept-Encoding` allows `coding` (RFC 9110 §12.5.3): named
/// with a non-zero weight, or covered by `*` with a non-zero weight.
fn accepts(header: Option<&[u8]>, coding: &[u8]) -> bool {
    let Some(h) = header else {
        return false;
    };
    let mut star = None;
    for item in http::list(h) {
        let mut parts = item.split(|&b| b == b';');
        let name = http::trim_ows(parts.next().unwrap_or_default());
        let q = parts
            .filter_map(|p| {
                let p = http::trim_ows(p);
                let v = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q="))?;
                std::str::from_utf8(v).ok()?.trim().parse::<f32>().ok()
            })
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding)
            || (coding == b"gzip" && name.eq_ignore_ascii_case(b"x-gzip"))
        {
            return q > 0.0;
        }
        if name == b"*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// The media type for a file name's extension (a compact table; anything
/// else is `application/octet-stream`).
pub fn content_type(path: &Path) -> &'static [u8] {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => b"text/html; charset=utf-8",
        "css" => b"text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => b"text/javascript; charset=utf-8",
        "json" | "map" => b"application/json",
        "webmanifest" => b"application/manifest+json",
        "txt" | "text" | "log" => b"text/plain; charset=utf-8",
        "md" => b"text/markdown; charset=utf-8",
        "csv" => b"text/csv; charset=utf-8",
        "xml" => b"application/xml",
        "svg" => b"image/svg+xml",
        "png" => b"image/png",
        "jpg" | "jpeg" => b"image/jpeg",
        "gif" => b"image/gif",
        "webp" => b"image/webp",
        "avif" => b"image/avif",
        "ico" => b"image/vnd.microsoft.icon",
        "bmp" => b"image/bmp",
        "woff" => b"font/woff",
        "woff2" => b"font/woff2",
        "ttf" => b"font/ttf",
        "otf" => b"font/otf",
        "wasm" => b"application/wasm",
        "pdf" => b"application/pdf",
        "zip" => b"application/zip",
        "gz" => b"application/gzip",
        "br" => b"application/x-brotli",
        "tar" => b"application/x-tar",
        "mp4" => b"video/mp4",
        "webm" => b"video/webm",
        "mp3" => b"audio/mpeg",
        "ogg" => b"audio/ogg",
        "wav" => b"audio/wav",
        _ => b"application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(routes: &[(&str, &str)]) -> StaticFiles {
        StaticFiles::new(
            routes
                .iter()
                .map(|(r, d)| (r.to_string(), d.to_string()))
                .collect(),
            60,
        )
        .unwrap()
    }

    #[test]
    fn routes_match_whole_segments() {
        let tmp = std::env::temp_dir();
        let t = tmp.to_str().unwrap();
        let f = files(&[("/static/", t), ("/static/img", t)]);
        assert_eq!(f.route(b"/static/a.css?v=1"), Some((1, &b"/a.css"[..])));
        assert_eq!(f.route(b"/static/a.css"), Some((1, &b"/a.css"[..])));
        assert_eq!(f.route(b"/static/img/x.png"), Some((0, &b"/x.png"[..])));
        assert_eq!(f.route(b"/static"), Some((1, &b""[..])));
        assert_eq!(f.route(b"/staticfoo"), None);
        assert_eq!(f.route(b"/other/static/x"), None);
        assert_eq!(f.route(b"*"), None);
        assert_eq!(f.route(b"http://h/static/x"), None);
        assert_eq!(f.cache_control.as_deref(), Some(&b"max-age=60"[..]));
    }

    #[test]
    fn sanitize_refuses_traversal() {
        assert_eq!(sanitize(b"/a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(sanitize(b"//a/./b%20c"), Some(PathBuf::from("a/b c")));
        assert_eq!(sanitize(b"/caf%C3%A9"), Some(PathBuf::from("caf\u{e9}")));
        for bad in [
            &b""[..],
            b"/",
            b"/./",
            b"/../secret",
            b"/a/../../secret",
            b"/%2e%2e/secret",
            b"/%2E%2E/secret",
            b"/.%2e/secret",
            b"/..%2fsecret",
            b"/a%2F..%2F..%2Fsecret",
            b"/a/..%5c..%5csecret",
            b"/a\\..\\secret",
            b"/a%00.txt",
            b"/a%zz",
            b"/a%2",
        ] {
            assert_eq!(sanitize(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(sanitize(&vec![b'a'; MAX_PATH_LEN + 1]), None);
    }

    #[test]
    fn ranges() {
        use Decision::*;
        let r = |v: &str, len| parse_range(v.as_bytes(), len);
        assert_eq!(r("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(r("bytes=90-", 100), Partial { start: 90, end: 99 });
        assert_eq!(r("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(r("bytes=-1000", 100), Partial { start: 0, end: 99 });
        assert_eq!(r("bytes=50-1000", 100), Partial { start: 50, end: 99 });
        assert_eq!(r("Bytes = 1-1", 100), Partial { start: 1, end: 1 });
        assert_eq!(r("bytes=100-", 100), Unsatisfiable);
        assert_eq!(r("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(r("bytes=-0", 100), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=-5", 0), Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "items=0-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=-",
            "bytes",
            "bytes=+1-2",
        ] {
            assert_eq!(r(ignored, 100), Full, "{ignored}");
        }
    }

    #[test]
    fn conditions() {
        use Decision::*;
        let mtime = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let lm = httpdate::fmt_http_date(mtime);
        let et = etag(100, mtime, None);
        let eval = |req: StaticRequest<'_>| evaluate(&req, &et, &lm, mtime, 100);
        let get = |f: fn(&mut StaticRequest<'static>)| {
            let mut r = StaticRequest {
                method: b"GET",
                ..Default::default()
            };
            f(&mut r);
            r
        };
        assert_eq!(eval(get(|_| {})), Full);
        let et2 = et.clone();
        let req = StaticRequest {
            method: b"GET",
            if_none_match: Some(et2.as_bytes()),
            ..Default::default()
        };
        assert_eq!(eval(req), NotModified);
        let weak = format!("\"x\", W/{et}");
        let req = StaticRequest {
            method: b"GET",
            if_none_match: Some(weak.as_bytes()),
            ..Default::default()
        };
        assert_eq!(eval(req), NotModified);
        assert_eq!(eval(get(|r| r.if_none_match = Some(b"*"))), NotModified);
        assert_eq!(eval(get(|r| r.if_none_match = Some(b"\"other\""))), Full);
        // If-Modified-Since: same second or later is not modified.
        let same = lm.clone();
        let req = StaticRequest {
            method: b"GET",
            if_modified_since: Some(same.as_bytes()),
            ..Default::default()
        };
        assert_eq!(eval(req), NotModified);
        assert_eq!(
            eval(get(
                |r| r.if_modified_since = Some(b"Sat, 01 Jan 2000 00:00:00 GMT")
            )),
            Full
        );
        assert_eq!(eval(get(|r| r.if_modified_since = Some(b"garbage"))), Full);
        // If-None-Match takes precedence over If-Modified-Since.
        let req = StaticRequest {
            method: b"GET",
            if_none_match: Some(b"\"other\""),
            if_modified_since: Some(same.as_bytes()),
            ..Default::default()
        };
        assert_eq!(eval(req), Full);
        // Range, for GET only, and If-Range.
        assert_eq!(
            eval(get(|r| r.range = Some(b"bytes=0-0"))),
            Partial { start: 0, end: 0 }
        );
        let req = StaticRequest {
            method: b"HEAD",
            range: Some(b"bytes=0-0"),
            ..Default::default()
        };
        assert_eq!(eval(req), Full);
        let req = StaticRequest {
            method: b"GET",
            range: Some(b"bytes=0-0"),
            if_range: Some(et2.as_bytes()),
            ..Default::default()
        };
        assert_eq!(eval(req), Partial { start: 0, end: 0 });
        let req = StaticRequest {
            method: b"GET",
            range: Some(b"bytes=0-0"),
            if_range: Some(same.as_bytes()),
            ..Default::default()
        };
        assert_eq!(eval(req), Partial { start: 0, end: 0 });
        assert_eq!(
            eval(get(|r| {
                r.range = Some(b"bytes=0-0");
                r.if_range = Some(b"\"stale\"");
            })),
            Full
        );
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts(Some(b"gzip, deflate, br"), b"br"));
        assert!(accepts(Some(b"gzip;q=0.5"), b"gzip"));
        assert!(accepts(Some(b"x-gzip"), b"gzip"));
        assert!(!accepts(Some(b"gzip;q=0"), b"gzip"));
        assert!(!accepts(Some(b"br;q=0, *"), b"br"));
        assert!(accepts(Some(b"*"), b"br"));
        assert!(!accepts(Some(b"*;q=0"), b"br"));
        assert!(!accepts(Some(b"identity"), b"gzip"));
        assert!(!accepts(None, b"gzip"));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a/b.CSS")),
            b"text/css; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x.woff2")), b"font/woff2");
        assert_eq!(
            content_type(Path::new("noext")),
            b"application/octet-stream"
        );
        assert_eq!(content_type(Path::new("x.tar.gz")), b"application/gzip");
    }
}
