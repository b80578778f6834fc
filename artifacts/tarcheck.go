package artifacts

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/computehub/chub"
)

// MaxUnpacked bounds the bytes a checked archive unpacks to (its tar
// stream, headers and contents).
const MaxUnpacked = 8 << 30

const (
	maxName      = 4096     // the longest entry name or link target (Linux's PATH_MAX)
	maxNameBytes = 32 << 20 // all the names an archive's check remembers
	maxLinkWork  = 64 << 20 // bytes of path looked up while resolving symlinks
	maxLinkHops  = 40       // symlinks followed resolving one path (Linux's limit)
)

var errUnpackedTooLarge = errors.New("the archive unpacks to more than its limit")

// limitReader reads at most n bytes of r, then fails with errUnpackedTooLarge.
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.over = true
		return 0, errUnpackedTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func invalidArchive(format string, args ...any) error {
	return chub.Invalid("InvalidCodeArchive", "", format, args...)
}

// shortName is an entry's name as messages quote it.
func shortName(n string) string {
	if len(n) > 200 {
		return n[:200] + "..."
	}
	return n
}

func invalidEntry(name, what string) error {
	return invalidArchive("entry %q %s", shortName(name), what)
}

// decompress returns r's content, gunzipped when it is gzip-compressed.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// checkGzipTar is CheckTar for content that must be gzip-compressed.
func checkGzipTar(r io.Reader, maxEntries int) error {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return invalidArchive("the upload is not gzip-compressed; send a gzip-compressed tar (tar -C DIR -czf code.tar.gz .)")
	}
	return CheckTar(br, maxEntries)
}

// CheckTar reads the tar stream r (gzip-compressed or not) to its end and
// refuses it (KindInvalid, code InvalidCodeArchive, the message naming
// the entry and what is wrong with it) unless every entry is a regular
// file, a directory or a symlink whose target stays inside the archive,
// with a clean relative name ("./" in front is allowed) that nothing
// before it made a symlink of. Hard links, devices, FIFOs and the like are
// refused; a pax global header (git archive writes one) is allowed. More
// than maxEntries entries (MaxEntries when maxEntries <= 0) is refused
// too, and an archive that unpacks to more than MaxUnpacked bytes is
// KindTooLarge.
func CheckTar(r io.Reader, maxEntries int) error {
	return checkTar(r, maxEntries, MaxUnpacked)
}

func checkTar(r io.Reader, maxEntries int, maxUnpacked int64) error {
	if maxEntries <= 0 {
		maxEntries = MaxEntries
	}
	src, err := decompress(r)
	if err != nil {
		return invalidArchive("the archive is not valid gzip: %v", err)
	}
	lim := &limitReader{r: src, n: maxUnpacked}
	tr := tar.NewReader(lim)
	c := &tarChecker{links: map[string]string{}, seen: map[string]bool{}}
	var unpacked int64
	for count := 0; ; count++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if lim.over {
			return unpackedTooLarge(maxUnpacked)
		}
		if err != nil {
			return invalidArchive("the archive is not a valid tar after %d entries: %v", count, err)
		}
		if count >= maxEntries {
			return invalidArchive("the archive holds more than %d entries; leave generated files and data out of the code", maxEntries)
		}
		if err := c.check(h); err != nil {
			return err
		}
		// The sizes the files unpack to (a sparse file's is more than
		// the bytes it takes in the archive).
		if h.Typeflag == tar.TypeReg || h.Typeflag == '\x00' {
			if h.Size < 0 || h.Size > maxUnpacked-unpacked {
				return unpackedTooLarge(maxUnpacked)
			}
			unpacked += h.Size
		}
	}
	// The rest of the stream: the gzip trailer, whose checksum is checked.
	if _, err := io.Copy(io.Discard, lim); err != nil {
		if lim.over {
			return unpackedTooLarge(maxUnpacked)
		}
		return invalidArchive("the archive's compressed stream is damaged: %v", err)
	}
	return c.checkLinks()
}

func unpackedTooLarge(limit int64) error {
	return chub.Errorf(chub.KindTooLarge, "RequestEntityTooLarge", "",
		"the archive unpacks to more than %d bytes; leave data and build output out of the code", limit)
}

// tarChecker holds what CheckTar remembers of the entries read so far.
type tarChecker struct {
	links     map[string]string // symlink name -> target
	seen      map[string]bool   // every entry's name and every parent of one
	nameBytes int
}

// cleanName checks an entry's name and returns it clean, without a
// leading "./" or a trailing "/"; "." is the archive's root.
func cleanName(n string) (string, error) {
	switch {
	case n == "":
		return "", errors.New("has an empty name")
	case strings.IndexByte(n, 0) >= 0:
		return "", errors.New("has a NUL byte in its name")
	case len(n) > maxName:
		return "", fmt.Errorf("has a name longer than %d bytes", maxName)
	case strings.HasPrefix(n, "/"):
		return "", errors.New("is an absolute path; entries must be relative to the code's folder")
	}
	name := strings.TrimSuffix(strings.TrimPrefix(n, "./"), "/")
	if name == "" || name == "." {
		return ".", nil
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", errors.New("goes up (..) out of the code's folder")
		}
	}
	if path.Clean(name) != name {
		return "", errors.New("is not a clean path (it has empty or . parts)")
	}
	return name, nil
}

// typeName says what an entry of a refused type is.
func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("entry of type %q", t)
}

func (c *tarChecker) check(h *tar.Header) error {
	name, err := cleanName(h.Name)
	if err != nil {
		return invalidEntry(h.Name, err.Error())
	}
	switch h.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // pax global header: no file
	case tar.TypeReg, '\x00', tar.TypeDir, tar.TypeSymlink:
	default:
		return invalidEntry(h.Name, "is a "+typeName(h.Typeflag)+"; only regular files, directories and symlinks may be in the code")
	}
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return invalidEntry(h.Name, "names the code's folder itself but is not a directory")
		}
		return nil
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if _, ok := c.links[p]; ok {
			return invalidEntry(h.Name, fmt.Sprintf("lies under the symlink %q; nothing may be placed through a link", shortName(p)))
		}
	}
	if _, ok := c.links[name]; ok {
		return invalidEntry(h.Name, "replaces a symlink of the same name")
	}
	if h.Typeflag == tar.TypeSymlink {
		if c.seen[name] {
			return invalidEntry(h.Name, "is a symlink replacing an earlier entry or folder of the same name")
		}
		if err := checkLinkTarget(name, h.Linkname); err != nil {
			return invalidEntry(h.Name, err.Error())
		}
		c.links[name] = h.Linkname
		c.nameBytes += len(h.Linkname)
	}
	for p := name; p != "." && !c.seen[p]; p = path.Dir(p) {
		c.seen[p] = true
		c.nameBytes += len(p)
	}
	if c.nameBytes > maxNameBytes {
		return invalidArchive("the archive's names add up to more than %d bytes", maxNameBytes)
	}
	return nil
}

// checkLinkTarget refuses a symlink target that is empty, absolute or
// leads out of the archive by itself.
func checkLinkTarget(name, target string) error {
	switch {
	case target == "":
		return errors.New("is a symlink without a target")
	case strings.IndexByte(target, 0) >= 0:
		return errors.New("is a symlink whose target has a NUL byte")
	case len(target) > maxName:
		return fmt.Errorf("is a symlink with a target longer than %d bytes", maxName)
	case strings.HasPrefix(target, "/"):
		return fmt.Errorf("is a symlink to the absolute path %q; a link must stay inside the code's folder (use a relative target)", shortName(target))
	}
	if j := path.Join(path.Dir(name), target); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("is a symlink to %q, which is outside the code's folder", shortName(target))
	}
	return nil
}

// checkLinks resolves every symlink through the others (a link's target
// may pass through another link) and refuses one that leads out.
func (c *tarChecker) checkLinks() error {
	names := make([]string, 0, len(c.links))
	for n := range c.links {
		names = append(names, n)
	}
	sort.Strings(names)
	work := 0
	for _, n := range names {
		dir := []string{}
		if d := path.Dir(n); d != "." {
			dir = strings.Split(d, "/")
		}
		todo := strings.Split(c.links[n], "/")
		hops := 0
		for len(todo) > 0 {
			comp := todo[0]
			todo = todo[1:]
			switch comp {
			case "", ".":
				continue
			case "..":
				if len(dir) == 0 {
					return invalidEntry(n, fmt.Sprintf("is a symlink to %q, which leads outside the code's folder through other links", shortName(c.links[n])))
				}
				dir = dir[:len(dir)-1]
				continue
			}
			p := strings.Join(append(dir, comp), "/")
			if work += len(p); work > maxLinkWork {
				return invalidArchive("the archive's symlinks are too many or too deep to check")
			}
			if t, ok := c.links[p]; ok {
				if hops++; hops > maxLinkHops {
					return invalidEntry(n, fmt.Sprintf("is a symlink that leads through more than %d links (a loop?)", maxLinkHops))
				}
				todo = append(strings.Split(t, "/"), todo...)
				continue
			}
			dir = append(dir, comp)
		}
	}
	return nil
}

// countWriter counts what it writes and remembers a write error.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// spoolFile is what copyOutputs writes to: a file it can cut back.
type spoolFile interface {
	io.Writer
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
}

// copyOutputs rewrites the agent's tar stream r into spool as a clean,
// uncompressed tar: only regular files and directories named outputs or
// outputs/..., with clean paths, at most maxContent bytes of content and
// maxEntries headers read, each name once. A fault in the stream ends
// the copy after the last whole entry (truncated); readErr is r's own
// error if reading it failed; err is a failure to write the spool.
func copyOutputs(spool spoolFile, r io.Reader, maxContent int64, maxEntries int) (n int64, truncated bool, readErr, err error) {
	src := &errReader{r: r}
	cw := &countWriter{w: spool}
	good := int64(0) // the spool's size after the last whole entry
	truncated = func() bool {
		dec, err := decompress(src)
		if err != nil {
			return true
		}
		// Headers, padding and contents of skipped entries are read too.
		lim := &limitReader{r: dec, n: maxContent + int64(maxEntries)*4096 + 64<<20}
		tr := tar.NewReader(lim)
		tw := tar.NewWriter(cw)
		kept := map[string]bool{} // name -> is a directory
		nameBytes := 0
		for headers := 0; ; headers++ {
			h, err := tr.Next()
			if err == io.EOF {
				return false
			}
			if err != nil || headers >= maxEntries {
				return true
			}
			name, ok := outputName(h)
			if !ok {
				continue
			}
			dir := h.Typeflag == tar.TypeDir
			if _, dup := kept[name]; dup || underFile(kept, name) {
				continue
			}
			if !dir && (h.Size < 0 || h.Size > maxContent-n) {
				return true
			}
			if nameBytes += len(name); nameBytes > maxNameBytes {
				return true
			}
			if tw.WriteHeader(tarHeaderFor(name, h)) != nil {
				return true // a write failure: cw.err says so
			}
			if !dir {
				if _, err := io.Copy(tw, tr); err != nil {
					return true
				}
			}
			if tw.Flush() != nil {
				return true
			}
			kept[name] = dir
			if !dir {
				n += h.Size
			}
			good = cw.n
		}
	}()
	if cw.err != nil {
		return 0, false, nil, cw.err
	}
	// Cut back to the last whole entry and end the archive there.
	if err := spool.Truncate(good); err != nil {
		return 0, false, nil, err
	}
	if _, err := spool.Seek(good, io.SeekStart); err != nil {
		return 0, false, nil, err
	}
	if _, err := spool.Write(make([]byte, 1024)); err != nil {
		return 0, false, nil, err
	}
	return n, truncated || src.err != nil, src.err, nil
}

// outputName is the clean name of an entry kept of a job's outputs, or
// false when the entry is skipped.
func outputName(h *tar.Header) (string, bool) {
	if h.Typeflag != tar.TypeReg && h.Typeflag != '\x00' && h.Typeflag != tar.TypeDir {
		return "", false
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return "", false
	}
	if name == "outputs" {
		return name, h.Typeflag == tar.TypeDir
	}
	return name, strings.HasPrefix(name, "outputs/")
}

// underFile reports whether a parent of name was kept as a file.
func underFile(kept map[string]bool, name string) bool {
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if dir, ok := kept[p]; ok && !dir {
			return true
		}
	}
	return false
}
