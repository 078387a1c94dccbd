package openai

import (
	"bufio"
	"bytes"
	"mime"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"github.com/regate/gateway/gateway"
)

// multipartMessage is the message of every malformed-multipart error.
const multipartMessage = "We could not parse the multipart body of your request."

func multipartError(detail string) error {
	return &gateway.BadRequestError{Message: multipartMessage + " (" + detail + ")"}
}

// mpPart is one part of a multipart body: its form name and the offsets of its
// content.
type mpPart struct {
	name                     string
	contentStart, contentEnd int
	encoding                 string // Content-Transfer-Encoding, lower case
}

// mpBody is a multipart body split into parts.
type mpBody struct {
	boundary   string
	firstDelim int // offset of the first "--boundary"
	parts      []mpPart
}

// splitMultipart splits body strictly: CRLF line endings only, a closing
// delimiter required, and no "\n--boundary" inside a part (Go's
// mime/multipart accepts a bare LF before a delimiter, so such a body could
// split differently upstream).
func splitMultipart(body []byte, contentType string) (*mpBody, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		return nil, multipartError("the Content-Type must be multipart/form-data with a boundary")
	}
	boundary := params["boundary"]
	if !validBoundary(boundary) {
		return nil, multipartError("the Content-Type must be multipart/form-data with a boundary")
	}
	delim := []byte("--" + boundary)
	crlfDelim := []byte("\r\n--" + boundary)
	mp := &mpBody{boundary: boundary}

	var pos int
	if bytes.HasPrefix(body, delim) {
		mp.firstDelim = 0
	} else if i := bytes.Index(body, crlfDelim); i >= 0 {
		mp.firstDelim = i + 2
	} else {
		return nil, multipartError("no boundary delimiter found")
	}
	pos = mp.firstDelim + len(delim)
	delims := 1
	for {
		// After a delimiter: "--" closes, otherwise optional padding and CRLF.
		// A close delimiter too ends its line (RFC 2046): "--b--x" is no
		// close for mime/multipart.
		if bytes.HasPrefix(body[pos:], []byte("--")) {
			end := pos + 2
			for end < len(body) && (body[end] == ' ' || body[end] == '\t') {
				end++
			}
			if end < len(body) && !bytes.HasPrefix(body[end:], []byte("\r\n")) {
				return nil, multipartError("malformed closing boundary")
			}
			break
		}
		for pos < len(body) && (body[pos] == ' ' || body[pos] == '\t') {
			pos++
		}
		if !bytes.HasPrefix(body[pos:], []byte("\r\n")) {
			return nil, multipartError("malformed boundary line")
		}
		pos += 2
		hdrEnd := bytes.Index(body[pos:], []byte("\r\n\r\n"))
		var hdr []byte
		switch {
		case bytes.HasPrefix(body[pos:], []byte("\r\n")):
			hdr, pos = nil, pos+2
		case hdrEnd >= 0:
			hdr, pos = body[pos:pos+hdrEnd+2], pos+hdrEnd+4
		default:
			return nil, multipartError("unterminated part headers")
		}
		part, err := parsePartHeader(hdr)
		if err != nil {
			return nil, err
		}
		end := bytes.Index(body[pos:], crlfDelim)
		if end < 0 {
			return nil, multipartError("missing closing boundary")
		}
		part.contentStart, part.contentEnd = pos, pos+end
		mp.parts = append(mp.parts, part)
		pos += end + len(crlfDelim)
		delims++
	}
	// Every "\n--boundary" must be one of the delimiters consumed above.
	lfDelim := crlfDelim[1:]
	n := bytes.Count(body, lfDelim)
	if mp.firstDelim != 0 {
		n-- // the first delimiter was counted with its CRLF
	}
	if n != delims-1 {
		return nil, multipartError("ambiguous line endings around a boundary")
	}
	return mp, nil
}

// validBoundary reports whether b is a boundary as RFC 2046 §5.1.1 allows
// it: 1 to 70 of its characters, not ending in a space. Others (a CR, say,
// which a Content-Type can carry RFC 2231-encoded) split differently or
// not at all in other readers.
func validBoundary(b string) bool {
	if b == "" || len(b) > 70 || b[len(b)-1] == ' ' {
		return false
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("'()+_,-./:=? ", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parsePartHeader reads a part's header lines (hdr ends with the CRLF of the
// last one). A bare LF or CR in them is refused: net/textproto ends a line
// at a bare LF, so "name=\"model\" \n\r\n" would end the headers one line
// earlier for mime/multipart than for the split above, and the two would
// read different contents.
func parsePartHeader(hdr []byte) (mpPart, error) {
	var part mpPart
	if len(hdr) == 0 {
		return part, nil
	}
	for i, c := range hdr {
		if (c == '\n' && (i == 0 || hdr[i-1] != '\r')) || (c == '\r' && (i+1 == len(hdr) || hdr[i+1] != '\n')) {
			return part, multipartError("a bare CR or LF in part headers")
		}
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(hdr[:len(hdr):len(hdr)], '\r', '\n'))))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return part, multipartError("malformed part headers")
	}
	if cd := h.Get("Content-Disposition"); cd != "" {
		disp, params, err := mime.ParseMediaType(cd)
		if err != nil {
			return part, multipartError("malformed Content-Disposition")
		}
		if disp == "form-data" {
			part.name = params["name"]
		}
	}
	part.encoding = strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	return part, nil
}

// modelPart returns the index of the one "model" part, -1 when there is none.
func (mp *mpBody) modelPart() (int, error) {
	idx := -1
	for i, p := range mp.parts {
		if p.name != "model" {
			continue
		}
		if idx >= 0 {
			return -1, &gateway.BadRequestError{Param: "model", Message: `duplicate "model" part in multipart body`}
		}
		switch p.encoding {
		case "", "7bit", "8bit", "binary":
		default:
			return -1, &gateway.BadRequestError{Param: "model", Message: `the "model" part must not use a Content-Transfer-Encoding`}
		}
		idx = i
	}
	return idx, nil
}

// ScanMultipart reads the "model" form field of a multipart/form-data body.
// A body without one gives "" and no error. Duplicate model parts, a model
// that is not valid UTF-8, and bodies that are not strictly well-formed are
// *gateway.BadRequestError.
func ScanMultipart(body []byte, contentType string) (string, error) {
	mp, err := splitMultipart(body, contentType)
	if err != nil {
		return "", err
	}
	i, err := mp.modelPart()
	if err != nil || i < 0 {
		return "", err
	}
	p := mp.parts[i]
	v := body[p.contentStart:p.contentEnd]
	if !utf8.Valid(v) {
		return "", &gateway.BadRequestError{Param: "model", Message: "The model parameter must be valid UTF-8."}
	}
	return string(v), nil
}

// ReplaceMultipartModel returns a copy of body whose "model" part holds model;
// all other bytes, the boundary and so the Content-Type stay the same. A body
// without a model part gets one inserted before its first part.
func ReplaceMultipartModel(body []byte, contentType, model string) ([]byte, error) {
	mp, err := splitMultipart(body, contentType)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(model, "\r\n") {
		return nil, &gateway.BadRequestError{Param: "model", Message: "The model name must not contain line breaks."}
	}
	// A part whose content starts with the dash-boundary ends right there
	// for mime/multipart and most readers.
	if strings.HasPrefix(model, "--"+mp.boundary) {
		return nil, &gateway.BadRequestError{Param: "model", Message: "The model name must not start with the multipart boundary."}
	}
	i, err := mp.modelPart()
	if err != nil {
		return nil, err
	}
	if i >= 0 {
		p := mp.parts[i]
		out := make([]byte, 0, len(body)-(p.contentEnd-p.contentStart)+len(model))
		out = append(out, body[:p.contentStart]...)
		out = append(out, model...)
		return append(out, body[p.contentEnd:]...), nil
	}
	at := mp.firstDelim
	out := make([]byte, 0, len(body)+len(model)+len(mp.boundary)+64)
	out = append(out, body[:at]...)
	out = append(out, "--"...)
	out = append(out, mp.boundary...)
	out = append(out, "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"...)
	out = append(out, model...)
	out = append(out, "\r\n"...)
	return append(out, body[at:]...), nil
}
