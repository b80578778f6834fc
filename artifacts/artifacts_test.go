package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// entry is one entry of a test archive.
type entry struct {
	name string
	typ  byte
	body string
	link string
}

func file(name, body string) entry { return entry{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) entry        { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: to}
}

// makeTar writes entries as a tar, gzip-compressed when gz.
func makeTar(t testing.TB, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Name: e.name, Typeflag: e.typ, PAXRecords: map[string]string{"comment": "abc"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %s: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// readTarGz lists a tar.gz as name -> content ("/" for a directory).
func readTarGz(t testing.TB, r io.Reader) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("kept archive is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("kept archive is not a valid tar: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			out[h.Name] = "/"
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = string(b)
		default:
			t.Fatalf("kept archive has entry %s of type %q", h.Name, h.Typeflag)
		}
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatalf("kept archive's gzip stream: %v", err)
	}
	return out
}

func errCode(err error) (chub.Kind, string) {
	var e *chub.Error
	if errors.As(err, &e) {
		return e.Kind, e.Code
	}
	return chub.KindInternal, ""
}

func TestCheckTar(t *testing.T) {
	cases := []struct {
		name    string
		archive []byte
		max     int
		wantErr string // "" when accepted; else a piece of the message (the entry, what is wrong)
	}{
		{"files and folders", makeTar(t, true, dir("src/"), file("src/a.py", "print(1)"), file("README", "x")), 0, ""},
		{"./ prefixed (tar -C dir -czf - .)", makeTar(t, true, dir("./"), file("./train.py", "x"), dir("./pkg/"), file("./pkg/m.py", "y")), 0, ""},
		{"plain tar", makeTar(t, false, file("a", "x")), 0, ""},
		{"empty archive", makeTar(t, true), 0, ""},
		{"symlink inside", makeTar(t, true, dir("lib/"), file("lib/x.py", "x"), symlink("x.py", "lib/x.py")), 0, ""},
		{"symlink up within the folder", makeTar(t, true, dir("a/"), dir("b/"), symlink("a/to-b", "../b")), 0, ""},
		{"symlink chain inside", makeTar(t, true, symlink("l1", "l2"), symlink("l2", "d"), dir("d/")), 0, ""},
		{"dangling symlink inside", makeTar(t, true, symlink("later", "not/yet")), 0, ""},
		{"pax global header (git archive)", makeTar(t, true, entry{name: "pax_global_header", typ: tar.TypeXGlobalHeader}, file("a", "x")), 0, ""},
		{"as many entries as allowed", makeTar(t, true, file("a", ""), file("b", ""), file("c", "")), 3, ""},

		{"parent escape", makeTar(t, true, file("../evil", "x")), 0, `"../evil" goes up`},
		{"inner escape", makeTar(t, true, file("a/../../evil", "x")), 0, `"a/../../evil" goes up`},
		{"absolute", makeTar(t, true, file("/etc/passwd", "x")), 0, `"/etc/passwd" is an absolute path`},
		{"unclean", makeTar(t, true, file("a//b", "x")), 0, `"a//b" is not a clean path`},
		{"dot inside", makeTar(t, true, file("a/./b", "x")), 0, `"a/./b" is not a clean path`},
		{"root as a file", makeTar(t, true, file(".", "x")), 0, `names the code's folder itself`},
		{"symlink absolute", makeTar(t, true, symlink("etc", "/etc")), 0, `"etc" is a symlink to the absolute path "/etc"`},
		{"symlink escape", makeTar(t, true, dir("a/"), symlink("a/up", "../../x")), 0, `"a/up" is a symlink to "../../x", which is outside`},
		{"symlink escape through a link", makeTar(t, true, symlink("s", "."), symlink("x", "s/..")), 0, `"x" is a symlink to "s/..", which leads outside`},
		{"symlink escape through a later link", makeTar(t, true, dir("d/"), symlink("d/x", "../s/.."), symlink("s", ".")), 0, `"d/x" is a symlink to "../s/..", which leads outside`},
		{"symlink loop", makeTar(t, true, symlink("a", "b"), symlink("b", "a")), 0, `more than 40 links`},
		{"symlink without target", makeTar(t, true, symlink("a", "")), 0, `"a" is a symlink without a target`},
		{"entry through a symlink", makeTar(t, true, dir("real/"), symlink("l", "real"), file("l/f", "x")), 0, `"l/f" lies under the symlink "l"`},
		{"symlink over a folder", makeTar(t, true, file("d/f", "x"), symlink("d", "elsewhere")), 0, `"d" is a symlink replacing an earlier entry`},
		{"file over a symlink", makeTar(t, true, symlink("a", "b"), file("a", "x")), 0, `"a" replaces a symlink`},
		{"hard link", makeTar(t, true, file("a", "x"), entry{name: "b", typ: tar.TypeLink, link: "a"}), 0, `"b" is a hard link`},
		{"character device", makeTar(t, true, entry{name: "null", typ: tar.TypeChar}), 0, `"null" is a character device`},
		{"block device", makeTar(t, true, entry{name: "sda", typ: tar.TypeBlock}), 0, `"sda" is a block device`},
		{"fifo", makeTar(t, true, entry{name: "pipe", typ: tar.TypeFifo}), 0, `"pipe" is a FIFO`},
		{"too many entries", makeTar(t, true, file("a", ""), file("b", ""), file("c", ""), file("d", "")), 3, "more than 3 entries"},
		{"long name", makeTar(t, true, file(strings.Repeat("a/", 2100)+"f", "")), 0, "longer than 4096 bytes"},
		{"garbage", []byte("this is not a tarball at all, not even close................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."), 0, "not a valid tar"},
		{"garbage gzip", gzipOf(t, bytes.Repeat([]byte("x"), 2000)), 0, "not a valid tar"},
		{"cut gzip", makeTar(t, true, file("a", strings.Repeat("x", 5000)))[:60], 0, "InvalidCodeArchive"},
		{"bad gzip header", []byte{0x1f, 0x8b, 0, 0, 0}, 0, "not valid gzip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckTar(bytes.NewReader(c.archive), c.max)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v; want accepted", err)
				}
				return
			}
			kind, code := errCode(err)
			if kind != chub.KindInvalid || code != "InvalidCodeArchive" || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v; want InvalidCodeArchive saying %s", err, c.wantErr)
			}
		})
	}
}

func TestCheckTarUnpackedBound(t *testing.T) {
	// 1 MiB of zeros compresses to a few KiB: a bound on the compressed
	// size alone would let it through.
	bomb := makeTar(t, true, file("zeros", string(make([]byte, 1<<20))))
	cases := []struct {
		limit    int64
		wantKind chub.Kind
	}{
		{2 << 20, -1},
		{512 << 10, chub.KindTooLarge},
	}
	for _, c := range cases {
		err := checkTar(bytes.NewReader(bomb), 0, c.limit)
		if c.wantKind == -1 {
			if err != nil {
				t.Errorf("limit %d: got %v; want accepted", c.limit, err)
			}
			continue
		}
		if kind, _ := errCode(err); kind != c.wantKind {
			t.Errorf("limit %d: got %v; want kind %d", c.limit, err, c.wantKind)
		}
	}
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return &Store{Dir: filepath.Join(t.TempDir(), "artifacts")}
}

// leftovers lists what is in a directory besides the expected names.
func leftovers(t testing.TB, d string, want ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(d)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		if !strings.Contains(strings.Join(want, "\x00"), e.Name()) {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestPutBlob(t *testing.T) {
	good := makeTar(t, true, file("train.py", "print('hi')"), dir("data/"))
	sum := sha256.Sum256(good)
	cases := []struct {
		name     string
		id       string
		body     io.Reader
		maxBlob  int64
		wantKind chub.Kind // -1: stored
		wantCode string
	}{
		{"good", "b1", bytes.NewReader(good), 0, -1, ""},
		{"exactly the limit", "b2", bytes.NewReader(good), int64(len(good)), -1, ""},
		{"one byte over the limit", "b3", bytes.NewReader(good), int64(len(good)) - 1, chub.KindTooLarge, "RequestEntityTooLarge"},
		{"bad archive", "b4", bytes.NewReader(makeTar(t, true, file("../x", ""))), 0, chub.KindInvalid, "InvalidCodeArchive"},
		{"not gzip", "b5", bytes.NewReader(makeTar(t, false, file("x", ""))), 0, chub.KindInvalid, "InvalidCodeArchive"},
		{"empty body", "b6", bytes.NewReader(nil), 0, chub.KindInvalid, "InvalidCodeArchive"},
		{"broken upload", "b7", &failingReader{data: good[:20], err: io.ErrUnexpectedEOF}, 0, chub.KindInternal, ""},
		{"id with a slash", "a/b", bytes.NewReader(good), 0, chub.KindInvalid, "InvalidId"},
		{"id going up", "..", bytes.NewReader(good), 0, chub.KindInvalid, "InvalidId"},
		{"empty id", "", bytes.NewReader(good), 0, chub.KindInvalid, "InvalidId"},
		{"id too long", strings.Repeat("a", 65), bytes.NewReader(good), 0, chub.KindInvalid, "InvalidId"},
	}
	s := newStore(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.MaxBlob = c.maxBlob
			size, got, err := s.PutBlob(c.id, c.body)
			if c.wantKind != -1 {
				kind, code := errCode(err)
				if err == nil || kind != c.wantKind || code != c.wantCode {
					t.Fatalf("got %v (kind %d code %q); want kind %d code %q", err, kind, code, c.wantKind, c.wantCode)
				}
				if _, err := s.OpenBlob(c.id); err == nil {
					t.Fatalf("refused blob %q can be opened; want nothing stored", c.id)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want stored", err)
			}
			if size != int64(len(good)) || got != hex.EncodeToString(sum[:]) {
				t.Fatalf("got size %d sha %s; want %d %x", size, got, len(good), sum)
			}
			f, err := s.OpenBlob(c.id)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			if !bytes.Equal(b, good) {
				t.Fatalf("stored content differs from the upload")
			}
			if st, _ := f.Stat(); st.Mode().Perm() != 0o600 {
				t.Fatalf("blob file mode: got %v; want 0600", st.Mode().Perm())
			}
		})
	}
	if extra := leftovers(t, filepath.Join(s.Dir, "blobs"), "b1.tar.gz", "b2.tar.gz"); len(extra) > 0 {
		t.Errorf("left in blobs/: %v; want only the stored blobs", extra)
	}
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, "blobs")} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("mode of %s: %v (%v); want 0700", d, st.Mode().Perm(), err)
		}
	}
	// Stored once: a second upload is refused and the first kept.
	s.MaxBlob = 0
	other := makeTar(t, true, file("other.py", "x"))
	if _, _, err := s.PutBlob("b1", bytes.NewReader(other)); chub.ErrorKind(err) != chub.KindConflict {
		t.Fatalf("second upload of b1: got %v; want a conflict", err)
	}
	if _, err := s.OpenBlob("missing"); chub.ErrorKind(err) != chub.KindNotFound {
		t.Fatalf("open missing blob: got %v; want not found", err)
	}
	if _, err := s.OpenBlob("../b1"); chub.ErrorKind(err) != chub.KindInvalid {
		t.Fatalf("open ../b1: got %v; want invalid", err)
	}
}

func TestPutBlobConcurrentUploadsStoreOne(t *testing.T) {
	s := newStore(t)
	bodies := [][]byte{makeTar(t, true, file("a", "first")), makeTar(t, true, file("a", "second"))}
	var wg sync.WaitGroup
	sums := make([]string, 2)
	errs := make([]error, 2)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, sums[i], errs[i] = s.PutBlob("same", bytes.NewReader(bodies[i]))
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won == -1:
			won = i
		case err == nil:
			t.Fatalf("both uploads stored")
		case chub.ErrorKind(err) != chub.KindConflict:
			t.Fatalf("upload %d: got %v; want stored or a conflict", i, err)
		}
	}
	if won == -1 {
		t.Fatal("no upload stored")
	}
	f, err := s.OpenBlob("same")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sums[won] {
		t.Fatalf("stored content is not the winner's")
	}
}

func TestPutLog(t *testing.T) {
	cases := []struct {
		name          string
		stream        string
		body          io.Reader
		maxLog        int64
		want          string
		wantTruncated bool
		wantErr       bool
	}{
		{"short", "stdout", strings.NewReader("hello\n"), 0, "hello\n", false, false},
		{"empty", "stderr", strings.NewReader(""), 0, "", false, false},
		{"exactly the limit", "std_log", strings.NewReader("0123456789"), 10, "0123456789", false, false},
		{"over the limit", "std_log", strings.NewReader("0123456789abc"), 10, "0123456789", true, false},
		{"replaced", "stdout", strings.NewReader("again\n"), 0, "again\n", false, false},
		{"broken stream keeps what came", "stderr", &failingReader{data: []byte("part"), err: errors.New("connection reset")}, 0, "part", true, true},
	}
	s := newStore(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.MaxLog = c.maxLog
			n, trunc, err := s.PutLog("job-1", c.stream, c.body)
			if (err != nil) != c.wantErr {
				t.Fatalf("err %v; want error %v", err, c.wantErr)
			}
			if n != int64(len(c.want)) || trunc != c.wantTruncated {
				t.Fatalf("got n %d truncated %v; want %d %v", n, trunc, len(c.want), c.wantTruncated)
			}
			f, err := s.OpenLog("job-1", c.stream)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			if string(b) != c.want {
				t.Fatalf("kept %q; want %q", b, c.want)
			}
		})
	}
	refused := []struct {
		name, job, stream string
		kind              chub.Kind
	}{
		{"unknown stream", "job-1", "stdin", chub.KindInvalid},
		{"stream with a path", "job-1", "../stdout", chub.KindInvalid},
		{"bad job id", "../job-1", "stdout", chub.KindInvalid},
	}
	for _, c := range refused {
		if _, _, err := s.PutLog(c.job, c.stream, strings.NewReader("x")); chub.ErrorKind(err) != c.kind {
			t.Errorf("put %s: got %v; want kind %d", c.name, err, c.kind)
		}
		if _, err := s.OpenLog(c.job, c.stream); chub.ErrorKind(err) != c.kind {
			t.Errorf("open %s: got %v; want kind %d", c.name, err, c.kind)
		}
	}
	if _, err := s.OpenLog("job-2", "stdout"); chub.ErrorKind(err) != chub.KindNotFound {
		t.Errorf("open a log never kept: got %v; want not found", err)
	}
	if extra := leftovers(t, filepath.Join(s.Dir, "jobs", "job-1"), "stdout.txt", "stderr.txt", "std_log.txt"); len(extra) > 0 {
		t.Errorf("left in the job's directory: %v", extra)
	}
}

// cutTar is a tar stream that breaks off in the middle of its last entry.
func cutTar(t testing.TB) []byte {
	b := makeTar(t, false, dir("outputs/"), file("outputs/whole.txt", "whole"), file("outputs/cut.bin", strings.Repeat("x", 4000)))
	return b[:3*512+512+1000]
}

func TestPutOutputs(t *testing.T) {
	cases := []struct {
		name          string
		body          io.Reader
		maxOutputs    int64
		want          map[string]string
		wantN         int64
		wantTruncated bool
		wantErr       bool
	}{
		{"files and folders", bytes.NewReader(makeTar(t, false, dir("outputs/"), dir("outputs/model/"), file("outputs/model/w.txt", "w42\n"), file("outputs/m.json", "{}"))), 0,
			map[string]string{"outputs/": "/", "outputs/model/": "/", "outputs/model/w.txt": "w42\n", "outputs/m.json": "{}"}, 6, false, false},
		{"gzip'd stream", bytes.NewReader(makeTar(t, true, file("outputs/a", "x"))), 0, map[string]string{"outputs/a": "x"}, 1, false, false},
		{"./ prefix", bytes.NewReader(makeTar(t, false, file("./outputs/a", "x"))), 0, map[string]string{"outputs/a": "x"}, 1, false, false},
		{"hostile entries skipped", bytes.NewReader(makeTar(t, false,
			file("outputs/ok", "1"),
			symlink("outputs/link", "/etc/shadow"),
			entry{name: "outputs/dev", typ: tar.TypeChar},
			entry{name: "outputs/fifo", typ: tar.TypeFifo},
			entry{name: "outputs/hard", typ: tar.TypeLink, link: "outputs/ok"},
			file("outputs/../escape", "2"),
			file("/abs/outputs/x", "3"),
			file("outputs//unclean", "4"),
			file("elsewhere.txt", "5"),
			file("outputs", "6"),
			file("outputs/ok", "dup"),
			file("outputs/ok/under-a-file", "7"),
			file("outputs/last", "8"))), 0,
			map[string]string{"outputs/ok": "1", "outputs/last": "8"}, 2, false, false},
		{"over the limit", bytes.NewReader(makeTar(t, false, file("outputs/a", "12345"), file("outputs/b", "12345"), file("outputs/c", "1"))), 8,
			map[string]string{"outputs/a": "12345"}, 5, true, false},
		{"exactly the limit", bytes.NewReader(makeTar(t, false, file("outputs/a", "12345"), file("outputs/b", "123"))), 8,
			map[string]string{"outputs/a": "12345", "outputs/b": "123"}, 8, false, false},
		{"stream cut mid-entry", bytes.NewReader(cutTar(t)), 0, map[string]string{"outputs/": "/", "outputs/whole.txt": "whole"}, 5, true, false},
		{"garbage", strings.NewReader(strings.Repeat("garbage!", 200)), 0, map[string]string{}, 0, true, false},
		{"empty stream", strings.NewReader(""), 0, map[string]string{}, 0, false, false},
		{"broken connection", &failingReader{data: makeTar(t, false, file("outputs/a", "x"))[:1536], err: errors.New("connection reset")}, 0,
			map[string]string{"outputs/a": "x"}, 1, true, true},
	}
	s := newStore(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.MaxOutputs = c.maxOutputs
			n, trunc, err := s.PutOutputs("job-1", c.body)
			if (err != nil) != c.wantErr {
				t.Fatalf("err %v; want error %v", err, c.wantErr)
			}
			if n != c.wantN || trunc != c.wantTruncated {
				t.Fatalf("got n %d truncated %v; want %d %v", n, trunc, c.wantN, c.wantTruncated)
			}
			f, err := s.OpenOutputs("job-1")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := readTarGz(t, f); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("kept %v; want %v", got, c.want)
			}
			f.Seek(0, io.SeekStart)
			if err := CheckTar(f, 0); err != nil {
				t.Fatalf("the kept archive fails CheckTar: %v", err)
			}
		})
	}
	if extra := leftovers(t, filepath.Join(s.Dir, "jobs", "job-1"), "outputs.tar.gz"); len(extra) > 0 {
		t.Errorf("left in the job's directory: %v", extra)
	}
}

func TestPutOutputsBoundsHeaders(t *testing.T) {
	var entries []entry
	for i := 0; i < 50; i++ {
		entries = append(entries, symlink("outputs/l"+string(rune('a'+i%26))+string(rune('a'+i/26)), "x"))
	}
	entries = append(entries, file("outputs/after", "x"))
	var out bytes.Buffer
	n, trunc, readErr, err := copyOutputs(&memSpool{b: &out}, bytes.NewReader(makeTar(t, false, entries...)), 1<<20, 10)
	if err != nil || readErr != nil {
		t.Fatalf("copy: %v %v", err, readErr)
	}
	if !trunc || n != 0 {
		t.Fatalf("50 skipped headers with a bound of 10: got n %d truncated %v; want 0 true", n, trunc)
	}
	if got := readTarGz(t, bytes.NewReader(gzipOf(t, out.Bytes()))); len(got) != 0 {
		t.Fatalf("kept %v; want nothing", got)
	}
}

// memSpool is a spoolFile in memory.
type memSpool struct {
	b   *bytes.Buffer
	off int64
}

func (m *memSpool) Write(p []byte) (int, error) {
	if m.off != int64(m.b.Len()) {
		return 0, errors.New("memSpool writes only at the end")
	}
	n, err := m.b.Write(p)
	m.off += int64(n)
	return n, err
}
func (m *memSpool) Truncate(size int64) error { m.b.Truncate(int(size)); return nil }
func (m *memSpool) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, errors.New("memSpool seeks from the start only")
	}
	m.off = off
	return off, nil
}

func TestRemoveJob(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.PutLog("job-1", "stdout", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutOutputs("job-1", bytes.NewReader(makeTar(t, false, file("outputs/a", "x")))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutLog("job-2", "stdout", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		job  string
		kind chub.Kind // -1: no error
	}{
		{"job-1", -1},
		{"job-1", -1}, // nothing left: still fine
		{"never-kept", -1},
		{"../job-2", chub.KindInvalid},
		{"", chub.KindInvalid},
	}
	for _, c := range cases {
		err := s.RemoveJob(c.job)
		if c.kind == -1 && err != nil || c.kind != -1 && chub.ErrorKind(err) != c.kind {
			t.Errorf("remove %q: got %v; want kind %d", c.job, err, c.kind)
		}
	}
	if _, err := s.OpenLog("job-1", "stdout"); chub.ErrorKind(err) != chub.KindNotFound {
		t.Errorf("log of a removed job: got %v; want not found", err)
	}
	if _, err := s.OpenOutputs("job-1"); chub.ErrorKind(err) != chub.KindNotFound {
		t.Errorf("outputs of a removed job: got %v; want not found", err)
	}
	if _, err := s.OpenLog("job-2", "stdout"); err != nil {
		t.Errorf("log of another job after a remove: %v", err)
	}
	got := leftovers(t, filepath.Join(s.Dir, "jobs"))
	sort.Strings(got)
	if !reflect.DeepEqual(got, []string{"job-2"}) {
		t.Errorf("jobs kept after removing job-1: got %v; want [job-2]", got)
	}
}
