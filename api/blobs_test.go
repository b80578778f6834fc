package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

func writeTarGz(t testing.TB, w io.Writer, files map[string]string) {
	t.Helper()
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, name := range sortedKeys(files) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// pendingUpload asks for an upload URL as the holder of tok.
func (fx *jobsFixture) pendingUpload(t testing.TB, tok, name, version string) pendingUploadResponse {
	t.Helper()
	w := fx.do(t, tok, "POST", fx.arm("/codes/"+name+"/versions/"+version+"/startPendingUpload"), `{"pendingUploadType":"TemporaryBlobReference"}`)
	if w.Code != 200 {
		t.Fatalf("startPendingUpload: %d %s", w.Code, w.Body)
	}
	return decodeAs[pendingUploadResponse](t, w)
}

// upload PUTs content to a sasUri (its path and query).
func (fx *jobsFixture) upload(t testing.TB, sasURI string, content []byte) *httptest.ResponseRecorder {
	t.Helper()
	u, err := url.Parse(sasURI)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("PUT", u.RequestURI(), bytes.NewReader(content))
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	w := httptest.NewRecorder()
	fx.srv.ServeHTTP(w, req)
	return w
}

// readyCode uploads a code tarball and registers it as code name:version,
// returning the code version's ARM id.
func (fx *jobsFixture) readyCode(t *testing.T, name, version string) string {
	t.Helper()
	p := fx.pendingUpload(t, fx.adminTok, name, version)
	if w := fx.upload(t, p.BlobReferenceForConsumption.Credential.SASUri, gzipTar(t, map[string]string{"train.py": "print(1)\n"})); w.Code != 201 {
		t.Fatalf("upload: %d %s", w.Code, w.Body)
	}
	body := `{"properties":{"codeUri":"` + p.BlobReferenceForConsumption.BlobURI + `"}}`
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/codes/"+name+"/versions/"+version), body); w.Code != 201 {
		t.Fatalf("create code: %d %s", w.Code, w.Body)
	}
	return fx.scope.ResourceID() + "/codes/" + name + "/versions/" + version
}

func TestBlobUpload(t *testing.T) {
	fx := newJobsFixture(t)
	if w := fx.do(t, fx.readerTok, "POST", fx.arm("/codes/c1/versions/1/startPendingUpload"), ""); w.Code != 403 {
		t.Errorf("reader startPendingUpload: %d; want 403", w.Code)
	}
	for body, code := range map[string]string{
		`{"pendingUploadType":"None"}`:     "UnsupportedProperty",
		`{"pendingUploadId":"mine"}`:       "UnsupportedProperty",
		`{"pendingUploadKind":"x"}`:        "UnknownProperty",
		`{"pendingUploadType":5}`:          "InvalidRequestContent",
		`{"pendingUploadType":"TemporaryB`: "InvalidRequestContent",
	} {
		w := fx.do(t, fx.adminTok, "POST", fx.arm("/codes/c1/versions/1/startPendingUpload"), body)
		if e := errOf(t, w); w.Code != 400 || e.Code != code {
			t.Errorf("startPendingUpload %s: %d %s; want 400 %s", body, w.Code, e.Code, code)
		}
	}
	// No body at all is fine (Azure's clients send one, others may not).
	if w := fx.do(t, fx.adminTok, "POST", fx.arm("/codes/c1/versions/1/startPendingUpload"), ""); w.Code != 200 {
		t.Errorf("startPendingUpload without a body: %d %s; want 200", w.Code, w.Body)
	}
	p := fx.pendingUpload(t, fx.adminTok, "c1", "1")
	ref := p.BlobReferenceForConsumption
	if want := fx.external + "/chub/v1/blobs/" + p.PendingUploadID; ref.BlobURI != want || p.PendingUploadType != "TemporaryBlobReference" || ref.Credential.CredentialType != "SAS" {
		t.Fatalf("pending upload %+v; want blobUri %s, type TemporaryBlobReference, SAS", p, want)
	}
	if !strings.HasPrefix(ref.Credential.SASUri, ref.BlobURI+"?sig=") {
		t.Fatalf("sasUri %q is not the blobUri with a sig", ref.Credential.SASUri)
	}
	b, err := fx.store.GetBlob(context.Background(), p.PendingUploadID)
	if err != nil {
		t.Fatal(err)
	}
	sig := strings.TrimPrefix(ref.Credential.SASUri, ref.BlobURI+"?sig=")
	if b.TokenHash == "" || strings.Contains(b.TokenHash, sig) || b.Ready {
		t.Errorf("stored blob %+v; want it pending with the sig's hash only", b)
	}
	good := gzipTar(t, map[string]string{"train.py": "print('hi')\n", "lib/util.py": "x = 1\n"})
	cases := []struct {
		name    string
		uri     string
		content []byte
		status  int
		code    string
	}{
		{"no sig", ref.BlobURI, good, 401, "AuthenticationFailed"},
		{"wrong sig", ref.BlobURI + "?sig=AAAA", good, 403, "AuthorizationFailed"},
		{"unknown blob", fx.external + "/chub/v1/blobs/00000000-0000-4000-8000-000000000000?sig=x", good, 404, "ResourceNotFound"},
		{"not a blob id", fx.external + "/chub/v1/blobs/..%2f..%2fx?sig=x", good, 404, "ResourceNotFound"},
		{"not a tar.gz", ref.Credential.SASUri, []byte("plain text"), 400, "InvalidCodeArchive"},
		{"escaping tar", ref.Credential.SASUri, gzipTar(t, map[string]string{"../evil": "x"}), 400, "InvalidCodeArchive"},
		{"good", ref.Credential.SASUri, good, 201, ""},
		{"twice", ref.Credential.SASUri, good, 409, "BlobAlreadyUploaded"},
	}
	for _, c := range cases {
		w := fx.upload(t, c.uri, c.content)
		if w.Code != c.status {
			t.Errorf("%s: %d %s; want %d", c.name, w.Code, w.Body, c.status)
			continue
		}
		if c.code != "" {
			if e := errOf(t, w); e.Code != c.code {
				t.Errorf("%s: %s; want %s", c.name, e.Code, c.code)
			}
		}
		if c.name == "escaping tar" && !strings.Contains(w.Body.String(), "../evil") {
			t.Errorf("%s: %s; want the message to name the entry ../evil", c.name, w.Body)
		}
		if c.status == 201 {
			var got struct {
				ID     string `json:"id"`
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != p.PendingUploadID || got.Size != int64(len(good)) || len(got.SHA256) != 64 {
				t.Errorf("upload answer %+v; want id %s, size %d, a sha256", got, p.PendingUploadID, len(good))
			}
		}
	}
	if b, err := fx.store.GetBlob(context.Background(), p.PendingUploadID); err != nil || !b.Ready {
		t.Errorf("blob after upload: %+v %v; want ready", b, err)
	}
	// The upload is audited for the blob's creator, the sig never recorded.
	es, err := fx.store.ListAudit(context.Background(), chub.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		if strings.Contains(e.Action+e.Resource, sig) {
			t.Errorf("the sig is in the audit log: %+v", e)
		}
		found = found || e.Status == 201 && e.PrincipalName == "admin" && strings.HasSuffix(e.Resource, p.PendingUploadID)
	}
	if !found {
		t.Errorf("no audit entry of the upload among %+v", es)
	}
}

func TestBlobUploadLimits(t *testing.T) {
	fx := newJobsFixture(t)
	fx.srv.cfg.MaxUpload = 100
	p := fx.pendingUpload(t, fx.adminTok, "c1", "1")
	big := gzipTar(t, map[string]string{"a": strings.Repeat("random-ish data ", 1000)})
	for len(big) <= 100 {
		t.Fatal("test archive too small")
	}
	if w := fx.upload(t, p.BlobReferenceForConsumption.Credential.SASUri, big); w.Code != 413 {
		t.Errorf("upload over MaxUpload: %d %s; want 413", w.Code, w.Body)
	}
	// An upload URL lasts an hour.
	p2 := fx.pendingUpload(t, fx.adminTok, "c1", "2")
	b, err := fx.store.GetBlob(context.Background(), p2.PendingUploadID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(b.ExpiresAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("upload URL expires in %s; want an hour", d)
	}
}

func TestCodeVersions(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	p := fx.pendingUpload(t, fx.adminTok, "c1", "1")
	pending := p.BlobReferenceForConsumption.BlobURI
	put := func(name, version, body string) *httptest.ResponseRecorder {
		return fx.do(t, fx.adminTok, "PUT", fx.arm("/codes/"+name+"/versions/"+version), body)
	}
	for _, c := range []struct {
		name, version, body string
		status              int
		code                string
	}{
		{"c1", "1", `{"properties":{}}`, 400, "InvalidCodeUri"},
		{"c1", "1", `{"properties":{"codeUri":"https://evil.example/chub/v1/blobs/` + p.PendingUploadID + `"}}`, 400, "InvalidCodeUri"},
		{"c1", "1", `{"properties":{"codeUri":"` + pending + `"}}`, 400, "InvalidCodeUri"},
		{"c1", "1", `{"properties":{"codeUri":"` + p.BlobReferenceForConsumption.Credential.SASUri + `"}}`, 400, "InvalidCodeUri"},
		{"c1", "1", `{"properties":{"codeUri":"x","isAnonymous":true}}`, 400, "UnsupportedProperty"},
		{"c1", "1", `{"properties":{"codeUri":"x","datastoreId":"y"}}`, 400, "UnknownProperty"},
		{"-c", "1", `{"properties":{"codeUri":"x"}}`, 400, "InvalidAssetName"},
		{"c1", "v 1", `{"properties":{"codeUri":"x"}}`, 400, "InvalidAssetVersion"},
	} {
		w := put(c.name, url.PathEscape(c.version), c.body)
		if e := errOf(t, w); w.Code != c.status || e.Code != c.code {
			t.Errorf("PUT %s:%s %s: %d %s (%s); want %d %s", c.name, c.version, c.body, w.Code, e.Code, e.Message, c.status, c.code)
		}
	}
	id := fx.readyCode(t, "c1", "1")
	// Same again: 200, description may change.
	var got assetVersionJSON
	w := fx.do(t, fx.adminTok, "GET", fx.arm("/codes/c1/versions/1"), "")
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	uri, _ := got.Properties["codeUri"].(string)
	if got.ID != id || got.Name != "1" || got.Type != "Microsoft.MachineLearningServices/workspaces/codes/versions" || !strings.HasPrefix(uri, fx.external+"/chub/v1/blobs/") {
		t.Fatalf("GET code version: %+v", got)
	}
	if w := put("c1", "1", `{"properties":{"codeUri":"`+uri+`","description":"new"}}`); w.Code != 200 {
		t.Errorf("update description: %d %s; want 200", w.Code, w.Body)
	}
	// Another blob for the same version: 409.
	p2 := fx.pendingUpload(t, fx.adminTok, "c1", "1")
	if w := fx.upload(t, p2.BlobReferenceForConsumption.Credential.SASUri, gzipTar(t, map[string]string{"b.py": "2"})); w.Code != 201 {
		t.Fatalf("upload 2: %d %s", w.Code, w.Body)
	}
	if w := put("c1", "1", `{"properties":{"codeUri":"`+p2.BlobReferenceForConsumption.BlobURI+`"}}`); w.Code != 409 || errOf(t, w).Code != "CodeVersionImmutable" {
		t.Errorf("change codeUri: %d %s; want 409 CodeVersionImmutable", w.Code, w.Body)
	}
	if w := put("c1", "2", `{"properties":{"codeUri":"`+p2.BlobReferenceForConsumption.BlobURI+`"}}`); w.Code != 201 {
		t.Fatalf("create version 2: %d %s", w.Code, w.Body)
	}
	fx.readyCode(t, "c2", "1")
	// Lists: versions newest first, containers with latestVersion.
	w = fx.do(t, fx.readerTok, "GET", fx.arm("/codes/c1/versions"), "")
	var vl struct {
		Value []assetVersionJSON `json:"value"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &vl); err != nil || len(vl.Value) != 2 || vl.Value[0].Name != "2" {
		t.Errorf("versions of c1: %s; want 2 then 1", w.Body)
	}
	w = fx.do(t, fx.readerTok, "GET", fx.arm("/codes"), "")
	var cl struct {
		Value []assetContainerJSON `json:"value"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &cl); err != nil || len(cl.Value) != 2 || cl.Value[0].Name != "c1" || cl.Value[0].Properties["latestVersion"] != "2" || cl.Value[0].Properties["nextVersion"] != "3" {
		t.Errorf("code containers: %s; want c1 (latest 2, next 3) and c2", w.Body)
	}
	if w := fx.do(t, fx.readerTok, "GET", fx.arm("/codes/c2"), ""); w.Code != 200 {
		t.Errorf("GET container c2: %d", w.Code)
	}
	// A job uses the code: it cannot be deleted while the job waits.
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), jobBody("ci1", map[string]any{"codeId": "azureml:c1:1"})); w.Code != 201 {
		t.Fatalf("job with code: %d %s", w.Code, w.Body)
	}
	j := decodeAs[jobOut](t, fx.do(t, fx.adminTok, "GET", fx.arm("/jobs/j1"), ""))
	if deref(j.Properties.CodeID) != id {
		t.Errorf("codeId %s; want %s", deref(j.Properties.CodeID), id)
	}
	if w := fx.do(t, fx.adminTok, "DELETE", fx.arm("/codes/c1/versions/1"), ""); w.Code != 409 {
		t.Errorf("delete code in use: %d %s; want 409", w.Code, w.Body)
	}
	if w := fx.do(t, fx.readerTok, "DELETE", fx.arm("/codes/c1/versions/2"), ""); w.Code != 403 {
		t.Errorf("reader delete: %d; want 403", w.Code)
	}
	if w := fx.do(t, fx.adminTok, "DELETE", fx.arm("/codes/c1/versions/2"), ""); w.Code != 200 {
		t.Errorf("delete: %d %s; want 200", w.Code, w.Body)
	}
	if w := fx.do(t, fx.adminTok, "DELETE", fx.arm("/codes/c1/versions/2"), ""); w.Code != 204 {
		t.Errorf("delete again: %d; want 204", w.Code)
	}
}

func TestEnvironmentVersions(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	for _, c := range []struct {
		body, code, target string
	}{
		{`{"properties":{"condaFile":"name: x"}}`, "UnsupportedProperty", "properties.condaFile"},
		{`{"properties":{"build":{"contextUri":"x"}}}`, "UnsupportedProperty", "properties.build"},
		{`{"properties":{"inferenceConfig":{"livenessRoute":{}}}}`, "UnsupportedProperty", "properties.inferenceConfig"},
		{`{"properties":{"osType":"Windows"}}`, "UnsupportedProperty", "properties.osType"},
		{`{"properties":{"autoRebuild":"OnBaseImageUpdate"}}`, "UnsupportedProperty", "properties.autoRebuild"},
		{`{"properties":{"image":"mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"}}`, "InvalidImageName", "properties.image"},
		{`{"properties":{"imageName":"x"}}`, "UnknownProperty", "properties.imageName"},
	} {
		w := fx.do(t, fx.adminTok, "PUT", fx.arm("/environments/e1/versions/1"), c.body)
		if e := errOf(t, w); w.Code != 400 || e.Code != c.code || e.Target != c.target {
			t.Errorf("PUT %s: %d %s at %s; want 400 %s at %s", c.body, w.Code, e.Code, e.Target, c.code, c.target)
		}
	}
	for _, c := range []struct{ name, body string }{
		{"host", `{"properties":{"image":"host","osType":"Linux","autoRebuild":"Disabled","condaFile":null,"isAnonymous":false}}`},
		{"dflt", `{"properties":{}}`},
		{"other", `{"properties":{"image":"ubuntu"}}`},
	} {
		if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/environments/"+c.name+"/versions/1"), c.body); w.Code != 201 {
			t.Fatalf("PUT env %s: %d %s; want 201", c.name, w.Code, w.Body)
		}
	}
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/environments/other/versions/1"), `{"properties":{"image":"host"}}`); w.Code != 409 {
		t.Errorf("change image: %d %s; want 409", w.Code, w.Body)
	}
	for _, c := range []struct {
		env    string
		status int
		code   string
	}{
		{"azureml:host:1", 201, ""},
		{"azureml:dflt:1", 201, ""},
		{"azureml:other:1", 400, "EnvironmentImageMismatch"},
	} {
		w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j-"+strings.Split(c.env, ":")[1]), jobBody("ci1", map[string]any{"environmentId": c.env}))
		if w.Code != c.status || (c.code != "" && errOf(t, w).Code != c.code) {
			t.Errorf("job with %s: %d %s; want %d %s", c.env, w.Code, w.Body, c.status, c.code)
		}
	}
	w := fx.do(t, fx.readerTok, "GET", fx.arm("/environments/host/versions/1"), "")
	var got assetVersionJSON
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Properties["image"] != "host" || got.Properties["osType"] != "Linux" {
		t.Errorf("GET env: %s", w.Body)
	}
	// Archived versions leave the default list.
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/environments/host/versions/1"), `{"properties":{"image":"host","isArchived":true}}`); w.Code != 200 {
		t.Fatalf("archive: %d %s", w.Code, w.Body)
	}
	for q, want := range map[string]int{"": 0, "listViewType=ArchivedOnly": 1, "listViewType=All": 1} {
		var l struct {
			Value []assetVersionJSON `json:"value"`
		}
		w := fx.do(t, fx.readerTok, "GET", fx.arm("/environments/host/versions", q), "")
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || len(l.Value) != want {
			t.Errorf("versions %q: %s; want %d", q, w.Body, want)
		}
	}
}
