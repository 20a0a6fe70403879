// Package storagecheck checks that a file RC says it uploaded is really
// there: one request to the file's URL, HEAD first, and where HEAD is
// refused (a presigned GET URL's signature covers the method) a GET of
// one byte. It records what the storage answered — status, size, type,
// ETag — and sorts it into verified, missing, size_mismatch or
// unreachable, marking failures worth retrying as transient so the
// caller can schedule the retry (NextWait).
//
// The checker sends requests to URLs that came from outside (RC's
// callbacks), so it is careful:
//   - only hosts on the allow-list (Hosts, --storage-hosts) are ever
//     asked; anything else is refused before any request is made;
//   - a host listed as an IP address is asked even on loopback or a
//     private network: the operator named that address. A listed host
//     name is dialled only to public addresses unless AllowPrivate, and
//     the check is made on the address being connected to, after name
//     resolution, so a listed name re-pointed at 169.254.169.254 or
//     127.0.0.1 (DNS rebinding) is refused;
//   - an allow-list entry without a port stands for the scheme's default
//     port only (80, 443), never for any port;
//   - redirects are followed at most MaxRedirects times and only to the
//     same host name, still on the list (host:port), never from https to
//     http; http to https on the same host is followed when that port is
//     listed;
//   - each request has a short timeout, and requests per host are bounded
//     in number at once and in rate;
//   - bodies are never downloaded: HEAD has none, the ranged GET reads at
//     most one byte, a server that ignores Range has its answer closed at
//     once, and only a small error body of a refused GET is read;
//   - a 404 or 410 is missing; a 403 is unreachable, not missing (S3
//     answers 403 for a missing key when the signer may not list the
//     bucket, and for a bad or expired signature alike), unless the
//     ranged GET's small error body names NoSuchKey;
//   - a URL is shown in errors only by Redact: no query string (a
//     presigned URL's query carries credentials) and no user info; and
//     a transport error that would quote the storage's answer (a
//     Location that does not parse, which carries the query on; a
//     malformed header line) is replaced by words of its own;
//   - an answer's headers are read up to 64 KiB, not Go's 10 MB.
package storagecheck
