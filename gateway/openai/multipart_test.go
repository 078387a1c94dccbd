package openai

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/regate/gateway/gateway"
)

// field is one part of a test form: a value, or a file when filename is set.
type field struct {
	name, filename, value string
}

// buildForm encodes fields with mime/multipart.Writer, as SDKs do.
func buildForm(tb testing.TB, fields ...field) (body []byte, contentType string) {
	tb.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		var (
			pw  io.Writer
			err error
		)
		if f.filename != "" {
			pw, err = w.CreateFormFile(f.name, f.filename)
		} else {
			pw, err = w.CreateFormField(f.name)
		}
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(pw, f.value); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// readForm decodes body with the standard library, as a Go upstream would.
func readForm(tb testing.TB, body []byte, contentType string) map[string][]string {
	tb.Helper()
	_, boundary, _ := strings.Cut(contentType, "boundary=")
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	form, err := r.ReadForm(1 << 20)
	if err != nil {
		tb.Fatalf("ReadForm: %v", err)
	}
	out := map[string][]string{}
	for k, v := range form.Value {
		out[k] = v
	}
	for k, fhs := range form.File {
		for _, fh := range fhs {
			f, err := fh.Open()
			if err != nil {
				tb.Fatal(err)
			}
			b, _ := io.ReadAll(f)
			f.Close()
			out[k] = append(out[k], "file:"+fh.Filename+":"+string(b))
		}
	}
	return out
}

func TestScanMultipart(t *testing.T) {
	audio := string([]byte{0, 1, 2, '\r', '\n', '-', '-', 0xff, 'x'})
	tests := []struct {
		name   string
		fields []field
		want   string
	}{
		{"model first", []field{{name: "model", value: "whisper-1"}, {name: "file", filename: "a.mp3", value: audio}}, "whisper-1"},
		{"model last", []field{{name: "file", filename: "a.mp3", value: audio}, {name: "language", value: "en"}, {name: "model", value: "openai/whisper"}}, "openai/whisper"},
		{"no model", []field{{name: "file", filename: "a.mp3", value: audio}}, ""},
		{"empty model", []field{{name: "model", value: ""}}, ""},
		{"model with spaces kept", []field{{name: "model", value: " m "}}, " m "},
		{"similar names ignored", []field{{name: "models", value: "x"}, {name: "Model", value: "y"}, {name: "model", value: "m"}}, "m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := buildForm(t, tc.fields...)
			got, err := ScanMultipart(body, ct)
			if err != nil {
				t.Fatalf("ScanMultipart() error = %v", err)
			}
			if got != tc.want {
				t.Errorf("ScanMultipart() = %q, want %q", got, tc.want)
			}
			if std := readForm(t, body, ct)["model"]; len(std) == 1 && std[0] != got {
				t.Errorf("ScanMultipart() = %q, mime/multipart reads %q", got, std[0])
			}
		})
	}
}

func TestScanMultipartErrors(t *testing.T) {
	good, ct := buildForm(t, field{name: "model", value: "m"}, field{name: "file", filename: "a.wav", value: "RIFF"})
	dup, dupCT := buildForm(t, field{name: "model", value: "a"}, field{name: "model", value: "b"})
	dupFile, dupFileCT := buildForm(t, field{name: "model", value: "a"}, field{name: "model", filename: "m.txt", value: "b"})
	_, boundary, _ := strings.Cut(ct, "boundary=")
	lfOnly := bytes.ReplaceAll(good, []byte("\r\n"), []byte("\n"))
	// A part whose content hides "\n--boundary" (no CR): mime/multipart would
	// split there.
	smuggled := bytes.Replace(good, []byte("RIFF"), []byte("RIFF\n--"+boundary+"\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nevil"), 1)
	qp := []byte("--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nm=3D\r\n--" + boundary + "--\r\n")

	tests := []struct {
		name      string
		body      []byte
		ct        string
		wantParam string
		wantIn    string
	}{
		{"duplicate model", dup, dupCT, "model", `duplicate "model"`},
		{"duplicate model as file", dupFile, dupFileCT, "model", `duplicate "model"`},
		{"not multipart", good, "application/json", "", "multipart/form-data"},
		{"no boundary", good, "multipart/form-data", "", "boundary"},
		{"wrong boundary", good, "multipart/form-data; boundary=other", "", "no boundary"},
		{"truncated", good[:len(good)-len(boundary)-8], ct, "", "closing boundary"},
		{"lf line endings", lfOnly, ct, "", "could not parse"},
		{"smuggled delimiter", smuggled, ct, "", "ambiguous"},
		{"transfer encoding on model", qp, ct, "model", "Content-Transfer-Encoding"},
		{"empty body", nil, ct, "", "no boundary"},
		{"close delimiter with trailing text", append(good[:len(good)-2:len(good)-2], "x\r\n"...), ct, "", "closing boundary"},
		{"boundary with a CR", []byte("--\r--"), "multipart/form-data; boundary*=utf-8''%0D", "", "with a boundary"},
		{"boundary ending in a space", []byte("--a \r\n\r\nx\r\n--a --"), `multipart/form-data; boundary="a "`, "", "with a boundary"},
		{"boundary of 71 characters", good, "multipart/form-data; boundary=" + strings.Repeat("a", 71), "", "with a boundary"},
		// mime/multipart ends the header line at the bare LF and reads the
		// model "\r\n"; the split above would read "".
		{"bare LF in part headers", []byte("--X\r\nContent-Disposition: form-data; name=\"model\" \n\r\n\r\n\r\n--X--"), "multipart/form-data; boundary=X", "", "bare CR or LF"},
		{"bare CR in part headers", []byte("--X\r\nContent-Disposition: form-data; name=\"model\"\rX: y\r\n\r\nm\r\n--X--"), "multipart/form-data; boundary=X", "", "bare CR or LF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ScanMultipart(tc.body, tc.ct)
			var bad *gateway.BadRequestError
			if !errors.As(err, &bad) {
				t.Fatalf("ScanMultipart() error = %v, want *gateway.BadRequestError", err)
			}
			if bad.Param != tc.wantParam || !strings.Contains(bad.Message, tc.wantIn) {
				t.Errorf("ScanMultipart() error = {Param:%q Message:%q}, want Param %q and a message containing %q",
					bad.Param, bad.Message, tc.wantParam, tc.wantIn)
			}
		})
	}
}

func TestReplaceMultipartModel(t *testing.T) {
	audio := string([]byte{0, 1, 2, '\r', '\n', 0xff, 'x'})
	tests := []struct {
		name   string
		fields []field
		model  string
	}{
		{"model first", []field{{name: "model", value: "whisper"}, {name: "file", filename: "a.mp3", value: audio}, {name: "language", value: "en"}}, "whisper-1"},
		{"model last", []field{{name: "file", filename: "a.mp3", value: audio}, {name: "model", value: "openai/whisper-1"}}, "whisper-1"},
		{"longer name", []field{{name: "model", value: "m"}, {name: "prompt", value: "p"}}, "a-much-longer-upstream-model-name"},
		{"missing model inserted", []field{{name: "file", filename: "a.mp3", value: audio}}, "whisper-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := buildForm(t, tc.fields...)
			orig := bytes.Clone(body)
			out, err := ReplaceMultipartModel(body, ct, tc.model)
			if err != nil {
				t.Fatalf("ReplaceMultipartModel() error = %v", err)
			}
			if !bytes.Equal(body, orig) {
				t.Error("ReplaceMultipartModel modified its input")
			}
			if got, err := ScanMultipart(out, ct); err != nil || got != tc.model {
				t.Errorf("ScanMultipart(ReplaceMultipartModel()) = %q, %v, want %q", got, err, tc.model)
			}
			// Every other field reads the same through mime/multipart.
			before, after := readForm(t, body, ct), readForm(t, out, ct)
			before["model"] = []string{tc.model}
			if len(before) != len(after) {
				t.Fatalf("fields after rewrite = %v, want %v", after, before)
			}
			for k, v := range before {
				if strings.Join(after[k], "\x00") != strings.Join(v, "\x00") {
					t.Errorf("field %q after rewrite = %q, want %q", k, after[k], v)
				}
			}
			// Bytes outside the model part are untouched.
			old, _ := ScanMultipart(body, ct)
			if old != "" {
				i := bytes.Index(body, []byte("name=\"model\"\r\n\r\n"+old+"\r\n"))
				prefixLen := i + len("name=\"model\"\r\n\r\n")
				if !bytes.Equal(out[:prefixLen], body[:prefixLen]) {
					t.Error("bytes before the model part changed")
				}
				if !bytes.Equal(out[prefixLen+len(tc.model):], body[prefixLen+len(old):]) {
					t.Error("bytes after the model part changed")
				}
			}
		})
	}
}

func TestReplaceMultipartModelErrors(t *testing.T) {
	body, ct := buildForm(t, field{name: "model", value: "m"})
	dup, dupCT := buildForm(t, field{name: "model", value: "a"}, field{name: "model", value: "b"})
	tests := []struct {
		name  string
		body  []byte
		ct    string
		model string
	}{
		{"line break in model", body, ct, "a\r\n--x"},
		{"model starting with the boundary", body, ct, "--" + ct[strings.Index(ct, "boundary=")+len("boundary="):] + "x"},
		{"duplicate model", dup, dupCT, "m"},
		{"not multipart", body, "text/plain", "m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := ReplaceMultipartModel(tc.body, tc.ct, tc.model); err == nil {
				t.Errorf("ReplaceMultipartModel(%q) = %q, nil, want an error", tc.model, out)
			}
		})
	}
}
