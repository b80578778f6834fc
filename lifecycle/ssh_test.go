package lifecycle_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/gateway/sshgate"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/sqlite"
)

// sshKeyLine builds an authorized_keys line whose blob holds the key type
// and then key bytes of the given length.
func sshKeyLine(keyLen int) string {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 11)
	b = append(b, "ssh-ed25519"...)
	b = binary.BigEndian.AppendUint32(b, 32)
	b = append(b, make([]byte, keyLen)...)
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(b) + " test"
}

type sshFixture struct {
	store *sqlite.DB
	life  *lifecycle.Service
	user  *chub.User
	scope chub.WorkspaceScope
}

func newSSHFixture(t *testing.T, pick func(context.Context) (int, error)) *sshFixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u := &chub.User{ID: "u1", TenantID: "t", Name: "alice", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	scope := chub.WorkspaceScope{Subscription: "s", ResourceGroup: "rg", Workspace: "ws"}
	if _, err := db.PutWorkspace(ctx, &chub.Workspace{ID: "w1", Scope: scope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cat := chub.BuiltinCatalog()
	life := &lifecycle.Service{Store: db, Catalog: func() *chub.Catalog { return cat }, Region: "local",
		CheckSSHKey: sshgate.CheckKey, PickSSHPort: pick}
	if pick == nil {
		alloc := &sshgate.Allocator{Range: sshgate.PortRange{First: 7000, Last: 7002}, Store: db, InUse: func(string, int) bool { return false }}
		life.PickSSHPort = alloc.Pick
	}
	return &sshFixture{store: db, life: life, user: u, scope: scope}
}

func (f *sshFixture) create(name string, ssh *chub.SSHSettings) (*chub.Compute, error) {
	c, _, _, err := f.life.CreateOrUpdate(context.Background(), f.user, f.scope, name,
		lifecycle.CreateRequest{Settings: chub.InstanceSettings{VMSize: "Standard_B1s", SSHSettings: ssh}})
	return c, err
}

func enabled(key string) *chub.SSHSettings {
	return &chub.SSHSettings{SSHPublicAccess: "Enabled", AdminPublicKey: key}
}

func TestCreateGivesSSHPorts(t *testing.T) {
	f := newSSHFixture(t, nil)
	key := sshKeyLine(32)
	c, err := f.create("nossh", nil)
	if err != nil || c.SSHPort != 0 {
		t.Fatalf("create without SSH: port %v, %v; want no port", c, err)
	}
	seen := map[int]bool{}
	for _, name := range []string{"box-a", "box-b", "box-c"} {
		c, err := f.create(name, enabled(key))
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if c.SSHPort < 7000 || c.SSHPort > 7002 || seen[c.SSHPort] {
			t.Fatalf("create %s: port %d; want a new one of 7000-7002 (have %v)", name, c.SSHPort, seen)
		}
		seen[c.SSHPort] = true
		stored, err := f.store.GetComputeByID(context.Background(), c.ID)
		if err != nil || stored.SSHPort != c.SSHPort {
			t.Fatalf("stored port of %s: %v, %v; want %d", name, stored, err, c.SSHPort)
		}
	}
	if _, err := f.create("box-d", enabled(key)); err == nil || err.(*chub.Error).Code != "NoSshPortAvailable" {
		t.Fatalf("create with the range full: %v; want NoSshPortAvailable", err)
	}
	if taken, _ := f.store.ComputeNameTaken(context.Background(), "box-d"); taken {
		t.Fatal("a refused create left a compute behind")
	}
}

// A create that loses the race for a port (the store's unique index)
// proposes another one.
func TestCreateRetriesATakenPort(t *testing.T) {
	proposals := []int{7100, 7100, 7100, 7101}
	f := newSSHFixture(t, func(context.Context) (int, error) {
		p := proposals[0]
		proposals = proposals[1:]
		return p, nil
	})
	key := sshKeyLine(32)
	a, err := f.create("box-a", enabled(key))
	if err != nil || a.SSHPort != 7100 {
		t.Fatalf("create a: %v, %v; want port 7100", a, err)
	}
	b, err := f.create("box-b", enabled(key))
	if err != nil || b.SSHPort != 7101 {
		t.Fatalf("create b: %v, %v; want port 7101 after two conflicts", b, err)
	}
}

func TestCreateRefusesKeysTheGatewayCannotUse(t *testing.T) {
	f := newSSHFixture(t, nil)
	for _, key := range []string{sshKeyLine(16), "", "ssh-rsa AAAA"} {
		_, err := f.create("bad", enabled(key))
		if chub.ErrorKind(err) != chub.KindInvalid {
			t.Errorf("create with key %q: %v; want a 400", key, err)
		}
	}
}
