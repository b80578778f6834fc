package agent

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The bounds of a code snapshot.
const (
	maxCodeEntries = 100_000
	maxCodeBytes   = 8 << 30
	maxCodeDepth   = 128
)

var (
	errBadArchive   = errors.New("bad archive")
	errCodeTooLarge = errors.New("too large")
)

func badEntry(name, format string, args ...any) error {
	return fmt.Errorf("%w: entry %.200q: %s", errBadArchive, name, fmt.Sprintf(format, args...))
}

// openDirNoFollow opens a directory, failing on a link.
func openDirNoFollow(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", p, err)
	}
	return fd, nil
}

// extractCode extracts a tar stream (gzip'd or not) into the directory wd,
// owned by uid:gid: regular files, directories and symbolic links only.
// Every path is walked one name at a time from wd's fd with O_NOFOLLOW:
// no link, planted by the job's user or by the archive, is ever followed.
func extractCode(wd string, body io.Reader, uid, gid int) error {
	br := bufio.NewReaderSize(body, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%w: gzip: %v", errBadArchive, err)
		}
		defer zr.Close()
		r = zr
	}
	root, err := openDirNoFollow(wd)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	x := &extractor{root: root, uid: uid, gid: gid, parentFD: -1}
	defer x.closeParent()
	tr := tar.NewReader(r)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errBadArchive, err)
		}
		if n >= maxCodeEntries {
			return fmt.Errorf("%w: more than %d entries", errCodeTooLarge, maxCodeEntries)
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			total += h.Size
			if h.Size < 0 || total > maxCodeBytes {
				return fmt.Errorf("%w: more than %d bytes", errCodeTooLarge, int64(maxCodeBytes))
			}
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
	}
}

type extractor struct {
	root, uid, gid int
	// The last parent directory opened, kept for the next entries.
	parent   string
	parentFD int
}

func (x *extractor) closeParent() {
	if x.parentFD >= 0 {
		unix.Close(x.parentFD)
		x.parentFD = -1
	}
}

// cleanName checks an entry's name and returns it relative to wd ("" for
// wd itself).
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) || strings.HasPrefix(name, "/") {
		return "", badEntry(name, "not a relative path")
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", badEntry(name, "leads outside the folder")
	}
	if strings.Count(c, "/") >= maxCodeDepth {
		return "", badEntry(name, "nested deeper than %d", maxCodeDepth)
	}
	return c, nil
}

// dirFD opens (making what is missing) the directory dir under wd, one
// name at a time, never through a link. The fd is the extractor's.
func (x *extractor) dirFD(entry, dir string) (int, error) {
	if dir == x.parent && x.parentFD >= 0 {
		return x.parentFD, nil
	}
	x.closeParent()
	fd, err := unix.Dup(x.root)
	if err != nil {
		return -1, err
	}
	if dir != "" {
		for _, name := range strings.Split(dir, "/") {
			next, err := x.openOrMakeDir(fd, name)
			unix.Close(fd)
			if err != nil {
				return -1, badEntry(entry, "%s: %v (a link is never followed)", name, err)
			}
			fd = next
		}
	}
	x.parent, x.parentFD = dir, fd
	return fd, nil
}

// openOrMakeDir opens the directory name in dirfd, making it (for the
// user) when missing.
func (x *extractor) openOrMakeDir(dirfd int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(dirfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
		fd, err = unix.Openat(dirfd, name, flags, 0)
		if err == nil {
			if err := unix.Fchown(fd, x.uid, x.gid); err != nil {
				unix.Close(fd)
				return -1, err
			}
		}
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, errors.New("not a directory")
	}
	return fd, err
}

// removeName removes a file or link name in dirfd, if any (not a directory).
func removeName(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	name, err := cleanName(h.Name)
	if err != nil || name == "" {
		return err
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	perm := uint32(h.Mode) & 0o777
	switch h.Typeflag {
	case tar.TypeDir:
		pfd, err := x.dirFD(h.Name, dir)
		if err != nil {
			return err
		}
		fd, err := x.openOrMakeDir(pfd, base)
		if err != nil {
			return badEntry(h.Name, "%v (a link is never followed)", err)
		}
		defer unix.Close(fd)
		if err := unix.Fchown(fd, x.uid, x.gid); err != nil {
			return err
		}
		return unix.Fchmod(fd, perm|0o700)
	case tar.TypeReg, tar.TypeRegA:
		for k := range h.PAXRecords {
			// A sparse file expands to far more than the archive holds.
			if strings.HasPrefix(k, "GNU.sparse.") {
				return badEntry(h.Name, "a sparse file: only plain regular files are extracted")
			}
		}
		pfd, err := x.dirFD(h.Name, dir)
		if err != nil {
			return err
		}
		if err := removeName(pfd, base); err != nil {
			return badEntry(h.Name, "%v", err)
		}
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return badEntry(h.Name, "%v", err)
		}
		f := os.NewFile(uintptr(fd), base)
		defer f.Close()
		if err := f.Chown(x.uid, x.gid); err != nil {
			return err
		}
		if _, err := io.CopyN(f, r, h.Size); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return badEntry(h.Name, "the archive ends inside it")
			}
			return fmt.Errorf("entry %.200q: %w", h.Name, err)
		}
		if err := f.Chmod(os.FileMode(perm)); err != nil {
			return err
		}
		if !h.ModTime.IsZero() {
			t := unix.NsecToTimeval(h.ModTime.UnixNano())
			unix.Futimes(fd, []unix.Timeval{unix.NsecToTimeval(time.Now().UnixNano()), t})
		}
		return f.Close()
	case tar.TypeSymlink:
		if h.Linkname == "" || strings.ContainsRune(h.Linkname, 0) {
			return badEntry(h.Name, "a link to nothing")
		}
		pfd, err := x.dirFD(h.Name, dir)
		if err != nil {
			return err
		}
		if err := removeName(pfd, base); err != nil {
			return badEntry(h.Name, "%v", err)
		}
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return badEntry(h.Name, "%v", err)
		}
		return unix.Fchownat(pfd, base, x.uid, x.gid, unix.AT_SYMLINK_NOFOLLOW)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return badEntry(h.Name, "of type %q: only regular files, directories and symbolic links are extracted", h.Typeflag)
}

// writeOutputs writes a tar of the directory dirfd (which it closes; -1
// for none) to w, its entries named outputs/...: regular files and
// directories only, every name opened from its parent's fd with
// O_NOFOLLOW, links and anything else skipped.
func writeOutputs(w io.Writer, dirfd int) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "outputs/", Mode: 0o755, ModTime: time.Now()}); err != nil {
		if dirfd >= 0 {
			unix.Close(dirfd)
		}
		return err
	}
	if dirfd >= 0 {
		if err := walkOutputs(tw, dirfd, "outputs/", 0); err != nil {
			return err
		}
	}
	return tw.Close()
}

func walkOutputs(tw *tar.Writer, dirfd int, prefix string, depth int) error {
	d := os.NewFile(uintptr(dirfd), prefix)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	sort.Strings(names)
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone meanwhile
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if !isDir && st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
		if isDir {
			if depth+1 > maxOutputDepth {
				return fmt.Errorf("%s%s: directories nested deeper than %d", prefix, name, maxOutputDepth)
			}
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != nil {
			continue // replaced by a link or something else meanwhile
		}
		// What was opened is what is sent: stat it again.
		if err := unix.Fstat(fd, &st); err != nil || (st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFDIR) {
			unix.Close(fd)
			continue
		}
		mtime := time.Unix(st.Mtim.Unix())
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + name + "/", Mode: int64(st.Mode & 0o777), ModTime: mtime}); err != nil {
				unix.Close(fd)
				return err
			}
			if err := walkOutputs(tw, fd, prefix+name+"/", depth+1); err != nil {
				return err
			}
			continue
		}
		err = func() error {
			f := os.NewFile(uintptr(fd), name)
			defer f.Close()
			size := st.Size
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: prefix + name, Mode: int64(st.Mode & 0o777), Size: size, ModTime: mtime}); err != nil {
				return err
			}
			n, err := io.CopyN(tw, f, size)
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("%s%s: %w", prefix, name, err)
			}
			// A file that shrank meanwhile is padded to the size announced.
			if n < size {
				if _, err := io.CopyN(tw, zeros{}, size-n); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
