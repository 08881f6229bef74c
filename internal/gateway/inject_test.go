package gateway

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

var injectTestSnippet = []byte(`<script src="/auth/timeout.js" defer></script>`)

// injectTestBody is an upstream body that records whether it was closed.
type injectTestBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *injectTestBody) Close() error {
	b.closed.Store(true)
	return nil
}

// injectChunkReader returns at most size bytes per Read.
type injectChunkReader struct {
	data []byte
	size int
}

func (r *injectChunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func newInjectTestResponse(body io.Reader, header ...string) *http.Response {
	res := &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"text/html; charset=utf-8"}},
		ContentLength: -1,
		Request:       &http.Request{Method: http.MethodGet},
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			res.Header.Del(header[i])
		} else {
			res.Header.Set(header[i], header[i+1])
		}
	}
	if body != nil {
		res.Body = &injectTestBody{Reader: body}
	}
	return res
}

// injectWant is the reference result: snippet before the first </head> or </body>, found
// by lower-casing the ASCII letters of a copy.
func injectWant(doc, snippet []byte) []byte {
	lower := make([]byte, len(doc))
	for i, c := range doc {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	at := -1
	for _, tag := range []string{"</head>", "</body>"} {
		if i := bytes.Index(lower, []byte(tag)); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return bytes.Clone(doc)
	}
	return slices.Concat(doc[:at], snippet, doc[at:])
}

// injectGzip compresses doc, flushing after every chunk bytes so that a reader decompresses
// at most chunk bytes at a time.
func injectGzip(t testing.TB, doc []byte, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for len(doc) > 0 {
		n := min(chunk, len(doc))
		if _, err := zw.Write(doc[:n]); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		doc = doc[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// injectGunzip decompresses all of r, checking that it is one valid gzip stream.
func injectGunzip(t testing.TB, r io.Reader) []byte {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("result is not gzip: %v", err)
	}
	zr.Multistream(false)
	doc, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("result is not a valid gzip stream: %v", err)
	}
	if rest, _ := io.ReadAll(r); len(rest) > 0 {
		t.Fatalf("%d bytes after the gzip stream", len(rest))
	}
	return doc
}

func TestInjectScript(t *testing.T) {
	const (
		doc     = "<html><head><title>t</title></head><body><p>hi</p></body></html>"
		withTag = "<html><head><title>t</title>" + `<script src="/auth/timeout.js" defer></script>` +
			"</head><body><p>hi</p></body></html>"
	)
	tests := []struct {
		name    string
		method  string
		status  int
		header  []string // pairs; an empty value deletes the header
		body    string
		gzipped bool // compress body; decompress the result
		want    string
		changed bool
	}{
		{name: "head", body: doc, want: withTag, changed: true},
		{name: "body only", body: "<p>x</p></body>", want: "<p>x</p>" + string(injectTestSnippet) + "</body>", changed: true},
		{name: "upper case", body: "<HTML><HEAD></HEAD></HTML>", want: "<HTML><HEAD>" + string(injectTestSnippet) + "</HEAD></HTML>", changed: true},
		{name: "mixed case body", body: "<p></BoDy>", want: "<p>" + string(injectTestSnippet) + "</BoDy>", changed: true},
		{name: "body before head", body: "</body></head>", want: string(injectTestSnippet) + "</body></head>", changed: true},
		{name: "only first of two", body: "</head></head></body>", want: string(injectTestSnippet) + "</head></head></body>", changed: true},
		{name: "near misses", body: "</hea></ head></head ></bodyx></body", want: "</hea></ head></head ></bodyx></body", changed: true},
		{name: "no tag", body: "<p>fragment</p>", want: "<p>fragment</p>", changed: true},
		{name: "empty", body: "", want: "", changed: true},
		{name: "media type case", header: []string{"Content-Type", "TEXT/HTML"}, body: doc, want: withTag, changed: true},
		{name: "bad parameter", header: []string{"Content-Type", "text/html; charset"}, body: doc, want: withTag, changed: true},
		{name: "identity", header: []string{"Content-Encoding", "identity"}, body: doc, want: withTag, changed: true},
		{name: "not found status", status: http.StatusNotFound, body: doc, want: withTag, changed: true},
		{name: "gzip", header: []string{"Content-Encoding", "gzip"}, gzipped: true, body: doc, want: withTag, changed: true},
		{name: "x-gzip", header: []string{"Content-Encoding", "x-gzip"}, gzipped: true, body: doc, want: withTag, changed: true},
		{name: "gzip no tag", header: []string{"Content-Encoding", "gzip"}, gzipped: true, body: "<p>", want: "<p>", changed: true},

		{name: "brotli", header: []string{"Content-Encoding", "br"}, body: doc},
		{name: "zstd", header: []string{"Content-Encoding", "zstd"}, body: doc},
		{name: "deflate", header: []string{"Content-Encoding", "deflate"}, body: doc},
		{name: "two codings", header: []string{"Content-Encoding", "gzip, br"}, body: doc},
		{name: "gzip twice", header: []string{"Content-Encoding", "gzip, gzip"}, body: doc},
		{name: "text/plain", header: []string{"Content-Type", "text/plain"}, body: doc},
		{name: "xhtml", header: []string{"Content-Type", "application/xhtml+xml"}, body: doc},
		{name: "no content type", header: []string{"Content-Type", ""}, body: doc},
		{name: "bad content type", header: []string{"Content-Type", "text/html/x"}, body: doc},
		{name: "HEAD", method: http.MethodHead, body: doc},
		{name: "not modified", status: http.StatusNotModified, body: doc},
		{name: "no content", status: http.StatusNoContent, body: doc},
		{name: "switching protocols", status: http.StatusSwitchingProtocols, body: doc},
		{name: "partial content", status: http.StatusPartialContent, body: doc},
		{name: "content range", header: []string{"Content-Range", "bytes 0-9/100"}, body: doc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.gzipped {
				body = injectGzip(t, body, 1<<20)
			}
			res := newInjectTestResponse(bytes.NewReader(body), append(tt.header, "Content-Length", fmt.Sprint(len(body)))...)
			res.ContentLength = int64(len(body))
			if tt.method != "" {
				res.Request.Method = tt.method
			}
			if tt.status != 0 {
				res.StatusCode = tt.status
			}
			upstream := res.Body
			header := res.Header.Clone()

			if got := injectScript(res, injectTestSnippet); got != tt.changed {
				t.Fatalf("injectScript() = %v, want %v", got, tt.changed)
			}
			if !tt.changed {
				if res.Body != upstream || !maps.EqualFunc(res.Header, header, slices.Equal[[]string]) || res.ContentLength != int64(len(body)) {
					t.Fatalf("response changed: header %v, length %d", res.Header, res.ContentLength)
				}
				return
			}
			if res.ContentLength != -1 || res.Header.Get("Content-Length") != "" {
				t.Errorf("length still set: ContentLength %d, header %q", res.ContentLength, res.Header.Get("Content-Length"))
			}
			if got, want := res.Header.Get("Content-Encoding"), header.Get("Content-Encoding"); got != want {
				t.Errorf("Content-Encoding = %q, want %q", got, want)
			}
			var got []byte
			if tt.gzipped {
				got = injectGunzip(t, res.Body)
			} else {
				var err error
				if got, err = io.ReadAll(res.Body); err != nil {
					t.Fatal(err)
				}
			}
			if string(got) != tt.want {
				t.Errorf("body = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInjectScriptNoBody(t *testing.T) {
	for _, body := range []io.ReadCloser{nil, http.NoBody} {
		res := newInjectTestResponse(nil)
		res.Body = body
		if injectScript(res, injectTestSnippet) {
			t.Errorf("injectScript() with body %v = true", body)
		}
	}
}

func TestInjectScriptHeaders(t *testing.T) {
	tests := []struct {
		etag, want string
	}{
		{`"abc"`, `W/"abc"`},
		{`W/"abc"`, `W/"abc"`},
		{"", ""},
	}
	for _, tt := range tests {
		res := newInjectTestResponse(strings.NewReader("<head></head>"),
			"ETag", tt.etag, "Content-Length", "13", "Content-MD5", "x", "Digest", "sha-256=x",
			"Content-Digest", "sha-256=:x:", "Repr-Digest", "sha-256=:x:", "Cache-Control", "no-cache")
		if !injectScript(res, injectTestSnippet) {
			t.Fatal("injectScript() = false")
		}
		if got := res.Header.Get("ETag"); got != tt.want {
			t.Errorf("ETag %q became %q, want %q", tt.etag, got, tt.want)
		}
		for _, name := range []string{"Content-Length", "Content-MD5", "Digest", "Content-Digest", "Repr-Digest"} {
			if v := res.Header.Values(name); len(v) > 0 {
				t.Errorf("%s still set: %q", name, v)
			}
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("Cache-Control = %q, want it kept", got)
		}
	}
}

// TestInjectScriptChunks splits the documents at every boundary, in the plain stream and in
// the decompressed one, so that tags arrive in pieces.
func TestInjectScriptChunks(t *testing.T) {
	docs := []string{
		"<html><head><title>t</title></head><body>x</body></html>",
		"<p>a</p><P>b</P></BODY>",
		"<<</</h</he</hea</head</head>",
		"</bo</bod</body",
		"no tag at all, but a < and a </ at the end </",
		"",
	}
	for _, doc := range docs {
		want := injectWant([]byte(doc), injectTestSnippet)
		readers := map[string]func([]byte) io.Reader{
			"OneByteReader": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
			"HalfReader":    func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
			"DataErrReader": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		}
		for size := 1; size <= len(doc); size++ {
			readers[fmt.Sprint("chunks of ", size)] = func(b []byte) io.Reader { return &injectChunkReader{b, size} }
			readers[fmt.Sprint("split at ", size)] = func(b []byte) io.Reader {
				return io.MultiReader(bytes.NewReader(b[:min(size, len(b))]), bytes.NewReader(b[min(size, len(b)):]))
			}
		}
		for name, reader := range readers {
			res := newInjectTestResponse(reader([]byte(doc)))
			injectScript(res, injectTestSnippet)
			got, err := io.ReadAll(res.Body)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%q, %s: got %q, %v; want %q", doc, name, got, err, want)
			}
		}
		for size := 1; size <= max(1, len(doc)); size++ {
			zipped := injectGzip(t, []byte(doc), size)
			for name, reader := range map[string]io.Reader{
				"whole":         bytes.NewReader(zipped),
				"OneByteReader": iotest.OneByteReader(bytes.NewReader(zipped)),
			} {
				res := newInjectTestResponse(reader, "Content-Encoding", "gzip")
				injectScript(res, injectTestSnippet)
				if got := injectGunzip(t, res.Body); !bytes.Equal(got, want) {
					t.Errorf("%q, gzip flushed every %d bytes, %s: got %q, want %q", doc, size, name, got, want)
				}
			}
		}
	}
}

func TestInjectScriptGzipEdges(t *testing.T) {
	doc := []byte("<head></head>")
	var twoMembers bytes.Buffer
	twoMembers.Write(injectGzip(t, doc[:3], 64))
	twoMembers.Write(injectGzip(t, doc[3:], 64))

	tests := []struct {
		name string
		body []byte
		want []byte // nil: the body reads as nothing at all
	}{
		{"empty body", nil, nil},
		{"empty stream", injectGzip(t, nil, 1), []byte{}},
		{"two members", twoMembers.Bytes(), injectWant(doc, injectTestSnippet)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := newInjectTestResponse(bytes.NewReader(tt.body), "Content-Encoding", "gzip")
			injectScript(res, injectTestSnippet)
			if tt.want == nil {
				got, err := io.ReadAll(res.Body)
				if err != nil || len(got) > 0 {
					t.Fatalf("got %q, %v; want nothing", got, err)
				}
				return
			}
			if got := injectGunzip(t, res.Body); !bytes.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInjectScriptCorruptGzip(t *testing.T) {
	valid := injectGzip(t, []byte("<html><head></head><body>"+strings.Repeat("x", 100)+"</body></html>"), 16)
	badChecksum := bytes.Clone(valid)
	badChecksum[len(badChecksum)-8] ^= 0xff
	badData := bytes.Clone(valid)
	for i := 12; i < len(badData)-8; i++ {
		badData[i] ^= 0x55
	}

	tests := map[string][]byte{
		"not gzip":          []byte("<html><head></head></html>"),
		"truncated header":  valid[:5],
		"truncated data":    valid[:len(valid)/2],
		"truncated trailer": valid[:len(valid)-3],
		"bad checksum":      badChecksum,
		"bad data":          badData,
		"trailing garbage":  append(bytes.Clone(valid), "garbage!!!!"...),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			for _, reader := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body))} {
				res := newInjectTestResponse(reader, "Content-Encoding", "gzip")
				injectScript(res, injectTestSnippet)
				if _, err := io.ReadAll(res.Body); err == nil {
					t.Fatal("read the body without error")
				}
				// The error sticks: a second read does not resume the stream.
				if _, err := res.Body.Read(make([]byte, 8)); err == nil || err == io.EOF {
					t.Fatalf("second read: %v", err)
				}
			}
		})
	}
}

func TestInjectScriptUpstreamError(t *testing.T) {
	errUpstream := errors.New("upstream reset")
	res := newInjectTestResponse(io.MultiReader(strings.NewReader("<html></he"), iotest.ErrReader(errUpstream)))
	injectScript(res, injectTestSnippet)
	got, err := io.ReadAll(res.Body)
	if !errors.Is(err, errUpstream) || string(got) != "<html></he" {
		t.Fatalf("got %q, %v; want %q, %v", got, err, "<html></he", errUpstream)
	}
}

// injectReadWithin reads exactly n bytes from r, failing the test if they do not arrive
// within a few seconds.
func injectReadWithin(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.b
	case <-time.After(5 * time.Second):
		t.Fatalf("the first %d bytes did not arrive before the upstream sent the rest", n)
		return nil
	}
}

// TestInjectScriptStreams checks that what the upstream has sent reaches the client before
// the upstream sends the rest, except for bytes that may begin a tag.
func TestInjectScriptStreams(t *testing.T) {
	const (
		first = "<html><head>"
		held  = "</he"
		rest  = "ad><body>later</body></html>"
		doc   = first + held + rest
	)
	want := injectWant([]byte(doc), injectTestSnippet)

	for _, gzipped := range []bool{false, true} {
		name := "plain"
		if gzipped {
			name = "gzip"
		}
		t.Run(name, func(t *testing.T) {
			pr, pw := io.Pipe()
			proceed, stop := make(chan struct{}), make(chan struct{})
			upstreamDone := make(chan struct{})
			t.Cleanup(func() {
				close(stop)
				pr.Close()
				<-upstreamDone
			})
			go func() {
				defer close(upstreamDone)
				var w io.Writer = pw
				var zw *gzip.Writer
				if gzipped {
					zw = gzip.NewWriter(pw)
					w = zw
				}
				send := func(s string) {
					w.Write([]byte(s))
					if zw != nil {
						zw.Flush()
					}
				}
				send(first + held)
				select {
				case <-proceed:
				case <-stop:
				}
				send(rest)
				if zw != nil {
					zw.Close()
				}
				pw.Close()
			}()

			header := []string{}
			if gzipped {
				header = []string{"Content-Encoding", "gzip"}
			}
			res := newInjectTestResponse(pr, header...)
			if !injectScript(res, injectTestSnippet) {
				t.Fatal("injectScript() = false")
			}
			var client io.Reader = res.Body
			if gzipped {
				// gzip.NewReader reads the header at once, so it must not block either.
				zr := make(chan *gzip.Reader, 1)
				go func() {
					r, err := gzip.NewReader(res.Body)
					if err != nil {
						t.Error(err)
					}
					zr <- r
				}()
				select {
				case client = <-zr:
				case <-time.After(5 * time.Second):
					t.Fatal("the gzip header did not arrive before the upstream sent the rest")
				}
			}
			if got := injectReadWithin(t, client, len(first)); string(got) != first {
				t.Fatalf("first read %q, want %q", got, first)
			}
			close(proceed)
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatal(err)
			}
			if got = append([]byte(first), got...); !bytes.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestInjectScriptClose(t *testing.T) {
	doc := []byte("<html><head></head><body>" + strings.Repeat("x", 100<<10) + "</body></html>")
	bodies := map[string]struct {
		body     []byte
		encoding string
	}{
		"plain": {doc, ""},
		"gzip":  {injectGzip(t, doc, 1<<10), "gzip"},
	}
	for name, tt := range bodies {
		// The compressed output of the gzip case is a few KiB; the plain one spans chunks.
		for _, readFirst := range []int{0, 1, 1 << 10} {
			res := newInjectTestResponse(bytes.NewReader(tt.body), "Content-Encoding", tt.encoding)
			upstream := res.Body.(*injectTestBody)
			injectScript(res, injectTestSnippet)
			if _, err := io.ReadFull(res.Body, make([]byte, readFirst)); err != nil {
				t.Fatal(err)
			}
			if err := res.Body.Close(); err != nil {
				t.Fatal(err)
			}
			if !upstream.closed.Load() {
				t.Errorf("%s: closing after %d bytes left the upstream body open", name, readFirst)
			}
		}
	}
}

func FuzzInjectScript(f *testing.F) {
	for _, doc := range []string{
		"<html><head></head><body></body></html>",
		"</HEAD>",
		"</bOdY>",
		"</hea</head>",
		"<</</b</bo</bod</body",
		"plain text",
		"",
	} {
		f.Add([]byte(doc), uint8(0), false)
		f.Add([]byte(doc), uint8(3), true)
	}
	f.Fuzz(func(t *testing.T, doc []byte, chunk uint8, gzipped bool) {
		size := int(chunk) + 1
		want := injectWant(doc, injectTestSnippet)
		var res *http.Response
		if gzipped {
			res = newInjectTestResponse(bytes.NewReader(injectGzip(t, doc, size)), "Content-Encoding", "gzip")
		} else {
			res = newInjectTestResponse(&injectChunkReader{doc, size})
		}
		if !injectScript(res, injectTestSnippet) {
			t.Fatal("injectScript() = false")
		}
		var got []byte
		if gzipped {
			got = injectGunzip(t, res.Body)
		} else {
			var err error
			if got, err = io.ReadAll(res.Body); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func BenchmarkInjectScript(b *testing.B) {
	var page bytes.Buffer
	page.WriteString("<!doctype html><html><head><title>Report</title>")
	page.WriteString(strings.Repeat(`<link rel="stylesheet" href="/static/app.css">`+"\n", 20))
	page.WriteString("</head><body>\n")
	for i := 0; page.Len() < 64<<10-len("</body></html>"); i++ {
		fmt.Fprintf(&page, `<tr class="row"><td>%d</td><td><a href="/items/%d">item %d</a></td></tr>`+"\n", i, i, i)
	}
	page.WriteString("</body></html>")
	headless := bytes.Replace(page.Bytes(), []byte("</head>"), []byte("<meta x>"), 1)

	cases := []struct {
		name     string
		body     []byte
		encoding string
	}{
		{"plain", page.Bytes(), ""},
		{"plain body only", headless, ""},
		{"gzip", injectGzip(b, page.Bytes(), 1<<20), "gzip"},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(page.Len()))
			b.ReportAllocs()
			// Like httputil.ReverseProxy: a 32 KiB buffer, and a writer that does not read for itself.
			buf := make([]byte, 32<<10)
			sink := struct{ io.Writer }{io.Discard}
			upstream := bytes.NewReader(bc.body)
			for b.Loop() {
				upstream.Reset(bc.body)
				res := newInjectTestResponse(upstream, "Content-Encoding", bc.encoding)
				injectScript(res, injectTestSnippet)
				if _, err := io.CopyBuffer(sink, res.Body, buf); err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
			}
		})
	}
}
