package e2e

import (
	"strings"
	"testing"

	"github.com/computehub/chub/client"
)

// TestUsersTokensAndOwnership creates a user and a token, checks that the
// caller becomes createdBy, that only admins manage users, and that only the
// instance's own user may run commands in it.
func TestUsersTokensAndOwnership(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	u, err := admin.CreateUser(ctx(t), "alice", "Alice A.", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateUser(ctx(t), "ALICE", "", "", false); err == nil || err.(*client.Error).StatusCode != 409 {
		t.Fatalf("a second user named ALICE: %v; want 409", err)
	}
	tok, err := admin.CreateToken(ctx(t), "alice", "laptop", 30)
	if err != nil || !strings.HasPrefix(tok.Token, "chub_") || tok.ExpiresAt == nil {
		t.Fatalf("token: %+v, %v", tok, err)
	}
	alice := s.clientWithToken(tok.Token)
	me, err := alice.Me(ctx(t))
	if err != nil || me.ObjectID != u.ObjectID {
		t.Fatalf("me: %+v, %v", me, err)
	}
	if _, err := alice.CreateUser(ctx(t), "mallory", "", "", false); err == nil || err.(*client.Error).StatusCode != 403 || err.(*client.Error).Code != "AuthorizationFailed" {
		t.Fatalf("a non-admin creating a user: %v; want 403 AuthorizationFailed", err)
	}
	// Without a role alice may do nothing; a Contributor at the workspace may create.
	if _, _, err := alice.CreateCompute(ctx(t), createReq("alices-box", "Standard_B1s")); err == nil || err.(*client.Error).Code != "AuthorizationFailed" {
		t.Fatalf("create without a role: %v; want 403 AuthorizationFailed", err)
	}
	if _, err := admin.AssignRole(ctx(t), u.ObjectID, "Contributor", wsID); err != nil {
		t.Fatal(err)
	}
	create(t, alice, "alices-box", "Standard_B1s")
	ci, err := admin.GetCompute(ctx(t), "", "alices-box")
	if err != nil || ci.Properties.Properties.CreatedBy == nil || ci.Properties.Properties.CreatedBy.UserName != "alice" || ci.Properties.Properties.CreatedBy.UserID != u.ObjectID {
		t.Fatalf("createdBy of alice's instance: %+v, %v", ci.Properties.Properties.CreatedBy, err)
	}
	if out := mustRun(t, alice, "alices-box", "echo mine"); out != "mine\n" {
		t.Fatalf("alice's exec: %q", out)
	}
	if _, err := admin.Exec(ctx(t), "", "alices-box", client.ExecOptions{Command: []string{"true"}}); err == nil || err.(*client.Error).StatusCode != 403 {
		t.Fatalf("the admin running a command in alice's instance: %v; want 403", err)
	}
	// Tokens are stored hashed: the secret is nowhere in the database file.
	db := readFile(t, s.dataDir+"/chub.db") + readFile(t, s.dataDir+"/chub.db-wal")
	if strings.Contains(db, tok.Token) || strings.Contains(db, s.token()) {
		t.Fatal("a token secret is stored in the database in clear")
	}
}
