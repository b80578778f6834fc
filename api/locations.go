package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/computehub/chub"
)

// checkLocation refuses a location other than the server's region.
func (s *Server) checkLocation(p params) error {
	if !strings.EqualFold(strings.ReplaceAll(p["loc"], " ", ""), s.cfg.Region) {
		return chub.NotFound("location", "location %q is not served here; this server's region is %q", p["loc"], s.cfg.Region)
	}
	return nil
}

func (s *Server) vmSizes(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.checkLocation(p); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionVMSizesRead, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": s.cfg.Catalog().Sizes()})
	return nil
}

// DefaultFamilyQuota and DefaultRegionQuota are the dedicated-core limits
// reported until an administrator sets others.
const (
	DefaultFamilyQuota = 100
	DefaultRegionQuota = 200
)

type usageName struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

type usage struct {
	ID                   string    `json:"id"`
	AmlWorkspaceLocation string    `json:"amlWorkspaceLocation"`
	Type                 string    `json:"type"`
	Unit                 string    `json:"unit"`
	CurrentValue         int64     `json:"currentValue"`
	Limit                int64     `json:"limit"`
	Name                 usageName `json:"name"`
}

// coresInUse sums the vCPUs of every instance of the region by family.
func (s *Server) coresInUse(r *http.Request) (map[string]int64, int64, error) {
	cs, err := s.cfg.Store.ListAllComputes(r.Context())
	if err != nil {
		return nil, 0, err
	}
	cat := s.cfg.Catalog()
	byFamily := map[string]int64{}
	var total int64
	for _, c := range cs {
		if size, ok := cat.Lookup(c.Settings.VMSize); ok {
			byFamily[size.Family] += int64(size.VCPUs)
			total += int64(size.VCPUs)
		}
	}
	return byFamily, total, nil
}

func (s *Server) usages(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.checkLocation(p); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionUsagesRead, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	byFamily, total, err := s.coresInUse(r)
	if err != nil {
		return err
	}
	base := "/subscriptions/" + p["sub"] + "/" + provider + "/locations/" + s.cfg.Region + "/usages/"
	out := []usage{{
		ID: base + "totalCores", AmlWorkspaceLocation: s.cfg.Region, Type: "Microsoft.MachineLearningServices/totalCores/usages",
		Unit: "Count", CurrentValue: total, Limit: DefaultRegionQuota,
		Name: usageName{Value: "Total Cluster Dedicated Regional vCPUs", LocalizedValue: "Total Cluster Dedicated Regional vCPUs"},
	}}
	for _, f := range s.cfg.Catalog().Families() {
		out = append(out, usage{
			ID: base + f, AmlWorkspaceLocation: s.cfg.Region, Type: "Microsoft.MachineLearningServices/vmFamily/usages",
			Unit: "Count", CurrentValue: byFamily[f], Limit: DefaultFamilyQuota,
			Name: usageName{Value: f, LocalizedValue: familyLabel(f) + " Cluster Dedicated vCPUs"},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out, "nextLink": nil})
	return nil
}

// familyLabel turns standardDSv2Family into "Standard DSv2 Family".
func familyLabel(f string) string {
	f = strings.TrimSuffix(strings.TrimPrefix(f, "standard"), "Family")
	return "Standard " + f + " Family"
}

func (s *Server) quotas(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.checkLocation(p); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionQuotasRead, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	base := "/subscriptions/" + p["sub"] + "/" + provider + "/locations/" + s.cfg.Region + "/quotas/"
	var out []map[string]any
	for _, f := range s.cfg.Catalog().Families() {
		out = append(out, map[string]any{
			"id": base + f, "type": "Microsoft.MachineLearningServices/vmFamily/quotas", "unit": "Count",
			"limit": DefaultFamilyQuota, "name": usageName{Value: f, LocalizedValue: familyLabel(f) + " Cluster Dedicated vCPUs"},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out, "nextLink": nil})
	return nil
}

type operationDoc struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Status    chub.OpStatus     `json:"status"`
	StartTime string            `json:"startTime"`
	EndTime   string            `json:"endTime,omitempty"`
	Error     *chub.ErrorDetail `json:"error,omitempty"`
}

func (s *Server) loadOperation(r *http.Request, p params) (*chub.Operation, error) {
	op, err := s.cfg.Store.GetOperation(r.Context(), p["op"])
	if err != nil {
		return nil, err
	}
	// Only the subscription that started an operation may read it.
	if !strings.EqualFold(urlSub(op.ResourceID), p["sub"]) {
		return nil, chub.NotFound("operationId", "operation %s was not found", p["op"])
	}
	if err := s.authorize(r, chub.ActionComputeRead, op.ResourceID); err != nil {
		return nil, err
	}
	return op, nil
}

func opDoc(r *http.Request, op *chub.Operation) operationDoc {
	d := operationDoc{ID: baseURL(r) + r.URL.Path, Name: op.ID, Status: op.Status, StartTime: op.StartTime.Format("2006-01-02T15:04:05.000Z07:00"), Error: op.Error}
	if !op.EndTime.IsZero() {
		d.EndTime = op.EndTime.Format("2006-01-02T15:04:05.000Z07:00")
	}
	return d
}

func (s *Server) operationStatus(w http.ResponseWriter, r *http.Request, p params) error {
	op, err := s.loadOperation(r, p)
	if err != nil {
		return err
	}
	if !op.Done() {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds()+0.5)))
	}
	writeJSON(w, http.StatusOK, opDoc(r, op))
	return nil
}

// operationResult is the Location URL: 202 while the operation runs, then
// its final status.
func (s *Server) operationResult(w http.ResponseWriter, r *http.Request, p params) error {
	op, err := s.loadOperation(r, p)
	if err != nil {
		return err
	}
	if !op.Done() {
		w.Header().Set("Location", baseURL(r)+r.URL.RequestURI())
		w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds()+0.5)))
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if op.Status == chub.OpSucceeded {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, opDoc(r, op))
	return nil
}
