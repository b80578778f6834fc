package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// image is an imported image: <root>/images/<name>/image.json.
type image struct {
	Name string `json:"name"`
	// Layers are the layer digests, bottom first; each is unpacked once
	// at <root>/layers/<algorithm>/<hex>.
	Layers []string `json:"layers"`
}

func readImage(root, name string) (*image, error) {
	b, err := os.ReadFile(filepath.Join(root, "images", name, "image.json"))
	if err != nil {
		return nil, err
	}
	var img image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

// lowerdirs lists the image's layers top first, as overlay wants them.
func (img *image) lowerdirs(root string) []string {
	out := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		out = append(out, layerDir(root, img.Layers[i]))
	}
	return out
}

// layerDir is where the layer with digest (algorithm:hex) is unpacked.
func layerDir(root, digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(root, "layers", alg, hex)
}
