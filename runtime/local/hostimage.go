package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	chub "github.com/computehub/chub"
)

// hostImageFormat changes whenever the way the host image is built does,
// so that a new build replaces the old one for new instances.
const hostImageFormat = "host-v2"

// imageLayers returns the overlay lowerdirs (top first) of image name,
// building the host image if needed.
func (r *Runtime) imageLayers(ctx context.Context, name string) ([]string, error) {
	if name == HostImage {
		rootfs, err := r.hostImage(ctx)
		if err != nil {
			return nil, err
		}
		return []string{rootfs}, nil
	}
	img, err := readImage(r.cfg.Root, name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, chub.Invalid("ImageNotFound", "image", "there is no image %q in the local runtime (import it first)", name)
		}
		return nil, err
	}
	return img.lowerdirs(r.cfg.Root), nil
}

// hostImageVersion names the host image of the host's current state: its
// installed packages and the build format.
func hostImageVersion() (string, error) {
	h := sha256.New()
	h.Write([]byte(hostImageFormat + "\n"))
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	h.Write(status)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// hostImage returns the root filesystem of the host image for the host's
// current packages, building it first if needed.
func (r *Runtime) hostImage(ctx context.Context) (string, error) {
	version, err := hostImageVersion()
	if err != nil {
		return "", fmt.Errorf("host image: %w", err)
	}
	dir := filepath.Join(r.cfg.Root, "images", HostImage, version)
	rootfs := filepath.Join(dir, "rootfs")
	if _, err := os.Stat(rootfs); err == nil {
		return rootfs, nil
	}
	r.imageMu.Lock()
	defer r.imageMu.Unlock()
	unlock, err := lockFile(filepath.Join(r.cfg.Root, "images", ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(rootfs); err == nil {
		return rootfs, nil
	}
	start := time.Now()
	r.log.Info("building the host image (a snapshot of this host's /usr and /etc)", "version", version)
	tmp := filepath.Join(r.cfg.Root, "images", ".tmp-"+HostImage+"-"+version)
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := buildHostImage(ctx, filepath.Join(tmp, "rootfs")); err != nil {
		return "", fmt.Errorf("build the host image: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("build the host image: %w", err)
	}
	r.log.Info("host image built", "version", version, "took", time.Since(start).Round(time.Millisecond))
	r.removeUnusedHostImages(version)
	return rootfs, nil
}

// removeUnusedHostImages deletes the host image versions other than keep
// that no instance's disk lies on. Called with the image lock held.
func (r *Runtime) removeUnusedHostImages(keep string) {
	used := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(r.cfg.Root, "instances"))
	for _, e := range ents {
		d, err := r.readDisk(e.Name())
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return // unsure what is used: keep everything
			}
			continue
		}
		for _, l := range d.Lower {
			used[l] = true
		}
	}
	versions, _ := os.ReadDir(filepath.Join(r.cfg.Root, "images", HostImage))
	for _, v := range versions {
		dir := filepath.Join(r.cfg.Root, "images", HostImage, v.Name())
		if v.Name() == keep || used[filepath.Join(dir, "rootfs")] {
			continue
		}
		r.log.Info("removing an unused host image", "version", v.Name())
		os.RemoveAll(dir)
	}
}

// lockFile takes an exclusive lock on path, shared by every process.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// buildHostImage builds a root filesystem at rootfs from the host: /usr
// hard-linked (so later host upgrades, which replace files, leave it be),
// a curated copy of /etc, dpkg's database and empty standard directories.
func buildHostImage(ctx context.Context, rootfs string) error {
	if err := os.MkdirAll(filepath.Join(rootfs, "usr"), 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir("/usr")
	if err != nil {
		return err
	}
	// Copy /usr's subtrees two at a time; /usr/local stays empty (it is
	// where a host keeps its own, unpackaged software).
	var wg sync.WaitGroup
	errs := make(chan error, len(ents))
	sem := make(chan struct{}, 2)
	for _, e := range ents {
		if e.Name() == "local" {
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- linkCopy(ctx, filepath.Join("/usr", name), filepath.Join(rootfs, "usr"))
		}(e.Name())
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	for _, d := range []string{"bin", "etc", "games", "include", "lib", "man", "sbin", "share", "src"} {
		if err := os.MkdirAll(filepath.Join(rootfs, "usr", "local", d), 0o755); err != nil {
			return err
		}
	}
	// The merged-/usr links.
	for _, l := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if _, err := os.Stat(filepath.Join(rootfs, "usr", l)); err == nil {
			if err := os.Symlink("usr/"+l, filepath.Join(rootfs, l)); err != nil {
				return err
			}
		}
	}
	if err := run(ctx, "cp", "-a", "/etc", filepath.Join(rootfs, "etc")); err != nil {
		return err
	}
	if err := curateEtc(filepath.Join(rootfs, "etc"), rootfs); err != nil {
		return fmt.Errorf("curate /etc: %w", err)
	}
	if err := curateR(filepath.Join(rootfs, "etc")); err != nil {
		return fmt.Errorf("curate /etc/R: %w", err)
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"tmp", 0o1777}, {"var/tmp", 0o1777}, {"home", 0o755}, {"root", 0o700}, {"opt", 0o755},
		{"run", 0o755}, {"srv", 0o755}, {"mnt", 0o755}, {"media", 0o755}, {"boot", 0o755},
		{"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}, {".chub", 0o755},
		{"var/lib/apt/lists/partial", 0o755}, {"var/cache/apt/archives/partial", 0o755},
		{"var/log/apt", 0o755}, {"var/cache", 0o755}, {"var/spool", 0o755}, {"var/mail", 0o2775},
		{"var/opt", 0o755}, {"var/local", 0o2775}, {"var/backups", 0o755}, {"var/lib/misc", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(rootfs, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, ".chub", "chub"), nil, 0o755); err != nil {
		return err
	}
	for _, l := range [][2]string{{"/run", "var/run"}, {"/run/lock", "var/lock"}} {
		if err := os.Symlink(l[0], filepath.Join(rootfs, l[1])); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/var/lib/dpkg"); err == nil {
		if err := run(ctx, "cp", "-a", "/var/lib/dpkg", filepath.Join(rootfs, "var/lib/dpkg")); err != nil {
			return err
		}
	}
	// root's dot files come from /etc/skel, not from the host's /root.
	if skel := filepath.Join(rootfs, "etc/skel"); dirExists(skel) {
		if err := copyTree(skel, filepath.Join(rootfs, "root"), 0, 0); err != nil {
			return err
		}
	}
	return nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// linkCopy copies src into dir as hard links, or as a real copy when the
// two are on different filesystems.
func linkCopy(ctx context.Context, src, dir string) error {
	err := run(ctx, "cp", "-al", src, dir)
	if err == nil {
		return nil
	}
	os.RemoveAll(filepath.Join(dir, filepath.Base(src)))
	return run(ctx, "cp", "-a", src, dir)
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	return nil
}

// curateEtc removes the host's secrets from a copy of /etc and adds the
// instance user azureuser (uid and gid 1000, passwordless sudo).
func curateEtc(etc, rootfs string) error {
	secrets, _ := filepath.Glob(filepath.Join(etc, "ssh", "ssh_host_*"))
	keys, _ := filepath.Glob(filepath.Join(etc, "ssl", "private", "*"))
	for _, p := range append(append(secrets, keys...),
		filepath.Join(etc, "shadow-"), filepath.Join(etc, "gshadow-"),
		filepath.Join(etc, "passwd-"), filepath.Join(etc, "group-"),
		filepath.Join(etc, "subuid-"), filepath.Join(etc, "subgid-")) {
		os.RemoveAll(p)
	}
	for _, f := range []string{"machine-id", "fstab"} {
		if _, err := os.Lstat(filepath.Join(etc, f)); err == nil {
			os.Remove(filepath.Join(etc, f))
			os.WriteFile(filepath.Join(etc, f), nil, 0o444)
		}
	}
	os.Remove(filepath.Join(etc, "mtab"))
	os.Symlink("../proc/self/mounts", filepath.Join(etc, "mtab"))
	os.WriteFile(filepath.Join(etc, "hostname"), []byte("localhost\n"), 0o644)
	os.Remove(filepath.Join(etc, "hosts"))
	os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), 0o644)

	const user = "azureuser"
	uid := strconv.Itoa(azureUserID)
	// passwd, group: drop whatever holds the name or the id, then add.
	if err := rewriteLines(filepath.Join(etc, "passwd"), 0o644, func(f []string) []string {
		if f[0] == user || (len(f) > 2 && f[2] == uid) {
			return nil
		}
		return f
	}, user+":x:"+uid+":"+uid+":Azure User:"+homeDir+":/bin/bash"); err != nil {
		return err
	}
	extraGroups := map[string]bool{"sudo": true, "adm": true, "users": true}
	if err := rewriteLines(filepath.Join(etc, "group"), 0o644, func(f []string) []string {
		if f[0] == user || (len(f) > 2 && f[2] == uid) {
			return nil
		}
		if extraGroups[f[0]] && len(f) == 4 {
			members := strings.FieldsFunc(f[3], func(r rune) bool { return r == ',' })
			f[3] = strings.Join(append(members, user), ",")
		}
		return f
	}, user+":x:"+uid+":"); err != nil {
		return err
	}
	// shadow, gshadow: no password of the host survives.
	if err := rewriteLines(filepath.Join(etc, "shadow"), 0o640, func(f []string) []string {
		if f[0] == user {
			return nil
		}
		if len(f) > 1 {
			f[1] = "*"
		}
		return f
	}, user+":*:19000:0:99999:7:::"); err != nil {
		return err
	}
	if err := rewriteLines(filepath.Join(etc, "gshadow"), 0o640, func(f []string) []string {
		if f[0] == user {
			return nil
		}
		if len(f) > 1 {
			f[1] = "!"
		}
		if extraGroups[f[0]] && len(f) == 4 {
			members := strings.FieldsFunc(f[3], func(r rune) bool { return r == ',' })
			f[3] = strings.Join(append(members, user), ",")
		}
		return f
	}, user+":!::"); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(rootfs, "usr/bin/sudo")); err == nil {
		d := filepath.Join(etc, "sudoers.d")
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "90-azureuser"), []byte(user+" ALL=(ALL:ALL) NOPASSWD:ALL\n"), 0o440); err != nil {
			return err
		}
	}
	return nil
}

// rewriteLines maps each colon-separated line of path through fn (nil
// drops it) and appends add. A missing file starts empty.
func rewriteLines(path string, mode os.FileMode, fn func([]string) []string, add string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		if f := fn(strings.Split(line, ":")); f != nil {
			out.WriteString(strings.Join(f, ":") + "\n")
		}
	}
	out.WriteString(add + "\n")
	var gid int
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*unix.Stat_t); ok {
			gid = int(st.Gid)
		}
	}
	os.Remove(path)
	if err := os.WriteFile(path, []byte(out.String()), mode); err != nil {
		return err
	}
	os.Chown(path, 0, gid)
	return os.Chmod(path, mode)
}

// PrepareDefaultImage builds the default image now if it is missing, so that
// the first instance does not wait for it. Safe to call while instances start.
func (r *Runtime) PrepareDefaultImage(ctx context.Context) error {
	_, err := r.imageLayers(ctx, r.cfg.DefaultImage)
	return err
}
