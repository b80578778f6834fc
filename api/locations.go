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
	if err := s.authorizeWithin(r, chub.ActionVMSizesRead, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": s.cfg.Catalog().Sizes()})
	return nil
}

// authorizeWithin authorizes a read of something that belongs to a whole
// subscription but serves every workspace in it (the size catalog, the
// cores used and left): whoever holds a role allowing it at the
// subscription, or at a resource group, workspace or compute in it, may
// read it. A workspace's Contributor needs both to create an instance there.
func (s *Server) authorizeWithin(r *http.Request, action, sub string) error {
	ok, err := s.rbac().PermittedWithin(r.Context(), caller(r), action, sub)
	if err != nil || ok {
		return err
	}
	return s.authorize(r, action, sub)
}

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

// limits returns a subscription's family limits and total in the
// region, defaults filled in.
func (s *Server) limits(r *http.Request, sub string) (map[string]int64, int64, error) {
	qs, err := s.cfg.Store.ListQuotas(r.Context(), sub, s.cfg.Region)
	if err != nil {
		return nil, 0, err
	}
	fams := map[string]int64{}
	for _, f := range s.cfg.Catalog().Families() {
		fams[strings.ToLower(f)] = chub.DefaultFamilyQuota
	}
	total := chub.DefaultRegionQuota
	for _, q := range qs {
		if q.Family == "" {
			total = q.Limit
		} else {
			fams[strings.ToLower(q.Family)] = q.Limit
		}
	}
	return fams, total, nil
}

const totalCoresName = "Total Cluster Dedicated Regional vCPUs"

func (s *Server) usages(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.checkLocation(p); err != nil {
		return err
	}
	if err := s.authorizeWithin(r, chub.ActionUsagesRead, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	used, err := s.cfg.Store.Usage(r.Context(), p["sub"], s.cfg.Region)
	if err != nil {
		return err
	}
	limits, total, err := s.limits(r, p["sub"])
	if err != nil {
		return err
	}
	byFamily := map[string]int64{}
	for f, n := range used.ByFamily {
		byFamily[strings.ToLower(f)] += n
	}
	base := "/subscriptions/" + p["sub"] + "/" + provider + "/locations/" + s.cfg.Region + "/usages/"
	out := []usage{{
		ID: base + "totalCores", AmlWorkspaceLocation: s.cfg.Region, Type: "Microsoft.MachineLearningServices/totalCores/usages",
		Unit: "Count", CurrentValue: used.Total, Limit: total,
		Name: usageName{Value: totalCoresName, LocalizedValue: totalCoresName},
	}}
	for _, f := range s.cfg.Catalog().Families() {
		out = append(out, usage{
			ID: base + f, AmlWorkspaceLocation: s.cfg.Region, Type: "Microsoft.MachineLearningServices/vmFamily/usages",
			Unit: "Count", CurrentValue: byFamily[strings.ToLower(f)], Limit: limits[strings.ToLower(f)],
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

type quotaJSON struct {
	ID     string     `json:"id"`
	Type   string     `json:"type"`
	Unit   string     `json:"unit"`
	Limit  int64      `json:"limit"`
	Name   *usageName `json:"name,omitempty"`
	Status string     `json:"status,omitempty"`
}

func (s *Server) quotas(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.checkLocation(p); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionQuotasRead, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	limits, total, err := s.limits(r, p["sub"])
	if err != nil {
		return err
	}
	base := "/subscriptions/" + p["sub"] + "/" + provider + "/locations/" + s.cfg.Region + "/quotas/"
	out := []quotaJSON{{ID: base + "totalCores", Type: "Microsoft.MachineLearningServices/totalCores/quotas", Unit: "Count", Limit: total,
		Name: &usageName{Value: totalCoresName, LocalizedValue: totalCoresName}}}
	for _, f := range s.cfg.Catalog().Families() {
		out = append(out, quotaJSON{ID: base + f, Type: "Microsoft.MachineLearningServices/vmFamily/quotas", Unit: "Count",
			Limit: limits[strings.ToLower(f)], Name: &usageName{Value: f, LocalizedValue: familyLabel(f) + " Cluster Dedicated vCPUs"}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out, "nextLink": nil})
	return nil
}

// updateQuotas sets the limits of the subscription in the URL:
// POST .../locations/{loc}/updateQuotas
// {"value":[{"id": ".../quotas/{family or totalCores}", "type", "limit", "unit"}]},
// answering a status per item as Azure does. Quotas are the subscription's
// own; who may update them there may lower them, but raising a limit takes
// the right at / (the server's administrators grant capacity, as Azure's
// quota requests do): otherwise the item's status is
// InvalidQuotaExceedsSubscriptionLimit.
func (s *Server) updateQuotas(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.checkLocation(p); err != nil {
		return err
	}
	if err := s.authorize(r, chub.ActionQuotaWrite, "/subscriptions/"+p["sub"]); err != nil {
		return err
	}
	raise, err := s.rbac().Permitted(r.Context(), caller(r), chub.ActionQuotaWrite, chub.RootScope)
	if err != nil {
		return err
	}
	current, currentTotal, err := s.limits(r, p["sub"])
	if err != nil {
		return err
	}
	var body struct {
		Value []quotaJSON `json:"value"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if len(body.Value) == 0 {
		return chub.Invalid("InvalidQuotaUpdate", "value", "updateQuotas needs a value list of {id, type, limit, unit}")
	}
	families := map[string]string{}
	for _, f := range s.cfg.Catalog().Families() {
		families[strings.ToLower(f)] = f
	}
	out := []quotaJSON{}
	for _, q := range body.Value {
		name := q.ID[strings.LastIndex(q.ID, "/")+1:]
		if name == "" && q.Name != nil {
			name = q.Name.Value
		}
		item := quotaJSON{ID: q.ID, Type: q.Type, Unit: "Count", Limit: q.Limit}
		family, ok := families[strings.ToLower(name)]
		total := strings.EqualFold(name, "totalCores") || strings.EqualFold(q.Type, "Microsoft.MachineLearningServices/totalCores/quotas")
		switch {
		case !ok && !total:
			item.Status = "InvalidVMFamilyName"
		case q.Limit < 0:
			item.Status = "InvalidQuotaBelowClusterMinimum"
		case !raise && total && q.Limit > currentTotal, !raise && !total && q.Limit > current[strings.ToLower(family)]:
			item.Status = "InvalidQuotaExceedsSubscriptionLimit"
		default:
			if total {
				family = ""
			}
			if err := s.cfg.Store.SetQuota(r.Context(), chub.Quota{Subscription: p["sub"], Location: s.cfg.Region, Family: family, Limit: q.Limit}); err != nil {
				return err
			}
			item.Status = "Success"
		}
		out = append(out, item)
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
