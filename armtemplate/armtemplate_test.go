package armtemplate

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

var dep = Deployment{Subscription: "sub1", TenantID: "ten1", ResourceGroup: "rg1", Location: "westeurope", Name: "d1"}

func TestFunctions(t *testing.T) {
	sc := &scope{d: dep, params: map[string]any{"p": "v", "n": int64(3)}}
	for _, c := range []struct {
		expr string
		want any
	}{
		{"[concat('a', 'b', 1)]", "ab1"},
		{"[format('{0}-{1}', 'x', 2)]", "x-2"},
		{"[if(equals(1, 1), 'y', 'n')]", "y"},
		{"[and(true(), not(false()))]", true},
		{"[or(false(), false())]", false},
		{"[empty('')]", true},
		{"[length(concat(json('[1]'), json('[2,3]')))]", int64(3)},
		{"[base64('ls')]", "bHM="},
		{"[base64ToString('bHM=')]", "ls"},
		{"[toUpper(parameters('p'))]", "V"},
		{"[replace('a-b', '-', '_')]", "a_b"},
		{"[split('a,b', ',')[1]]", "b"},
		{"[contains('Hello', 'ell')]", true},
		{"[coalesce(json('null'), 'x')]", "x"},
		{"[resourceGroup().location]", "westeurope"},
		{"[subscription().tenantId]", "ten1"},
		{"[deployment().name]", "d1"},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]", "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/v/subnets/s"},
		{"[resourceId('rg2', 'A.B/c', 'n')]", "/subscriptions/sub1/resourceGroups/rg2/providers/A.B/c/n"},
		{"[resourceId('s2', 'rg2', 'A.B/c', 'n')]", "/subscriptions/s2/resourceGroups/rg2/providers/A.B/c/n"},
		{"[json('{\"a\":{\"b\":5}}').a.b]", int64(5)},
		{"['it''s']", "it's"},
		{"[[literal]", "[literal]"},
		{"[int('7')]", int64(7)},
		{"[string(parameters('n'))]", "3"},
		{"[length(uniqueString('a', 'b'))]", int64(13)},
		{"[length(guid('a'))]", int64(36)},
	} {
		got, err := sc.evalString(c.expr, "x")
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v; want %#v", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{"[nosuch()]", "[concat('a']", "[parameters('zz')]", "['x]", "[utcNow()]"} {
		if _, err := sc.evalString(bad, "x"); err == nil {
			t.Errorf("%s: got no error; want one", bad)
		}
	}
}

func TestQuickstart(t *testing.T) {
	dir := "../testdata/arm/machine-learning-compute-create-computeinstance/"
	raw, err := os.ReadFile(dir + "azuredeploy.json")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := os.ReadFile(dir + "azuredeploy.parameters.json")
	var pf struct {
		Parameters map[string]struct{ Value any } `json:"parameters"`
	}
	if err := json.Unmarshal(pr, &pf); err != nil {
		t.Fatal(err)
	}
	params := map[string]any{}
	for k, v := range pf.Parameters {
		params[k] = v.Value
	}
	p, err := tm.Plan(dep, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Resources) != 1 {
		t.Fatalf("got %d resources; want 1", len(p.Resources))
	}
	r := p.Resources[0]
	if want := "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/GET-PREREQ-workspaceName/computes/GEN-UNIQUE-8"; r.ID != want {
		t.Errorf("got id %s; want %s", r.ID, want)
	}
	b, err := p.Render(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	props := b["properties"].(map[string]any)["properties"].(map[string]any)
	if props["vmSize"] != "Standard_DS3_v2" {
		t.Errorf("got vmSize %v; want Standard_DS3_v2", props["vmSize"])
	}
	if _, ok := props["subnet"]; ok {
		t.Errorf("got a subnet member; want none")
	}
	if got := props["setupScripts"].(map[string]any)["scripts"].(map[string]any)["creationScript"].(map[string]any)["scriptData"]; got != "bHM=" {
		t.Errorf("got scriptData %v; want bHM=", got)
	}
	if got := props["personalComputeInstanceSettings"].(map[string]any)["assignedUser"].(map[string]any)["tenantId"]; got != "ten1" {
		t.Errorf("got tenantId %v; want ten1", got)
	}
	if _, ok := props["schedules"].(map[string]any)["computeStartStop"]; !ok {
		t.Errorf("got schedules %v; want computeStartStop passed through", props["schedules"])
	}
	delete(params, "objectId")
	if _, err := tm.Plan(dep, params); err == nil {
		t.Errorf("missing objectId: got no error; want MissingRequiredParameter")
	}
}

func FuzzExpression(f *testing.F) {
	for _, s := range []string{"[concat('a', parameters('p'))]", "[json('{}').a[0]]", "[[x]", "[if(true(),1,2)]"} {
		f.Add(s)
	}
	sc := &scope{d: dep, params: map[string]any{"p": "v"}}
	f.Fuzz(func(t *testing.T, s string) {
		sc.evalString(s, "x")
	})
}
