package local

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (chown, mounts, user namespaces)")
	}
}

// TestShiftTree: an upper dir of host ids 0-65535 moves into the range,
// keeping set-id bits and file capabilities, and a second pass (a shift
// interrupted and taken up again) changes nothing.
func TestShiftTree(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	write := func(rel string, mode os.FileMode, uid, gid int) string {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sudo := write("usr/bin/sudo", os.ModeSetuid|0o755, 0, 0)
	unix.Chmod(sudo, 0o4755)
	ping := write("usr/bin/ping", 0o755, 0, 0)
	// cap_net_raw+ep, as setcap writes it (VFS_CAP_REVISION_2).
	caps := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	if err := unix.Lsetxattr(ping, "security.capability", caps, 0); err != nil {
		t.Skipf("file capabilities on %s: %v", root, err)
	}
	home := write("home/azureuser/notes", 0o600, 1000, 1000)
	os.Symlink("notes", filepath.Join(root, "home/azureuser/link"))
	os.Lchown(filepath.Join(root, "home/azureuser/link"), 1000, 1000)
	nobody := write("var/big", 0o644, 70000, 70000) // outside the range: stays
	// An overlay whiteout: a character device 0/0.
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := unix.Mknod(filepath.Join(root, "etc/gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}

	const host = idBase + 3*idRangeSize
	for pass := 1; pass <= 2; pass++ {
		if err := shiftTree(root, host); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		for _, c := range []struct {
			path     string
			uid, gid uint32
			mode     uint32
		}{
			{root, host, host, 0},
			{sudo, host, host, 0o4755},
			{ping, host, host, 0o755},
			{home, host + 1000, host + 1000, 0o600},
			{filepath.Join(root, "home/azureuser/link"), host + 1000, host + 1000, 0},
			{nobody, 70000, 70000, 0o644},
			{filepath.Join(root, "etc/gone"), host, host, 0},
		} {
			var st unix.Stat_t
			if err := unix.Lstat(c.path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != c.uid || st.Gid != c.gid {
				t.Errorf("pass %d: %s is %d:%d; want %d:%d", pass, c.path, st.Uid, st.Gid, c.uid, c.gid)
			}
			if c.mode != 0 && st.Mode&0o7777 != c.mode {
				t.Errorf("pass %d: %s has mode %o; want %o", pass, c.path, st.Mode&0o7777, c.mode)
			}
		}
		got := make([]byte, 64)
		n, err := unix.Lgetxattr(ping, "security.capability", got)
		if err != nil || string(got[:n]) != string(caps) {
			t.Errorf("pass %d: the file capabilities of ping: %x, %v; want %x", pass, got[:max(n, 0)], err, caps)
		}
	}
}

// TestIdmappedLayer: through the instance's idmapped mount, a file of uid
// 0 on disk belongs to the range's first id, and the disk is unchanged.
func TestIdmappedLayer(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	lower := filepath.Join(dir, "lower")
	os.MkdirAll(lower, 0o755)
	os.WriteFile(filepath.Join(lower, "f"), []byte("x"), 0o644)
	os.Lchown(filepath.Join(lower, "f"), 0, 1000)
	m := &idMap{HostID: idBase + 5*idRangeSize, Size: idRangeSize}
	userns, err := userNamespace(m)
	if err != nil {
		t.Fatal(err)
	}
	defer userns.Close()
	target := filepath.Join(dir, "mapped")
	if err := idmappedClone(lower, target, userns); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)
	fi, err := os.Stat(filepath.Join(target, "f"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != m.HostID || st.Gid != m.HostID+1000 {
		t.Errorf("through the idmapped mount: %d:%d; want %d:%d", st.Uid, st.Gid, m.HostID, m.HostID+1000)
	}
	if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); err == nil {
		t.Errorf("the idmapped image layer is writable")
	}
	fi, _ = os.Stat(filepath.Join(lower, "f"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 1000 {
		t.Errorf("on disk: %d:%d; want 0:1000 unchanged", st.Uid, st.Gid)
	}
}

// BenchmarkIdmappedDisk measures what the user namespace adds to mounting
// an instance's disk at each start: a namespace for the mapping, the
// idmapped mount of the image layer, and taking it away after the overlay
// is mounted; against the plain overlay mount.
func BenchmarkIdmappedDisk(b *testing.B) {
	needRoot(b)
	dir := b.TempDir()
	lower, upper, work, target := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{lower, upper, work, target} {
		os.MkdirAll(d, 0o755)
	}
	b.Run("overlay", func(b *testing.B) {
		for b.Loop() {
			if err := mountOverlay(target, []string{lower}, upper, work); err != nil {
				b.Fatal(err)
			}
			unix.Unmount(target, unix.MNT_DETACH)
		}
	})
	b.Run("idmapped", func(b *testing.B) {
		m := &idMap{HostID: idBase + 7*idRangeSize, Size: idRangeSize}
		mapped := filepath.Join(dir, "mapped")
		for b.Loop() {
			userns, err := userNamespace(m)
			if err != nil {
				b.Fatal(err)
			}
			if err := idmappedClone(lower, mapped, userns); err != nil {
				b.Fatal(err)
			}
			userns.Close()
			if err := mountOverlay(target, []string{mapped}, upper, work); err != nil {
				b.Fatal(err)
			}
			unix.Unmount(mapped, unix.MNT_DETACH)
			unix.Unmount(target, unix.MNT_DETACH)
		}
	})
}
