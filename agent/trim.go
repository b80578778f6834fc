package agent

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimMemory gives back what starting up touched and an idle agent does
// not need: the freed heap, and the pages of its own binary that are
// mapped read-only (they stay in the page cache, shared with the host,
// and fault back in when used). The agent is one binary with the whole
// of chub, so start-up maps far more of it than serving needs.
func trimMemory() {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	// A mapping is dropped only if it is read-only and holds no anonymous
	// (copied-on-write, e.g. relocated) page: then every page is the
	// file's own and dropping it loses nothing.
	var start, end uint64
	candidate := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			// start-end perms offset dev inode [path]
			candidate = false
			if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
				continue
			}
			lo, hi, ok := strings.Cut(fields[0], "-")
			s, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			if ok && err1 == nil && err2 == nil && e > s {
				start, end, candidate = s, e, true
			}
			continue
		}
		if candidate && len(fields) >= 2 && fields[0] == "Anonymous:" {
			candidate = false
			if fields[1] == "0" {
				unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
			}
		}
	}
}
