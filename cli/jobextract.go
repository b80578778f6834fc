package cli

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// extractStats says what an extraction wrote and left out.
type extractStats struct {
	Files, Dirs, Links int
	Bytes              int64
	Skipped            []string
}

// extractTarGz extracts a gzip'd tar into dir, which it creates and which
// must not exist. Nothing is written outside dir: entries with absolute
// paths or .. are refused, no link is followed (an entry below a link is
// refused, files are created new with O_EXCL|O_NOFOLLOW), links are kept
// only when they point inside dir, and hard links, devices and fifos are
// left out. Modes keep only the permission bits.
func extractTarGz(r io.Reader, dir string) (extractStats, error) {
	var st extractStats
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return st, fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return st, fmt.Errorf("%s already exists; remove it or choose another --download-path", dir)
		}
		return st, fmt.Errorf("create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return st, fmt.Errorf("the download is not a gzip'd tar: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("read the download's tar: %w", err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return st, err
		}
		if name == "." {
			continue
		}
		if err := mkParents(root, name); err != nil {
			return st, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := mkDir(root, name); err != nil {
				return st, err
			}
			st.Dirs++
		case tar.TypeReg, tar.TypeRegA:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, fs.FileMode(hdr.Mode)&0o777)
			if err != nil {
				if errors.Is(err, fs.ErrExist) {
					return st, fmt.Errorf("the download holds %s twice (or below a link); stopped", hdr.Name)
				}
				return st, fmt.Errorf("write %s: %w", path.Join(dir, name), err)
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return st, fmt.Errorf("write %s: %w", path.Join(dir, name), err)
			}
			st.Files++
			st.Bytes += n
		case tar.TypeSymlink:
			if !linkInside(name, hdr.Linkname) {
				st.Skipped = append(st.Skipped, fmt.Sprintf("%s: a link to %s, outside the download", name, hdr.Linkname))
				continue
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return st, fmt.Errorf("the download holds %s twice; stopped", hdr.Name)
				}
				return st, fmt.Errorf("link %s: %w", path.Join(dir, name), err)
			}
			st.Links++
		case tar.TypeLink:
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s: a hard link to %s", name, hdr.Linkname))
		case tar.TypeXGlobalHeader:
		default:
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s: not a file, folder or link (tar type %q)", name, hdr.Typeflag))
		}
	}
}

// entryName cleans a tar entry's name and refuses one that leaves the
// folder.
func entryName(n string) (string, error) {
	if n == "" || strings.ContainsRune(n, 0) || strings.Contains(n, `\`) {
		return "", fmt.Errorf("the download holds an entry with a bad name %q; nothing was written for it", n)
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("the download holds an absolute path %q; nothing was written for it", n)
	}
	for _, seg := range strings.Split(n, "/") {
		if seg == ".." {
			return "", fmt.Errorf("the download holds a path leaving its folder %q; nothing was written for it", n)
		}
	}
	return path.Clean(n), nil
}

// mkParents makes name's parent folders inside root, refusing to go
// through a link or a file.
func mkParents(root *os.Root, name string) error {
	segs := strings.Split(name, "/")
	for i := 1; i < len(segs); i++ {
		if err := mkDir(root, strings.Join(segs[:i], "/")); err != nil {
			return err
		}
	}
	return nil
}

// mkDir makes folder p inside root unless it exists as a real folder.
func mkDir(root *os.Root, p string) error {
	fi, err := root.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("the download puts entries below %s, a link; links are not followed, stopped", p)
	case err == nil:
		return fmt.Errorf("the download puts entries below %s, a file; stopped", p)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("check %s: %w", p, err)
	}
	if err := root.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	return nil
}
