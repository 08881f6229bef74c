package gateway

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
)

// injectTagLen is the length of both tags the snippet goes before: "</head>" and "</body>".
const injectTagLen = len("</head>")

// injectChunkSize is how much of the upstream body one scan reads at most; it matches the
// copy buffer of httputil.ReverseProxy, so one client write follows each upstream read.
const injectChunkSize = 32 << 10

// injectGzipLevel is the level the rewritten body is compressed with again. Every HTML page
// passing through pays for it, so speed wins over the last bytes, as with nginx's default
// gzip_comp_level of 1.
const injectGzipLevel = gzip.BestSpeed

// injectGzipWriters holds gzip writers between responses: each carries several hundred KiB
// of compressor state that would otherwise be allocated per page.
var injectGzipWriters = sync.Pool{
	New: func() any {
		zw, err := gzip.NewWriterLevel(io.Discard, injectGzipLevel)
		if err != nil {
			panic(err) // injectGzipLevel is a valid constant level
		}
		return zw
	},
}

// injectScript rewrites res so that its HTML body carries snippet just before the first
// "</head>" or, when the document has none before it, the first "</body>" (ASCII case-insensitive),
// as the body streams. It reports whether it changed res (false: res untouched).
//
// Only full text/html bodies that are plain or gzip-encoded are rewritten; a gzip body is
// decompressed and compressed again, flushed after every upstream read. The body is never
// buffered whole: each read of the new body follows one read of the upstream body, holding
// back at most the few bytes that may begin a tag. A document with neither tag passes
// through unchanged. Because the length and the bytes change, Content-Length and digests are
// removed and a strong ETag becomes weak.
func injectScript(res *http.Response, snippet []byte) bool {
	if !injectable(res) {
		return false
	}
	gzipped, ok := injectEncoding(res.Header)
	if !ok {
		return false
	}

	plain := &injectReader{snippet: snippet}
	if gzipped {
		res.Body = &injectGzipReader{upstream: res.Body, plain: plain}
	} else {
		plain.src = res.Body
		res.Body = injectPlainBody{plain, res.Body}
	}

	res.ContentLength = -1
	res.Header.Del("Content-Length")
	for _, digest := range []string{"Content-MD5", "Digest", "Content-Digest", "Repr-Digest"} {
		res.Header.Del(digest)
	}
	if etag := res.Header.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		res.Header.Set("ETag", "W/"+etag)
	}
	return true
}

// injectable reports whether res is a complete HTML document with a body to rewrite.
func injectable(res *http.Response) bool {
	switch {
	case res.Body == nil || res.Body == http.NoBody:
		return false
	case res.StatusCode < 200 || res.StatusCode == http.StatusNoContent ||
		res.StatusCode == http.StatusNotModified:
		return false
	case res.StatusCode == http.StatusPartialContent || res.Header.Get("Content-Range") != "":
		// A byte range of the document: inserting would corrupt the client's reassembly.
		return false
	case res.Request != nil && res.Request.Method == http.MethodHead:
		return false
	}
	contentType := res.Header.Get("Content-Type")
	if contentType == "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		// A bad parameter (say, a stray "charset") still leaves a media type browsers honor.
		return false
	}
	return mediaType == "text/html"
}

// injectEncoding reports whether the body is gzip-encoded, and whether its encoding is one
// the injector can rewrite at all: none, identity, or a single gzip.
func injectEncoding(header http.Header) (gzipped, ok bool) {
	var codings []string
	for _, value := range header.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(value, ",") {
			coding = strings.TrimSpace(coding)
			if coding != "" && !strings.EqualFold(coding, "identity") {
				codings = append(codings, coding)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return false, true
	case len(codings) == 1 && (strings.EqualFold(codings[0], "gzip") || strings.EqualFold(codings[0], "x-gzip")):
		return true, true
	default:
		return false, false
	}
}

// injectReader inserts snippet into the plain HTML read from src. Until the insertion point
// is found it reads into buf and serves pending; after that it reads straight from src.
type injectReader struct {
	src     io.Reader
	snippet []byte

	buf        []byte // scan window: held tail bytes, then the latest upstream chunk
	heldStart  int    // buf[heldStart:heldStart+held] may begin a tag: kept for the next chunk
	held       int
	pending    [][]byte // output not yet returned, in order
	pendingArr [3][]byte
	inserted   bool  // the snippet is in pending or already returned: no more scanning
	err        error // the upstream's error, returned once pending is drained
}

func (r *injectReader) Read(p []byte) (int, error) {
	for {
		if len(r.pending) > 0 {
			return r.drain(p), nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.inserted {
			r.buf = nil
			return r.src.Read(p)
		}
		r.scanNext()
	}
}

// drain copies as much of pending into p as fits.
func (r *injectReader) drain(p []byte) int {
	n := 0
	for len(r.pending) > 0 && n < len(p) {
		c := copy(p[n:], r.pending[0])
		n += c
		r.pending[0] = r.pending[0][c:]
		if len(r.pending[0]) == 0 {
			r.pending = r.pending[1:]
		}
	}
	return n
}

// scanNext reads one upstream chunk behind the held bytes and queues what can be emitted.
func (r *injectReader) scanNext() {
	if r.buf == nil {
		r.buf = make([]byte, injectTagLen-1+injectChunkSize)
	}
	copy(r.buf, r.buf[r.heldStart:r.heldStart+r.held])
	n, err := r.src.Read(r.buf[r.held:])
	window := r.buf[:r.held+n]
	r.err = err

	if i := injectTagIndex(window); i >= 0 {
		r.inserted = true
		r.queue(window[:i], r.snippet, window[i:])
		return
	}
	keep := 0
	if err == nil {
		keep = injectTagPrefixLen(window)
	}
	r.queue(window[:len(window)-keep])
	r.heldStart, r.held = len(window)-keep, keep
}

func (r *injectReader) queue(parts ...[]byte) {
	r.pending = r.pendingArr[:0]
	for _, part := range parts {
		if len(part) > 0 {
			r.pending = append(r.pending, part)
		}
	}
}

// injectTagIndex returns the index of the first "</head>" or "</body>" in b, in any ASCII case,
// or -1.
func injectTagIndex(b []byte) int {
	for i := 0; ; {
		k := bytes.IndexByte(b[i:], '<')
		if k < 0 {
			return -1
		}
		i += k
		if len(b)-i < injectTagLen {
			return -1
		}
		if injectIsTag(b[i : i+injectTagLen]) {
			return i
		}
		i++
	}
}

// injectIsTag reports whether tag, seven bytes long, is "</head>" or "</body>" in any ASCII case.
// OR-ing 0x20 lower-cases a letter and maps no other byte onto one of these letters.
func injectIsTag(tag []byte) bool {
	if tag[0] != '<' || tag[1] != '/' || tag[6] != '>' {
		return false
	}
	a, b, c, d := tag[2]|0x20, tag[3]|0x20, tag[4]|0x20, tag[5]|0x20
	return a == 'h' && b == 'e' && c == 'a' && d == 'd' ||
		a == 'b' && b == 'o' && c == 'd' && d == 'y'
}

// injectTagPrefixLen returns the length of the longest suffix of b that begins one of the
// tags without completing it: the bytes to hold back until the next chunk decides.
func injectTagPrefixLen(b []byte) int {
	for i := max(0, len(b)-(injectTagLen-1)); i < len(b); i++ {
		if b[i] == '<' && injectIsTagPrefix(b[i:]) {
			return len(b) - i
		}
	}
	return 0
}

func injectIsTagPrefix(b []byte) bool {
	for _, tag := range [...]string{"</head>", "</body>"} {
		match := true
		for i, c := range b {
			if c|0x20 != tag[i]|0x20 {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// injectPlainBody closes the upstream body under an injectReader that reads from it.
type injectPlainBody struct {
	*injectReader
	upstream io.Closer
}

func (b injectPlainBody) Close() error { return b.upstream.Close() }

// injectGzipReader decompresses the upstream body, injects into the plain HTML and compresses
// it again, pulling one upstream chunk per Read and flushing the compressor after each so the
// client can decode everything the upstream has sent. It starts no goroutine.
type injectGzipReader struct {
	upstream io.ReadCloser
	plain    *injectReader // reads from the decompressor

	zw  *gzip.Writer // from injectGzipWriters, writing into out; returned at the end
	out bytes.Buffer // compressed output not yet returned
	raw []byte       // one chunk of plain output on its way to zw
	err error        // io.EOF once the stream is complete, or the first failure
}

func (r *injectGzipReader) Read(p []byte) (int, error) {
	for r.out.Len() == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.step()
	}
	return r.out.Read(p)
}

// step moves one chunk from the upstream through the injector into out.
func (r *injectGzipReader) step() {
	if r.plain.src == nil {
		// The gzip header is read here, not in injectScript, so that the proxy can send the
		// response headers before the upstream sends any body.
		zr, err := gzip.NewReader(r.upstream)
		if err == io.EOF {
			r.err = io.EOF // an empty body stays empty
			return
		}
		if err != nil {
			r.err = err
			return
		}
		r.plain.src = zr
		r.zw = injectGzipWriters.Get().(*gzip.Writer)
		r.zw.Reset(&r.out)
		r.raw = make([]byte, injectChunkSize)
	}

	n, err := r.plain.Read(r.raw)
	if n > 0 {
		// Writing into a bytes.Buffer cannot fail, so neither can the compressor.
		_, _ = r.zw.Write(r.raw[:n])
	}
	switch {
	case err == io.EOF:
		_ = r.zw.Close()
		r.release()
		r.err = io.EOF
	case err != nil:
		r.err = err
	case n > 0:
		_ = r.zw.Flush()
	}
}

// release returns the compressor to the pool once Read no longer uses it.
func (r *injectGzipReader) release() {
	r.zw.Reset(io.Discard)
	injectGzipWriters.Put(r.zw)
	r.zw = nil
	r.raw = nil
}

// Close closes the upstream body. A compressor still in use is left to the garbage collector
// rather than pooled, since Close may run while a Read is blocked on the upstream.
func (r *injectGzipReader) Close() error { return r.upstream.Close() }
