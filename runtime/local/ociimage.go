package local

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The parts of the OCI image layout that an import reads.
type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform,omitempty"`
}

type ociIndex struct {
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Layers    []ociDescriptor `json:"layers"`
	Manifests []ociDescriptor `json:"manifests"` // when the blob is an index
}

var imageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ImageInfo describes an imported image.
type ImageInfo struct {
	Name   string
	Layers []string // layer digests, bottom first
}

// ListImages lists the images under a runtime root: the host image (once
// built) and every imported image.
func ListImages(root string) ([]ImageInfo, error) {
	ents, err := os.ReadDir(filepath.Join(root, "images"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []ImageInfo
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if e.Name() == HostImage {
			out = append(out, ImageInfo{Name: HostImage})
			continue
		}
		img, err := readImage(root, e.Name())
		if err != nil {
			continue
		}
		out = append(out, ImageInfo{Name: img.Name, Layers: img.Layers})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ImportImage imports the OCI image layout at path (a directory, or a tar
// of one, plain or gzipped) as image name under a runtime root. Each layer
// is unpacked once, with its whiteouts turned into overlayfs ones, and
// shared read-only by every image and instance that uses it. Importing a
// name again replaces the image for instances created afterwards.
func ImportImage(root, name, path string) error {
	if !imageNameRE.MatchString(name) || name == HostImage {
		return fmt.Errorf("import image: %q is not a valid image name (lower-case letters, digits, '.', '_', '-'; not %q)", name, HostImage)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(root, "images"), filepath.Join(root, "layers")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	unlock, err := lockFile(filepath.Join(root, "images", ".lock"))
	if err != nil {
		return err
	}
	defer unlock()

	layout := path
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("import image: %w", err)
	} else if !fi.IsDir() {
		tmp, err := os.MkdirTemp(filepath.Join(root, "images"), ".tmp-import-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := untarPlain(path, tmp); err != nil {
			return fmt.Errorf("import image: unpack %s: %w", path, err)
		}
		layout = tmp
	}
	layers, err := readLayout(layout)
	if err != nil {
		return fmt.Errorf("import image %s: %w", name, err)
	}
	var digests []string
	for _, l := range layers {
		if err := unpackLayer(root, layout, l.Digest); err != nil {
			return fmt.Errorf("import image %s: layer %s: %w", name, l.Digest, err)
		}
		digests = append(digests, l.Digest)
	}
	img := image{Name: name, Layers: digests}
	b, _ := json.MarshalIndent(img, "", "  ")
	dir := filepath.Join(root, "images", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmpFile := filepath.Join(dir, ".image.json.tmp")
	if err := os.WriteFile(tmpFile, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmpFile, filepath.Join(dir, "image.json"))
}

// digestRE is the OCI digest grammar (algorithm ":" encoded): no '/', and
// no "." or ".." that would lead a blob or layer path out of its directory.
var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

func blobPath(layout, digest string) (string, error) {
	alg, hex, _ := strings.Cut(digest, ":")
	if !digestRE.MatchString(digest) {
		return "", fmt.Errorf("bad digest %q", digest)
	}
	return filepath.Join(layout, "blobs", alg, hex), nil
}

func readJSONBlob(layout, digest string, v any) error {
	p, err := blobPath(layout, digest)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// readLayout returns the layers, bottom first, of the layout's image (the
// linux/amd64 one when the index offers several).
func readLayout(layout string) ([]ociDescriptor, error) {
	if _, err := os.Stat(filepath.Join(layout, "oci-layout")); err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no oci-layout file): %w", err)
	}
	var idx ociIndex
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	manifests := idx.Manifests
	for depth := 0; depth < 4; depth++ {
		d, err := pickManifest(manifests)
		if err != nil {
			return nil, err
		}
		var m ociManifest
		if err := readJSONBlob(layout, d.Digest, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		if len(m.Manifests) > 0 { // a nested index
			manifests = m.Manifests
			continue
		}
		if len(m.Layers) == 0 {
			return nil, errors.New("the image has no layers")
		}
		return m.Layers, nil
	}
	return nil, errors.New("indexes nested too deep")
}

func pickManifest(ms []ociDescriptor) (ociDescriptor, error) {
	if len(ms) == 0 {
		return ociDescriptor{}, errors.New("the index lists no manifest")
	}
	for _, m := range ms {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == "amd64" {
			return m, nil
		}
	}
	for _, m := range ms {
		if m.Platform == nil {
			return m, nil
		}
	}
	return ms[0], nil
}

// unpackLayer unpacks a layer blob once into <root>/layers.
func unpackLayer(root, layout, digest string) error {
	src, err := blobPath(layout, digest) // checks the digest before it names a layer directory
	if err != nil {
		return err
	}
	dest := layerDir(root, digest)
	if _, err := os.Stat(dest); err == nil {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dest), ".tmp-"+filepath.Base(dest))
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	if err := extractLayer(tar.NewReader(r), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}

// decompress recognizes gzip by its magic number; anything else is taken
// as a plain tar.
func decompress(f io.Reader) (io.Reader, error) {
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return gzip.NewReader(br)
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		return nil, errors.New("zstd-compressed layers are not supported")
	}
	return br, nil
}

func untarPlain(path, dest string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target, err := safeJoin(dest, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}

// safeJoin joins a tar entry name to dest without leaving dest, and
// refuses a path whose parents inside dest are symlinks (which could lead
// the write out of dest).
func safeJoin(dest, name string) (string, error) {
	clean := filepath.Clean("/" + name)
	if clean == "/" {
		return dest, nil
	}
	target := filepath.Join(dest, clean)
	cur := dest
	for _, part := range strings.Split(strings.TrimPrefix(filepath.Dir(clean), "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		if fi, err := os.Lstat(cur); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("entry %q lies under a symlink", name)
		}
	}
	return target, nil
}

const whiteoutPrefix = ".wh."
const opaqueMarker = ".wh..wh..opq"

// extractLayer writes a layer's entries under dest, turning OCI whiteouts
// into overlayfs ones: a 0/0 character device for a removed file, the
// trusted.overlay.opaque attribute for a directory whose lower content is
// hidden.
func extractLayer(tr *tar.Reader, dest string) error {
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		target, err := safeJoin(dest, h.Name)
		if err != nil {
			return err
		}
		if target == dest {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		base := filepath.Base(target)
		if base == opaqueMarker {
			if err := unix.Setxattr(filepath.Dir(target), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("opaque %s: %w", h.Name, err)
			}
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			hidden := strings.TrimPrefix(base, whiteoutPrefix)
			if hidden == "" || hidden == "." || hidden == ".." {
				return fmt.Errorf("whiteout %q names no file", h.Name)
			}
			wh := filepath.Join(filepath.Dir(target), hidden)
			os.RemoveAll(wh)
			if err := unix.Mknod(wh, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("whiteout %s: %w", h.Name, err)
			}
			continue
		}
		// A later entry replaces an earlier one of the same name.
		if fi, err := os.Lstat(target); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
			os.RemoveAll(target)
		}
		mode := uint32(h.Mode & 0o7777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			dirs = append(dirs, dirTime{target, h.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := safeJoin(dest, h.Linkname)
			if err != nil {
				return err
			}
			if err := os.Link(src, target); err != nil {
				return err
			}
			continue // the link shares the attributes of its source
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			kind := uint32(unix.S_IFIFO)
			if h.Typeflag == tar.TypeChar {
				kind = unix.S_IFCHR
			} else if h.Typeflag == tar.TypeBlock {
				kind = unix.S_IFBLK
			}
			if err := unix.Mknod(target, kind|mode, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
				return err
			}
		default:
			continue
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeSymlink {
			// After chown, which clears set-id bits.
			if err := unix.Chmod(target, mode); err != nil {
				return err
			}
		}
		for k, v := range h.PAXRecords {
			if attr, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				unix.Lsetxattr(target, attr, []byte(v), 0)
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
		unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		t := unix.NsecToTimespec(dirs[i].t.UnixNano())
		unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}
