package agent

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// account is a user of the instance, read from its /etc/passwd.
type account struct {
	Name     string
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Home     string
	Shell    string
}

// lookupAccount reads name's entry from passwd and its groups from group
// (the files are the instance's /etc/passwd and /etc/group). Reading the
// files directly keeps the agent free of libc's name service.
func lookupAccount(passwd, group, name string) (account, error) {
	f, err := os.Open(passwd)
	if err != nil {
		return account{}, err
	}
	defer f.Close()
	var a account
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil {
			return account{}, fmt.Errorf("user %s: bad uid or gid in %s", name, passwd)
		}
		a = account{Name: name, UID: uint32(uid), GID: uint32(gid), Home: fields[5], Shell: fields[6]}
		found = true
		break
	}
	if err := sc.Err(); err != nil {
		return account{}, err
	}
	if !found {
		return account{}, fmt.Errorf("no user %q in this instance", name)
	}
	if a.Home == "" {
		a.Home = "/"
	}
	if a.Shell == "" {
		a.Shell = "/bin/sh"
	}
	g, err := os.Open(group)
	if err != nil {
		return a, nil // no groups file: primary group only
	}
	defer g.Close()
	sc = bufio.NewScanner(g)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 {
			continue
		}
		gid, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil || uint32(gid) == a.GID {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if m == name {
				a.Groups = append(a.Groups, uint32(gid))
				break
			}
		}
	}
	return a, nil
}
