package chub

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// VMSize is one entry of the size catalog, in Azure's vmSizes shape.
type VMSize struct {
	Name                  string   `json:"name"`
	Family                string   `json:"family"`
	VCPUs                 int      `json:"vCPUs"`
	GPUs                  int      `json:"gpus"`
	MemoryGB              float64  `json:"memoryGB"`
	OSVhdSizeMB           int      `json:"osVhdSizeMB"`
	MaxResourceVolumeMB   int      `json:"maxResourceVolumeMB"`
	LowPriorityCapable    bool     `json:"lowPriorityCapable"`
	PremiumIO             bool     `json:"premiumIO"`
	SupportedComputeTypes []string `json:"supportedComputeTypes"`
}

// Catalog is the set of VM sizes offered, looked up case-insensitively.
type Catalog struct {
	sizes []VMSize
	index map[string]int
}

// NewCatalog builds a catalog; names must be unique ignoring case.
func NewCatalog(sizes []VMSize) (*Catalog, error) {
	c := &Catalog{index: map[string]int{}}
	for i, s := range sizes {
		if s.Name == "" || s.Family == "" || s.VCPUs < 1 || s.MemoryGB <= 0 || s.GPUs < 0 {
			return nil, fmt.Errorf("vm size %d (%q): name, family, vCPUs >= 1 and memoryGB > 0 are required", i, s.Name)
		}
		k := strings.ToLower(s.Name)
		if _, dup := c.index[k]; dup {
			return nil, fmt.Errorf("vm size %q is listed twice", s.Name)
		}
		if len(s.SupportedComputeTypes) == 0 {
			s.SupportedComputeTypes = []string{"ComputeInstance", "AmlCompute"}
		}
		c.index[k] = len(c.sizes)
		c.sizes = append(c.sizes, s)
	}
	return c, nil
}

// ParseCatalog reads a catalog from JSON: either a list of sizes or
// Azure's {"value":[...]} envelope.
func ParseCatalog(data []byte) (*Catalog, error) {
	var env struct {
		Value []VMSize `json:"value"`
	}
	var list []VMSize
	if err := json.Unmarshal(data, &list); err != nil {
		if err2 := json.Unmarshal(data, &env); err2 != nil {
			return nil, fmt.Errorf("vm size catalog: %w", err)
		}
		list = env.Value
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("vm size catalog is empty")
	}
	return NewCatalog(list)
}

// Lookup finds a size by name, ignoring case.
func (c *Catalog) Lookup(name string) (VMSize, bool) {
	i, ok := c.index[strings.ToLower(name)]
	if !ok {
		return VMSize{}, false
	}
	return c.sizes[i], true
}

// Sizes lists the catalog in its order.
func (c *Catalog) Sizes() []VMSize { return append([]VMSize(nil), c.sizes...) }

// Families lists the distinct families, sorted.
func (c *Catalog) Families() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range c.sizes {
		if !seen[s.Family] {
			seen[s.Family] = true
			out = append(out, s.Family)
		}
	}
	sort.Strings(out)
	return out
}

func size(name, family string, cpus int, memGB float64, gpus int) VMSize {
	return VMSize{Name: name, Family: family, VCPUs: cpus, MemoryGB: memGB, GPUs: gpus,
		OSVhdSizeMB: 1047552, MaxResourceVolumeMB: cpus * 16 * 1024, LowPriorityCapable: true, PremiumIO: strings.Contains(strings.ToLower(name), "s_") || strings.HasSuffix(strings.ToLower(name), "s")}
}

// BuiltinCatalog is the default size catalog: common Azure ML sizes.
func BuiltinCatalog() *Catalog {
	c, err := NewCatalog([]VMSize{
		size("Standard_B1ls", "standardBSFamily", 1, 0.5, 0),
		size("Standard_B1s", "standardBSFamily", 1, 1, 0),
		size("Standard_B2s", "standardBSFamily", 2, 4, 0),
		size("Standard_A1_v2", "standardAv2Family", 1, 2, 0),
		size("Standard_A2_v2", "standardAv2Family", 2, 4, 0),
		size("Standard_A4_v2", "standardAv2Family", 4, 8, 0),
		size("Standard_D1_v2", "standardDv2Family", 1, 3.5, 0),
		size("Standard_D2_v2", "standardDv2Family", 2, 7, 0),
		size("Standard_D3_v2", "standardDv2Family", 4, 14, 0),
		size("Standard_D4_v2", "standardDv2Family", 8, 28, 0),
		size("Standard_D11_v2", "standardDv2Family", 2, 14, 0),
		size("Standard_D12_v2", "standardDv2Family", 4, 28, 0),
		size("Standard_DS1_v2", "standardDSv2Family", 1, 3.5, 0),
		size("Standard_DS2_v2", "standardDSv2Family", 2, 7, 0),
		size("Standard_DS3_v2", "standardDSv2Family", 4, 14, 0),
		size("Standard_DS4_v2", "standardDSv2Family", 8, 28, 0),
		size("Standard_DS11_v2", "standardDSv2Family", 2, 14, 0),
		size("Standard_DS12_v2", "standardDSv2Family", 4, 28, 0),
		size("Standard_D2s_v3", "standardDSv3Family", 2, 8, 0),
		size("Standard_D4s_v3", "standardDSv3Family", 4, 16, 0),
		size("Standard_D8s_v3", "standardDSv3Family", 8, 32, 0),
		size("Standard_D2ds_v5", "standardDDSv5Family", 2, 8, 0),
		size("Standard_D4ds_v5", "standardDDSv5Family", 4, 16, 0),
		size("Standard_E2s_v3", "standardESv3Family", 2, 16, 0),
		size("Standard_E4s_v3", "standardESv3Family", 4, 32, 0),
		size("Standard_E4ds_v4", "standardEDSv4Family", 4, 32, 0),
		size("Standard_F2s_v2", "standardFSv2Family", 2, 4, 0),
		size("Standard_F4s_v2", "standardFSv2Family", 4, 8, 0),
		size("Standard_NC4as_T4_v3", "standardNCASv3_T4Family", 4, 28, 1),
		size("Standard_NC6s_v3", "standardNCSv3Family", 6, 112, 1),
		size("Standard_NC12s_v3", "standardNCSv3Family", 12, 224, 2),
		size("Standard_NC24ads_A100_v4", "standardNCADSA100v4Family", 24, 220, 1),
		size("Standard_ND96asr_v4", "standardNDASv4_A100Family", 96, 900, 8),
	})
	if err != nil {
		panic(err) // the built-in table is a constant
	}
	return c
}
