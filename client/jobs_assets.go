package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/computehub/chub"
)

// AssetVersion is a code or environment version as the API returns it.
type AssetVersion struct {
	ID         string          `json:"id,omitempty"`
	Name       string          `json:"name,omitempty"` // the version
	Type       string          `json:"type,omitempty"`
	SystemData *SystemData     `json:"systemData,omitempty"`
	Properties AssetProperties `json:"properties"`
}

// AssetProperties are a version's properties: CodeURI for a code, Image
// (and OSType) for an environment.
type AssetProperties struct {
	CodeURI           string            `json:"codeUri,omitempty"`
	Image             string            `json:"image,omitempty"`
	OSType            string            `json:"osType,omitempty"`
	Description       string            `json:"description,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Properties        map[string]string `json:"properties,omitempty"`
	IsAnonymous       bool              `json:"isAnonymous,omitempty"`
	IsArchived        bool              `json:"isArchived,omitempty"`
	ProvisioningState string            `json:"provisioningState,omitempty"`
}

// PendingUpload is the answer of startPendingUpload: where to PUT a code's
// tarball once.
type PendingUpload struct {
	BlobReferenceForConsumption struct {
		BlobURI    string `json:"blobUri"`
		Credential struct {
			CredentialType string `json:"credentialType"`
			SASURI         string `json:"sasUri"`
		} `json:"credential"`
	} `json:"blobReferenceForConsumption"`
	PendingUploadID   string `json:"pendingUploadId"`
	PendingUploadType string `json:"pendingUploadType"`
}

// BlobInfo is what the server answers to an upload.
type BlobInfo struct {
	ID     string `json:"id"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (c *Client) assetPath(ws string, kind chub.AssetKind, name, version string) string {
	p := c.workspacePath(ws) + "/" + string(kind) + "/" + url.PathEscape(name) + "/versions"
	if version != "" {
		p += "/" + url.PathEscape(version)
	}
	return p
}

// AssetVersionID is the ARM id of a code or environment version.
func (c *Client) AssetVersionID(ws string, kind chub.AssetKind, name, version string) string {
	return c.assetPath(ws, kind, name, version)
}

// StartPendingUpload asks for a one-time upload URL for a code version's
// content.
func (c *Client) StartPendingUpload(ctx context.Context, ws, name, version string) (*PendingUpload, error) {
	var out PendingUpload
	body := map[string]string{"pendingUploadType": "TemporaryBlobReference"}
	if _, err := c.do(ctx, http.MethodPost, withVersion(c.assetPath(ws, chub.AssetCode, name, version)+"/startPendingUpload"), body, &out); err != nil {
		return nil, err
	}
	if out.BlobReferenceForConsumption.Credential.SASURI == "" {
		return nil, fmt.Errorf("the server's startPendingUpload answer has no sasUri")
	}
	return &out, nil
}

// UploadBlob PUTs a gzip'd tarball to a pending upload's sasURI. The URI's
// signature is the credential: the bearer token is not sent.
func (c *Client) UploadBlob(ctx context.Context, sasURI string, tarGz io.Reader) (*BlobInfo, error) {
	u, err := url.Parse(sasURI)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("upload URL %q from the server is not a URL", sasURI)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("upload URL %s://%s... from the server is not https; refusing to send the code in the clear", u.Scheme, u.Host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, sasURI, tarGz)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/gzip")
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	req.Header.Set("User-Agent", "chub-cli")
	resp, err := c.streaming().Do(req)
	if err != nil {
		return nil, fmt.Errorf("upload code to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, decodeErrorResponse(resp)
	}
	var out BlobInfo
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the upload's answer: %w", err)
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("decode the upload's answer: %w", err)
		}
	}
	return &out, nil
}

// PutCodeVersion creates (or updates the mutable fields of) a code version.
func (c *Client) PutCodeVersion(ctx context.Context, ws, name, version string, p AssetProperties) (*AssetVersion, error) {
	return c.putAsset(ctx, ws, chub.AssetCode, name, version, p)
}

// PutEnvironmentVersion creates (or updates) an environment version.
func (c *Client) PutEnvironmentVersion(ctx context.Context, ws, name, version string, p AssetProperties) (*AssetVersion, error) {
	return c.putAsset(ctx, ws, chub.AssetEnvironment, name, version, p)
}

// GetCodeVersion fetches a code version.
func (c *Client) GetCodeVersion(ctx context.Context, ws, name, version string) (*AssetVersion, error) {
	return c.getAsset(ctx, ws, chub.AssetCode, name, version)
}

// GetEnvironmentVersion fetches an environment version.
func (c *Client) GetEnvironmentVersion(ctx context.Context, ws, name, version string) (*AssetVersion, error) {
	return c.getAsset(ctx, ws, chub.AssetEnvironment, name, version)
}

// ListEnvironmentVersions lists every version of an environment.
func (c *Client) ListEnvironmentVersions(ctx context.Context, ws, name string) ([]AssetVersion, error) {
	return c.listAssets(ctx, ws, chub.AssetEnvironment, name)
}

// ListCodeVersions lists every version of a code.
func (c *Client) ListCodeVersions(ctx context.Context, ws, name string) ([]AssetVersion, error) {
	return c.listAssets(ctx, ws, chub.AssetCode, name)
}

func (c *Client) putAsset(ctx context.Context, ws string, kind chub.AssetKind, name, version string, p AssetProperties) (*AssetVersion, error) {
	p.ProvisioningState = ""
	var out AssetVersion
	if _, err := c.do(ctx, http.MethodPut, withVersion(c.assetPath(ws, kind, name, version)), AssetVersion{Properties: p}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) getAsset(ctx context.Context, ws string, kind chub.AssetKind, name, version string) (*AssetVersion, error) {
	var out AssetVersion
	if _, err := c.do(ctx, http.MethodGet, withVersion(c.assetPath(ws, kind, name, version)), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) listAssets(ctx context.Context, ws string, kind chub.AssetKind, name string) ([]AssetVersion, error) {
	var all []AssetVersion
	next := withVersion(c.assetPath(ws, kind, name, ""))
	for pages := 0; next != ""; pages++ {
		if pages > 100000 {
			return nil, fmt.Errorf("list %s versions: the server's nextLink did not end after %d pages", kind, pages)
		}
		var page struct {
			Value    []AssetVersion `json:"value"`
			NextLink string         `json:"nextLink"`
		}
		if _, err := c.do(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		next = page.NextLink
	}
	return all, nil
}
