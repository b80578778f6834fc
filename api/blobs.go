package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
)

// Blob uploads. POST .../codes/{name}/versions/{v}/startPendingUpload hands
// out a one-time upload URL whose sig is the credential (stored hashed);
// PUT /chub/v1/blobs/{id}?sig= takes the tar.gz once, checked by the
// artifact store; the code version then names the blob by its blobUri.

// blobUploadTTL is how long an upload URL stays valid.
const blobUploadTTL = time.Hour

// defaultMaxUpload bounds an upload when neither Config.MaxUpload nor the
// artifact store says.
const defaultMaxUpload = 1 << 30

var blobIDRE = regexp.MustCompile(`^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$`)

// blobPath is the path prefix of blob uploads (handled before authentication).
const blobPath = "/chub/v1/blobs/"

// isBlobPath reports whether a request is a blob upload.
func isBlobPath(r *http.Request) bool {
	return len(r.URL.Path) > len(blobPath) && strings.EqualFold(r.URL.Path[:len(blobPath)], blobPath)
}

type pendingUploadResponse struct {
	BlobReferenceForConsumption blobReference `json:"blobReferenceForConsumption"`
	PendingUploadID             string        `json:"pendingUploadId"`
	PendingUploadType           string        `json:"pendingUploadType"`
}

type blobReference struct {
	BlobURI             string         `json:"blobUri"`
	StorageAccountArmID *string        `json:"storageAccountArmId"`
	Credential          blobCredential `json:"credential"`
}

type blobCredential struct {
	CredentialType string `json:"credentialType"`
	SASUri         string `json:"sasUri"`
}

func (s *Server) startPendingUpload(w http.ResponseWriter, r *http.Request, p params) error {
	ws, err := s.workspace(r, p)
	if err != nil {
		return err
	}
	name, version := p["name"], p["version"]
	if err := checkAssetName(chub.AssetCode, name, version); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionCodeWrite, assetScope(ws, chub.AssetCode, name, version)); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if body != nil {
		o, err := parseBody(body)
		if err != nil {
			return err
		}
		if err := o.allow("pendingUploadType", "pendingUploadId"); err != nil {
			return err
		}
		if err := o.refuse("the server picks the upload's id", "pendingUploadId"); err != nil {
			return err
		}
		t, err := o.str("pendingUploadType")
		if err != nil {
			return err
		}
		if t != "" && !strings.EqualFold(t, "TemporaryBlobReference") {
			return chub.Invalid("UnsupportedProperty", "pendingUploadType", `pendingUploadType %q is not supported; use "TemporaryBlobReference"`, t)
		}
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return err
	}
	sig := base64.RawURLEncoding.EncodeToString(secret[:])
	now := time.Now().UTC()
	b := &chub.Blob{ID: lifecycle.NewID(), WorkspaceID: ws.ID, TokenHash: hashToken(sig), CreatedBy: caller(r).Principal(),
		CreatedAt: now, ExpiresAt: now.Add(blobUploadTTL)}
	if err := s.cfg.Store.CreateBlob(r.Context(), b); err != nil {
		return err
	}
	uri := baseURL(r) + blobPath + b.ID
	writeJSON(w, http.StatusOK, pendingUploadResponse{
		BlobReferenceForConsumption: blobReference{BlobURI: uri, Credential: blobCredential{CredentialType: "SAS", SASUri: uri + "?sig=" + url.QueryEscape(sig)}},
		PendingUploadID:             b.ID, PendingUploadType: "TemporaryBlobReference",
	})
	return nil
}

// maxUpload is the bound of one blob upload.
func (s *Server) maxUpload() int64 {
	switch {
	case s.cfg.MaxUpload > 0:
		return s.cfg.MaxUpload
	case s.cfg.Artifacts != nil && s.cfg.Artifacts.MaxBlob > 0:
		return s.cfg.Artifacts.MaxBlob
	}
	return defaultMaxUpload
}

var errUploadTooLarge = errors.New("the upload is over the limit")

// boundedReader fails once more than n bytes were read.
type boundedReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > b.n+1 {
		p = p[:b.n+1]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if b.n < 0 {
		b.over = true
		return 0, errUploadTooLarge
	}
	return n, err
}

// putBlob is PUT /chub/v1/blobs/{id}?sig=SECRET: no bearer token, the sig
// is the credential. It returns the blob's creator, for the audit log.
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) (*chub.User, error) {
	if r.Method != http.MethodPut {
		return nil, chub.Errorf(chub.KindInvalid, "MethodNotAllowed", "", "the method %s is not allowed on %s; PUT the tar.gz", r.Method, r.URL.Path)
	}
	id := r.URL.Path[len(blobPath):]
	if !blobIDRE.MatchString(id) {
		return nil, chub.NotFound("id", "no upload has the id %q", id)
	}
	sig := r.URL.Query().Get("sig")
	if sig == "" {
		return nil, chub.Errorf(chub.KindUnauthenticated, "AuthenticationFailed", "sig",
			"the upload URL has no sig: PUT to the sasUri that startPendingUpload returned")
	}
	ctx := r.Context()
	b, err := s.cfg.Store.GetBlob(ctx, id)
	if chub.IsNotFound(err) {
		return nil, chub.NotFound("id", "no upload has the id %s; ask for one with startPendingUpload", id)
	}
	if err != nil {
		return nil, err
	}
	u := &chub.User{ID: b.CreatedBy.UserID, Name: b.CreatedBy.UserName}
	if b.Ready {
		// Said before the sig is checked: a ready blob's hash may be gone.
		return nil, chub.Conflict("BlobAlreadyUploaded", "id", "blob %s was uploaded already; an upload URL works once (ask for a new one with startPendingUpload)", id)
	}
	if b.TokenHash == "" || subtle.ConstantTimeCompare([]byte(hashToken(sig)), []byte(b.TokenHash)) != 1 {
		return nil, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", "sig", "the sig of this upload URL is wrong; use the sasUri exactly as startPendingUpload returned it")
	}
	if a := auditOf(ctx); a != nil {
		a.action, a.resource = chub.ActionCodeWrite, blobPath+id
	}
	if time.Now().After(b.ExpiresAt) {
		return u, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", "sig", "this upload URL expired at %s; ask for a new one with startPendingUpload", b.ExpiresAt.UTC().Format(time.RFC3339))
	}
	limit := s.maxUpload()
	if r.ContentLength > limit {
		return u, uploadTooLarge(limit)
	}
	if s.cfg.Artifacts == nil {
		return u, chub.Errorf(chub.KindUnavailable, "UploadsUnavailable", "", "this server keeps no uploads (no artifact store)")
	}
	br := &boundedReader{r: r.Body, n: limit}
	size, sum, err := s.cfg.Artifacts.PutBlob(id, br)
	if br.over {
		return u, uploadTooLarge(limit)
	}
	if err != nil {
		return u, err
	}
	if err := s.cfg.Store.MarkBlobReady(ctx, id, size, sum); err != nil {
		return u, err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "size": size, "sha256": sum})
	return u, nil
}

func uploadTooLarge(limit int64) error {
	return chub.Errorf(chub.KindTooLarge, "RequestEntityTooLarge", "", "the upload is larger than this server's limit of %d bytes; leave data and outputs out of the code folder", limit)
}
