package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// rootfsParent holds, on the host, the mount points of the instances' root
// filesystems while they start (rootfsPath): the container's init, already
// in the instance's user namespace, must reach its root filesystem by path,
// and the runtime's own directories (0700, root's) are closed to it.
const rootfsParent = "/run/chub-rootfs"

// rootfsPath is where instance id's disk is mounted on the host while it
// starts.
func rootfsPath(id string) string { return filepath.Join(rootfsParent, id) }

// removeRootfs undoes rootfsPath for instance id.
func removeRootfs(id string) {
	p := rootfsPath(id)
	for _, m := range mountsUnder(p) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	os.Remove(p)
}

// mountOverlay mounts the instance's disk (upper over lower) at target.
func mountOverlay(target string, lower []string, upper, work string) error {
	if len(lower) == 0 {
		return errors.New("an image without layers")
	}
	unix.Unmount(target, unix.MNT_DETACH) // a leftover of a crash, if any
	if err := os.MkdirAll(filepath.Dir(target), 0o711); err != nil {
		return err
	}
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"), upper, work)
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("overlay options of %d bytes are too long (too many image layers)", len(opts))
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount the instance disk (overlay %s): %w", opts, err)
	}
	return nil
}

// lowerDir, in the instance directory, holds the idmapped mounts of the
// image layers while the disk is mounted.
const lowerDir = "lower"

// mountDisk mounts instance id's disk at target: its upper dir, whose
// owners are the instance's id range (see userns.go), over the image
// layers seen through idmapped mounts of that range. Only target stays
// mounted (the overlay holds its own references to the layers).
func (r *Runtime) mountDisk(id, target string, lower []string, upper, work string) error {
	m, err := r.instanceIDMap(id)
	if err != nil {
		return err
	}
	userns, err := userNamespace(m)
	if err != nil {
		return err
	}
	defer userns.Close()
	layers := filepath.Join(r.instDir(id), lowerDir)
	unmountAll := func() {
		for _, mp := range mountsUnder(layers) {
			unix.Unmount(mp, unix.MNT_DETACH)
		}
		os.RemoveAll(layers)
	}
	unmountAll() // a leftover of a crash, if any
	defer unmountAll()
	mapped := make([]string, len(lower))
	for i, l := range lower {
		mapped[i] = filepath.Join(layers, strconv.Itoa(i))
		if err := idmappedClone(l, mapped[i], userns); err != nil {
			return fmt.Errorf("mount the instance disk: %w", err)
		}
	}
	return mountOverlay(target, mapped, upper, work)
}

// unmountInstance detaches every host mount of an instance: under its
// directory, and its root filesystem's mount point.
func unmountInstance(dir string) {
	for _, m := range mountsUnder(dir) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	removeRootfs(filepath.Base(dir))
}

// mountsUnder lists the host's mount points at or below dir, deepest first.
// It reads the calling thread's mount table: the process's main thread may
// have been left in a container's mount namespace (libcontainer joins one
// from a locked thread to prepare mounts of a container with a user
// namespace), so /proc/self's table may not be the host's.
func mountsUnder(dir string) []string {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
