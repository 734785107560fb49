package chserver

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// httpCompressionLevel matches ClickHouse's default http_zlib_compression_level.
const httpCompressionLevel = 3

// frameSize bounds the uncompressed size of one ClickHouse-framed block we
// write (the reader's limit is 128 MB).
const frameSize = 1 << 20

// decodeBody undoes the request's Content-Encoding. The returned func frees
// decoder resources.
func decodeBody(body io.Reader, encoding string) (io.Reader, func(), error) {
	nop := func() {}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity", "none":
		return body, nop, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, nop, newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "reading gzip body: %v", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case "deflate":
		// HTTP "deflate" is zlib-wrapped (what clickhouse-go sends); accept raw
		// deflate too.
		br := bufio.NewReader(body)
		if hdr, err := br.Peek(2); err == nil && hdr[0]&0x0f == 8 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nop, newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "reading deflate body: %v", err)
			}
			return zr, func() { _ = zr.Close() }, nil
		}
		fr := flate.NewReader(br)
		return fr, func() { _ = fr.Close() }, nil
	case "br":
		return brotli.NewReader(body), nop, nil
	case "zstd":
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nop, newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "reading zstd body: %v", err)
		}
		return zr, zr.Close, nil
	}
	return nil, nop, newException(codeBadArguments, "BAD_ARGUMENTS", "Unknown Content-Encoding of HTTP request: %s", encoding)
}

// framedReader reads ClickHouse-framed compressed blocks (decompress=1).
// ch-go reports a clean end between frames as a wrapped EOF; io.Copy needs the
// bare io.EOF.
type framedReader struct{ r *compress.Reader }

func (f framedReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return n, io.EOF
	}
	return n, err
}

// acceptedEncoding picks the first encoding of Accept-Encoding the server
// supports, or "".
func acceptedEncoding(header string) string {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "gzip", "deflate", "br", "zstd":
			return name
		}
	}
	return ""
}

// encodeWriter wraps w with the HTTP content encoding enc.
func encodeWriter(w io.Writer, enc string) (io.WriteCloser, error) {
	switch enc {
	case "gzip":
		return gzip.NewWriterLevel(w, httpCompressionLevel)
	case "deflate":
		return zlib.NewWriterLevel(w, httpCompressionLevel)
	case "br":
		return brotli.NewWriterLevel(w, httpCompressionLevel), nil
	case "zstd":
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	}
	return nil, errors.New("unsupported encoding " + enc)
}

// writeFramed writes data as ClickHouse-framed compressed blocks.
func writeFramed(w io.Writer, data []byte, method compress.Method, level compress.Level) error {
	cw := compress.NewWriter(level, method)
	for len(data) > 0 {
		n := min(len(data), frameSize)
		if err := cw.Compress(data[:n]); err != nil {
			return err
		}
		if _, err := w.Write(cw.Data); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// frameMethod parses network_compression_method (default LZ4).
func frameMethod(s string) (compress.Method, error) {
	switch strings.ToUpper(s) {
	case "", "LZ4":
		return compress.LZ4, nil
	case "LZ4HC":
		return compress.LZ4HC, nil
	case "ZSTD":
		return compress.ZSTD, nil
	case "NONE":
		return compress.None, nil
	}
	return 0, newException(codeBadArguments, "BAD_ARGUMENTS", "Unknown compression method: %s", s)
}
