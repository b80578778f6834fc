package cli

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// ignoreRule is one line of a .amlignore or .gitignore.
type ignoreRule struct {
	pattern  []string // path segments; "**" matches any number of them
	negate   bool
	dirOnly  bool
	anchored bool // matched from the code folder, not at any depth
}

// ignoreList is a code folder's ignore rules: .amlignore when it has one,
// else .gitignore (at the folder's top only). .git is always left out.
type ignoreList []ignoreRule

// parseIgnore reads gitignore-style lines: # comments, !negation, a
// trailing / for folders only, a / elsewhere anchors the pattern at the
// top, *, ?, [...] and ** globs.
func parseIgnore(data string) ignoreList {
	var l ignoreList
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimRight(line, " \t")
		var r ignoreRule
		if strings.HasPrefix(line, "!") {
			r.negate, line = true, line[1:]
		} else if strings.HasPrefix(line, `\`) {
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			r.dirOnly, line = true, strings.TrimRight(line, "/")
		}
		if strings.Contains(line, "/") {
			r.anchored = true
			line = strings.TrimLeft(line, "/")
		}
		if line == "" {
			continue
		}
		r.pattern = strings.Split(line, "/")
		l = append(l, r)
	}
	return l
}

// ignored reports whether rel (slash-separated, relative to the code
// folder) is left out; the last matching rule wins.
func (l ignoreList) ignored(rel string, isDir bool) bool {
	segs := strings.Split(rel, "/")
	out := false
	for _, r := range l {
		if r.dirOnly && !isDir {
			continue
		}
		var ok bool
		if r.anchored {
			ok = matchSegments(r.pattern, segs)
		} else {
			ok = matchSegments(r.pattern, segs[len(segs)-1:])
		}
		if ok {
			out = !r.negate
		}
	}
	return out
}

// matchSegments matches path segments against a pattern's, "**" standing
// for any number of segments.
func matchSegments(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if matchSegments(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	if ok, err := path.Match(pat[0], segs[0]); err != nil || !ok {
		return false
	}
	return matchSegments(pat[1:], segs[1:])
}

// loadIgnore reads the code folder's .amlignore, or else its .gitignore.
func loadIgnore(root string) (ignoreList, error) {
	for _, name := range []string{".amlignore", ".gitignore"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err == nil {
			return parseIgnore(string(data)), nil
		}
		if !os.IsNotExist(err) {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(root, name), err)
		}
	}
	return nil, nil
}

// codeStats says what a code tarball holds.
type codeStats struct {
	Files, Dirs, Links int
	Bytes              int64
	Skipped            []string // why entries were left out
}

// tarCode writes a gzip'd tar of the code at root (a folder, or one file)
// to w and returns the hex SHA-256 of its content (names, types, modes,
// bytes and link targets; not times), which names the code version.
// Links are kept as links (only those pointing inside the folder: the
// server refuses others) and never followed; .git and ignored paths, and
// anything but files, folders and links, are left out.
func tarCode(root string, w io.Writer) (digest string, st codeStats, err error) {
	fi, err := os.Stat(root)
	if err != nil {
		return "", st, fmt.Errorf("code %s: %w", root, err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	gz := gzip.NewWriter(bw)
	tw := tar.NewWriter(gz)
	h := sha256.New()
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return "", st, fmt.Errorf("code %s: neither a folder nor a regular file", root)
		}
		if err := addFile(tw, h, root, fi.Name(), fi, &st); err != nil {
			return "", st, err
		}
	} else {
		ign, err := loadIgnore(root)
		if err != nil {
			return "", st, err
		}
		err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("code %s: %w", root, err)
			}
			if p == root {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if de.Name() == ".git" || ign.ignored(rel, de.IsDir()) {
				if de.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := de.Info()
			if err != nil {
				return fmt.Errorf("code %s: %w", p, err)
			}
			switch {
			case info.IsDir():
				st.Dirs++
				record(h, "d", rel, info.Mode().Perm(), nil)
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: int64(info.Mode().Perm()), ModTime: info.ModTime(), Format: tar.FormatPAX})
			case info.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return fmt.Errorf("code %s: %w", p, err)
				}
				if !linkInside(rel, target) {
					st.Skipped = append(st.Skipped, fmt.Sprintf("%s: a link to %s, outside the code folder", rel, target))
					return nil
				}
				st.Links++
				record(h, "l", rel, 0o777, []byte(target))
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: target, Mode: 0o777, ModTime: info.ModTime(), Format: tar.FormatPAX})
			case info.Mode().IsRegular():
				return addFile(tw, h, p, rel, info, &st)
			default:
				st.Skipped = append(st.Skipped, fmt.Sprintf("%s: not a file, folder or link (%s)", rel, info.Mode().Type()))
				return nil
			}
		})
		if err != nil {
			return "", st, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", st, err
	}
	if err := gz.Close(); err != nil {
		return "", st, err
	}
	if err := bw.Flush(); err != nil {
		return "", st, err
	}
	return hex.EncodeToString(h.Sum(nil)), st, nil
}

// addFile adds one regular file, opened without following a link (the
// entry was seen as a regular file) and read for exactly its size.
func addFile(tw *tar.Writer, h hash.Hash, p, rel string, info fs.FileInfo, st *codeStats) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("code %s: %w", p, err)
	}
	defer f.Close()
	now, err := f.Stat()
	if err != nil {
		return fmt.Errorf("code %s: %w", p, err)
	}
	if !now.Mode().IsRegular() || !os.SameFile(now, info) {
		return fmt.Errorf("code %s changed while it was read; try again", p)
	}
	size := now.Size()
	perm := now.Mode().Perm()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: size, Mode: int64(perm), ModTime: now.ModTime(), Format: tar.FormatPAX}); err != nil {
		return err
	}
	record(h, "f", rel, perm, nil)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(size))
	h.Write(n[:])
	copied, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(f, size))
	if err != nil {
		return fmt.Errorf("code %s: %w", p, err)
	}
	if copied != size {
		return fmt.Errorf("code %s shrank while it was read; try again", p)
	}
	st.Files++
	st.Bytes += size
	return nil
}

// record feeds one entry's identity into the content digest, unambiguously.
func record(h hash.Hash, kind, rel string, perm fs.FileMode, extra []byte) {
	var b [8]byte
	h.Write([]byte(kind))
	binary.BigEndian.PutUint64(b[:], uint64(len(rel)))
	h.Write(b[:])
	h.Write([]byte(rel))
	binary.BigEndian.PutUint64(b[:], uint64(perm))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(len(extra)))
	h.Write(b[:])
	h.Write(extra)
}

// linkInside reports whether a link at rel to target stays inside the
// folder, reading the target as a path (not following other links).
func linkInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || strings.HasPrefix(target, "/") {
		return false
	}
	j := path.Clean(path.Join(path.Dir(rel), target))
	return j != ".." && !strings.HasPrefix(j, "../")
}
