package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Every instance runs in a user namespace of its own: its ids 0-65535
// (root, azureuser's 1000, the system users of its packages) are the host's
// ids HostID to HostID+65535, a range no other instance and no host user
// has. Root inside is an unprivileged id on the host, and root of one
// instance is nobody to another instance's files.
//
// The range is chosen at the instance's first start and recorded in its
// directory (idmap.json), so it stays the same across stops, starts and
// server restarts; delete frees it. Ranges start at idBase, one slot of
// idRangeSize ids per instance.
//
// The disk keeps working through the shift:
//   - the shared image (the lower layers) is seen through an idmapped
//     mount, so a file of the image's uid 0 appears as HostID;
//   - the instance's own upper dir holds the shifted ids on disk: what the
//     instance writes lands there as HostID+uid. A disk made before user
//     namespaces (ids 0-65535 on disk) is shifted once at its next start
//     (idmap.json records it, and a shift interrupted half-way is finished
//     at the next, since only ids below idRangeSize move).
const (
	idMapFile   = "idmap.json"
	idBase      = 1 << 30 // 1073741824, far above the ids of people and of /etc/subuid's usual 100000+
	idRangeSize = 65536
	idSlots     = 1 << 14 // ranges up to 2^31, clear of ids tools read as negative
)

// idMap is what idmap.json records.
type idMap struct {
	// HostID is the host id of the instance's uid and gid 0.
	HostID uint32 `json:"hostId"`
	// Size is how many ids the range holds.
	Size uint32 `json:"size"`
	// Shifted says the upper dir's ids are the range's.
	Shifted bool `json:"shifted"`
}

func readIDMap(dir string) (*idMap, error) {
	b, err := os.ReadFile(filepath.Join(dir, idMapFile))
	if err != nil {
		return nil, err
	}
	var m idMap
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, idMapFile), err)
	}
	if m.HostID < idBase || m.Size != idRangeSize {
		return nil, fmt.Errorf("%s: an id range %d+%d outside ComputeHub's", filepath.Join(dir, idMapFile), m.HostID, m.Size)
	}
	return &m, nil
}

func writeIDMap(dir string, m *idMap) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	tmp := filepath.Join(dir, idMapFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, idMapFile))
}

// instanceIDMap returns the id range of instance id, choosing a free one
// at its first start, with its upper dir shifted into it.
func (r *Runtime) instanceIDMap(id string) (*idMap, error) {
	dir := r.instDir(id)
	m, err := readIDMap(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if m == nil {
		if m, err = r.allocateIDMap(id); err != nil {
			return nil, err
		}
	}
	if !m.Shifted {
		if err := shiftTree(filepath.Join(dir, upperDir), m.HostID); err != nil {
			return nil, fmt.Errorf("shift the ids of the instance's disk into its user namespace: %w", err)
		}
		// The overlay's work dir holds nothing that outlives a mount.
		os.RemoveAll(filepath.Join(dir, workDir))
		if err := os.Mkdir(filepath.Join(dir, workDir), 0o700); err != nil {
			return nil, err
		}
		m.Shifted = true
		if err := writeIDMap(dir, m); err != nil {
			return nil, err
		}
		r.log.Info("instance disk shifted into its user namespace", "id", id, "hostId", m.HostID)
	}
	return m, nil
}

// allocateIDMap records the lowest range no other instance has.
func (r *Runtime) allocateIDMap(id string) (*idMap, error) {
	unlock, err := lockFile(filepath.Join(r.cfg.Root, ".idmap.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	used := map[uint32]bool{}
	ents, _ := os.ReadDir(filepath.Join(r.cfg.Root, "instances"))
	for _, e := range ents {
		if m, err := readIDMap(filepath.Join(r.cfg.Root, "instances", e.Name())); err == nil {
			used[m.HostID] = true
		}
	}
	for slot := uint32(0); slot < idSlots; slot++ {
		host := idBase + slot*idRangeSize
		if used[host] {
			continue
		}
		m := &idMap{HostID: host, Size: idRangeSize}
		if err := writeIDMap(r.instDir(id), m); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("every one of the %d id ranges for instances is taken", idSlots)
}

// shiftTree moves the owners of every file under root from ids below
// idRangeSize to host+id, keeping set-id bits and file capabilities
// (chown drops both). Ids already shifted, or outside the range, stay.
func shiftTree(root string, host uint32) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		uid, gid := st.Uid, st.Gid
		if uid < idRangeSize {
			uid += host
		}
		if gid < idRangeSize {
			gid += host
		}
		if uid == st.Uid && gid == st.Gid {
			return nil
		}
		var caps []byte
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			if n, err := unix.Lgetxattr(p, "security.capability", nil); err == nil && n > 0 {
				caps = make([]byte, n)
				if n, err = unix.Lgetxattr(p, "security.capability", caps); err == nil {
					caps = caps[:n]
				} else {
					caps = nil
				}
			}
		}
		if err := unix.Lchown(p, int(uid), int(gid)); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
				if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
					return err
				}
			}
			if caps != nil {
				if err := unix.Lsetxattr(p, "security.capability", caps, 0); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// userNamespace returns an open descriptor of a user namespace with the
// instance's mapping, to idmap mounts with. The caller closes it.
func userNamespace(m *idMap) (*os.File, error) {
	// A process is the only way to make a user namespace with a mapping;
	// cat waits on its stdin until the namespace is open.
	cmd := exec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	mapping := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostID), Size: int(m.Size)}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: mapping,
		GidMappings: mapping,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("make a user namespace for the instance's ids: %w", err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("make a user namespace for the instance's ids: %w", err)
	}
	return f, nil
}

// idmappedClone mounts, at target, src seen through the user namespace
// userns (an idmapped mount: a file of uid 0 on disk shows as the
// namespace's host id of 0).
func idmappedClone(src, target string, userns *os.File) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("idmap %s: %w", src, err)
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount the idmapped %s: %w", src, err)
	}
	return nil
}
