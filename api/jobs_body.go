package api

import (
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// maxJobTimeout is the longest limits.timeout a job may ask for.
const maxJobTimeout = 30 * 24 * time.Hour

// jobRequest is a validated job PUT body. The spec's ComputeID, CodeID and
// EnvironmentID are normalized ARM ids built from the URL's workspace;
// the handler then checks that they exist.
type jobRequest struct {
	spec       chub.JobSpec
	isArchived *bool
}

// The fields of a job's properties, by what is done with them.
var (
	jobSettable = []string{"jobType", "command", "computeId", "codeId", "environmentId", "environmentVariables",
		"inputs", "outputs", "limits", "displayName", "experimentName", "description", "tags", "properties", "isArchived"}
	// jobReadOnly are what a GET answers and a PUT ignores (so that a
	// client may send back what it read).
	jobReadOnly = []string{"status", "parameters", "statusMessage", "exitCode", "error", "startTime", "endTime", "queuePosition", "artifacts"}
	// jobRefused are Azure's fields that ComputeHub does not run: accepted
	// only when null.
	jobRefused = []string{"distribution", "identity", "queueSettings", "notificationSetting", "componentId",
		"parentJobName", "autologgerSettings", "resources", "services"}
)

var (
	experimentNameRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_\-.]{0,254}$`)
	assetNameRE      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9\-_.]{0,254}$`)
)

// parseJobBody validates a job's PUT body on its own (no store): every
// field is known, supported and well formed, and the command's bindings
// are declared. Every error is a *chub.Error naming the field.
func parseJobBody(body []byte, ws chub.WorkspaceScope) (*jobRequest, error) {
	top, err := parseBody(body)
	if err != nil {
		return nil, err
	}
	if err := top.allow("properties", "id", "name", "type", "systemData"); err != nil {
		return nil, err
	}
	p, err := top.obj("properties")
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, chub.Invalid("InvalidRequestContent", "properties", `the job's properties are required: {"properties":{"jobType":"Command","command":"...","computeId":"..."}}`)
	}
	jobType, err := p.str("jobType")
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(jobType) {
	case "command":
	case "":
		return nil, chub.Invalid("MissingJobType", "properties.jobType", `properties.jobType is required; ComputeHub runs "Command" jobs`)
	case "pipeline", "sweep", "automl", "spark", "labeling", "finetuning", "distillation":
		return nil, chub.Invalid("UnsupportedJobType", "properties.jobType",
			"jobType %q is not supported: ComputeHub runs Command jobs on compute instances; submit each step as a Command job", jobType)
	default:
		return nil, chub.Invalid("InvalidJobType", "properties.jobType", `jobType %q is not a job type; use "Command"`, jobType)
	}
	if err := p.allow(append(append(append([]string{}, jobSettable...), jobReadOnly...), jobRefused...)...); err != nil {
		return nil, err
	}
	if err := checkJobRefused(p); err != nil {
		return nil, err
	}
	req := &jobRequest{spec: chub.JobSpec{JobType: "Command"}}
	spec := &req.spec
	if spec.Command, err = p.str("command"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(spec.Command) == "" {
		return nil, chub.Invalid("MissingCommand", "properties.command", `properties.command is required: the shell command the job runs, e.g. "python train.py"`)
	}
	if strings.ContainsRune(spec.Command, 0) {
		return nil, chub.Invalid("InvalidCommand", "properties.command", "the command holds a NUL byte, which no shell command can")
	}
	if err := parseJobRefs(p, spec, ws); err != nil {
		return nil, err
	}
	if spec.EnvironmentVariables, err = p.strMap("environmentVariables"); err != nil {
		return nil, err
	}
	if err := checkEnv(spec.EnvironmentVariables); err != nil {
		return nil, err
	}
	if spec.Inputs, err = parseInputs(p); err != nil {
		return nil, err
	}
	if spec.Outputs, err = parseOutputs(p); err != nil {
		return nil, err
	}
	if spec.Timeout, err = parseLimits(p); err != nil {
		return nil, err
	}
	if spec.DisplayName, err = p.str("displayName"); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(spec.DisplayName); n > 256 || strings.ContainsRune(spec.DisplayName, 0) {
		return nil, chub.Invalid("InvalidDisplayName", "properties.displayName", "the display name must be at most 256 characters without NUL bytes (it has %d)", n)
	}
	if spec.ExperimentName, err = p.str("experimentName"); err != nil {
		return nil, err
	}
	if spec.ExperimentName == "" {
		spec.ExperimentName = "Default"
	}
	if !experimentNameRE.MatchString(spec.ExperimentName) {
		return nil, chub.Invalid("InvalidExperimentName", "properties.experimentName",
			"experiment name %q must be 1 to 255 letters, digits, '_', '-' or '.', starting with a letter, digit or '_'", spec.ExperimentName)
	}
	if spec.Description, spec.Tags, spec.Properties, req.isArchived, err = p.resourceBase(); err != nil {
		return nil, err
	}
	if _, err := spec.ExpandCommand(func(string) string { return "" }); err != nil {
		return nil, err
	}
	return req, nil
}

// checkJobRefused refuses the Azure fields ComputeHub does not run, and
// accepts their neutral values.
func checkJobRefused(p *jsonObject) error {
	why := map[string]string{
		"distribution":        "a job runs as one process tree on one instance (no PyTorch/MPI/TensorFlow distribution)",
		"identity":            "a job runs as the instance's user; no other identity is used",
		"queueSettings":       "a job waits in its instance's own queue, in submission order",
		"notificationSetting": "ComputeHub sends no notifications; watch the job with 'chub job stream'",
		"componentId":         "components belong to pipelines, which ComputeHub does not run",
		"parentJobName":       "a Command job has no parent here",
		"autologgerSettings":  "ComputeHub runs no MLflow autologger",
	}
	for _, k := range []string{"distribution", "identity", "queueSettings", "notificationSetting", "componentId", "parentJobName", "autologgerSettings"} {
		if err := p.refuse(why[k], k); err != nil {
			return err
		}
	}
	res, err := p.obj("resources")
	if err != nil {
		return err
	}
	if res != nil {
		if err := res.allow("instanceCount", "instanceType", "properties", "shmSize", "dockerArgs"); err != nil {
			return err
		}
		n, err := res.integer("instanceCount")
		if err != nil {
			return err
		}
		if n != nil && *n != 1 {
			return chub.Invalid("UnsupportedProperty", "properties.resources.instanceCount",
				"instanceCount %d is not supported: a job runs on its one compute instance (use 1 or leave it out)", *n)
		}
		if err := res.refuse("a job runs with its instance's own size and software", "instanceType", "dockerArgs"); err != nil {
			return err
		}
		// "2g" is the SDK's default, which it fills in when it reads a job
		// and sends back on an update; any other size is a setting.
		shm, err := res.str("shmSize")
		if err != nil {
			return err
		}
		if shm != "" && !strings.EqualFold(shm, "2g") {
			return chub.Invalid("UnsupportedProperty", "properties.resources.shmSize",
				"shmSize %q is not supported: a job shares its instance's /dev/shm (leave it out, or the default 2g)", shm)
		}
		if props, err := res.obj("properties"); err != nil {
			return err
		} else if props != nil && len(props.fields) > 0 {
			return chub.Invalid("UnsupportedProperty", "properties.resources.properties", "properties.resources.properties is not supported; remove it")
		}
	}
	services, err := p.objMap("services")
	if err != nil {
		return err
	}
	for name, svc := range services {
		// The entries ComputeHub itself reports may come back as read.
		if strings.EqualFold(name, "Studio") || strings.EqualFold(name, "Tracking") {
			continue
		}
		_ = svc
		return chub.Invalid("UnsupportedProperty", "properties.services."+name,
			"job service %q is not supported: a job has only its Studio page; to reach the instance use its applications (JupyterLab, VS Code, a terminal)", name)
	}
	return nil
}

// parseJobRefs reads computeId, codeId and environmentId into spec as ARM
// ids of workspace ws.
func parseJobRefs(p *jsonObject, spec *chub.JobSpec, ws chub.WorkspaceScope) error {
	compute, err := p.str("computeId")
	if err != nil {
		return err
	}
	if strings.TrimSpace(compute) == "" {
		return chub.Invalid("MissingComputeId", "properties.computeId",
			"properties.computeId is required: the compute instance the job runs on, e.g. azureml:ci1 or its ARM id %s/computes/ci1", ws.ResourceID())
	}
	name, _, err := parseRef(compute, ws, "computes", "properties.computeId")
	if err != nil {
		return err
	}
	spec.ComputeID = ws.ResourceID() + "/computes/" + name
	for _, f := range []struct {
		key, kind string
		dst       *string
	}{{"codeId", string(chub.AssetCode), &spec.CodeID}, {"environmentId", string(chub.AssetEnvironment), &spec.EnvironmentID}} {
		ref, err := p.str(f.key)
		if err != nil {
			return err
		}
		if ref == "" {
			continue
		}
		name, version, err := parseRef(ref, ws, f.kind, "properties."+f.key)
		if err != nil {
			return err
		}
		*f.dst = ws.ResourceID() + "/" + f.kind + "/" + name + "/versions/" + version
	}
	return nil
}

// parseRef reads a reference to a compute (kind "computes") or to a code
// or environment version of workspace ws: the ARM id (any case), or the
// azureml: forms Azure takes (azureml:NAME, azureml:NAME:VERSION,
// azureml:/subscriptions/...). version is "" for a compute.
func parseRef(ref string, ws chub.WorkspaceScope, kind, target string) (name, version string, err error) {
	versioned := kind != "computes"
	what := map[string]string{"computes": "compute instance", "codes": "code version", "environments": "environment version"}[kind]
	example := ws.ResourceID() + "/computes/ci1"
	if versioned {
		example = ws.ResourceID() + "/" + kind + "/NAME/versions/1"
	}
	bad := func(why string) error {
		return chub.Invalid("InvalidResourceReference", target, "%s %q %s; name the %s by its ARM id (%s) or as azureml:%s",
			target, ref, why, what, example, map[bool]string{false: "NAME", true: "NAME:VERSION"}[versioned])
	}
	if len(ref) > 1024 {
		return "", "", bad("is too long")
	}
	rest := ref
	if len(rest) >= 8 && strings.EqualFold(rest[:8], "azureml:") {
		rest = rest[8:]
		if strings.HasPrefix(rest, "//") {
			return "", "", chub.Invalid("UnsupportedProperty", target,
				"%s %q names a registry asset, which ComputeHub does not have; use a %s of this workspace", target, ref, what)
		}
	}
	if strings.HasPrefix(rest, "/") {
		segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
		want := []string{"subscriptions", "", "resourceGroups", "", "providers", "Microsoft.MachineLearningServices", "workspaces", "", kind, ""}
		if versioned {
			want = append(want, "versions", "")
		}
		if len(segs) != len(want) {
			return "", "", bad("is not the ARM id of a " + what)
		}
		for i, w := range want {
			if w != "" && !strings.EqualFold(segs[i], w) {
				return "", "", bad("is not the ARM id of a " + what)
			}
		}
		if !strings.EqualFold(segs[1], ws.Subscription) || !strings.EqualFold(segs[3], ws.ResourceGroup) || !strings.EqualFold(segs[7], ws.Workspace) {
			return "", "", chub.Invalid(map[string]string{"computes": "ComputeNotFound", "codes": "CodeNotFound", "environments": "EnvironmentNotFound"}[kind], target,
				"%s %q is in workspace %s/%s/%s; a job uses the %ss of its own workspace (%s)", target, ref, segs[1], segs[3], segs[7], what, ws.Workspace)
		}
		name = segs[9]
		if versioned {
			version = segs[11]
		}
	} else if versioned {
		var ok bool
		if name, version, ok = strings.Cut(rest, ":"); !ok {
			if n, _, latest := strings.Cut(rest, "@"); latest {
				return "", "", chub.Invalid("UnsupportedProperty", target, "%s %q: name a version (azureml:%s:1); @latest is not supported", target, ref, n)
			}
			return "", "", bad("has no version")
		}
	} else {
		name = rest
	}
	if versioned {
		if !assetNameRE.MatchString(name) || !assetNameRE.MatchString(version) {
			return "", "", bad("has a name or version that is not 1 to 255 letters, digits, '-', '_' or '.'")
		}
	} else if err := chub.ValidateComputeName(name); err != nil {
		return "", "", bad("is not a compute instance name")
	}
	return name, version, nil
}

var envNameRE = regexp.MustCompile(`^[^=\x00]+$`)

func checkEnv(env map[string]string) error {
	if len(env) > 1000 {
		return chub.Invalid("InvalidEnvironmentVariables", "properties.environmentVariables", "a job can have at most 1000 environment variables, got %d", len(env))
	}
	for _, k := range sortedKeys(env) {
		if !envNameRE.MatchString(k) {
			return chub.Invalid("InvalidEnvironmentVariables", "properties.environmentVariables",
				"environment variable name %q is empty or holds '=' or a NUL byte, which names cannot", k)
		}
		if strings.ContainsRune(env[k], 0) {
			return chub.Invalid("InvalidEnvironmentVariables", "properties.environmentVariables."+k, "the value of environment variable %s holds a NUL byte, which values cannot", k)
		}
	}
	return nil
}

func checkProperties(props map[string]string, target string) error {
	if len(props) > 100 {
		return chub.Invalid("InvalidProperties", target, "at most 100 properties, got %d", len(props))
	}
	for _, k := range sortedKeys(props) {
		if strings.TrimSpace(k) == "" || utf8.RuneCountInString(k) > 512 {
			return chub.Invalid("InvalidProperties", target, "a property name must be 1 to 512 characters, got %q", k)
		}
		if utf8.RuneCountInString(props[k]) > 4096 {
			return chub.Invalid("InvalidProperties", target+"."+k, "the value of property %q is longer than 4096 characters", k)
		}
	}
	return nil
}

func parseInputs(p *jsonObject) (map[string]chub.JobInput, error) {
	ins, err := p.objMap("inputs")
	if err != nil || ins == nil {
		return nil, err
	}
	if len(ins) > 100 {
		return nil, chub.Invalid("InvalidJobInput", "properties.inputs", "a job can have at most 100 inputs, got %d", len(ins))
	}
	out := map[string]chub.JobInput{}
	for _, name := range sortedKeys(ins) {
		in, t := ins[name], "properties.inputs."+name
		if !jobproto.NamePattern.MatchString(name) {
			return nil, chub.Invalid("InvalidJobInput", t, "input name %q must be a letter or '_' then letters, digits or '_' (it is used as ${{inputs.%s}})", name, name)
		}
		if in == nil {
			return nil, chub.Invalid("InvalidJobInput", t, `input %s is null; give {"jobInputType":"literal","value":"..."}`, name)
		}
		typ, err := in.str("jobInputType")
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(typ) {
		case "literal":
		case "":
			return nil, chub.Invalid("InvalidJobInput", t+".jobInputType", `input %s needs a jobInputType; ComputeHub takes "literal"`, name)
		case "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model":
			return nil, chub.Invalid("UnsupportedJobInputType", t+".jobInputType",
				"jobInputType %q is not supported: pass a literal value or put the data in the instance (its disk is there for the job)", typ)
		default:
			return nil, chub.Invalid("InvalidJobInput", t+".jobInputType", `jobInputType %q is not an input type; ComputeHub takes "literal"`, typ)
		}
		if err := in.allow("jobInputType", "value", "description"); err != nil {
			return nil, err
		}
		if !in.has("value") {
			return nil, chub.Invalid("InvalidJobInput", t+".value", "literal input %s needs a value", name)
		}
		v, err := in.str("value")
		if err != nil {
			return nil, err
		}
		d, err := in.str("description")
		if err != nil {
			return nil, err
		}
		if strings.ContainsRune(v, 0) {
			return nil, chub.Invalid("InvalidJobInput", t+".value", "the value of input %s holds a NUL byte, which a command cannot", name)
		}
		if err := chub.ValidateDescription(d, t+".description"); err != nil {
			return nil, err
		}
		out[name] = chub.JobInput{Type: "literal", Value: v, Description: d}
	}
	return out, nil
}

func parseOutputs(p *jsonObject) (map[string]chub.JobOutput, error) {
	outs, err := p.objMap("outputs")
	if err != nil || outs == nil {
		return nil, err
	}
	if len(outs) > 100 {
		return nil, chub.Invalid("InvalidJobOutput", "properties.outputs", "a job can have at most 100 outputs, got %d", len(outs))
	}
	res := map[string]chub.JobOutput{}
	for _, name := range sortedKeys(outs) {
		o, t := outs[name], "properties.outputs."+name
		if !jobproto.NamePattern.MatchString(name) {
			return nil, chub.Invalid("InvalidJobOutput", t, "output name %q must be a letter or '_' then letters, digits or '_' (it is used as ${{outputs.%s}})", name, name)
		}
		if o == nil {
			return nil, chub.Invalid("InvalidJobOutput", t, `output %s is null; give {"jobOutputType":"uri_folder"}`, name)
		}
		typ, err := o.str("jobOutputType")
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(typ) {
		case "uri_folder":
		case "":
			return nil, chub.Invalid("InvalidJobOutput", t+".jobOutputType", `output %s needs a jobOutputType; ComputeHub takes "uri_folder"`, name)
		case "uri_file", "mltable", "custom_model", "mlflow_model", "triton_model":
			return nil, chub.Invalid("UnsupportedJobOutputType", t+".jobOutputType",
				"jobOutputType %q is not supported: an output is a folder the job writes (uri_folder), kept when the job ends", typ)
		default:
			return nil, chub.Invalid("InvalidJobOutput", t+".jobOutputType", `jobOutputType %q is not an output type; ComputeHub takes "uri_folder"`, typ)
		}
		if err := o.allow("jobOutputType", "mode", "uri", "description", "assetName", "assetVersion", "pathOnCompute"); err != nil {
			return nil, err
		}
		if err := o.refuse("ComputeHub keeps a job's outputs itself (download them with 'chub job download'); leave uri out", "uri"); err != nil {
			return nil, err
		}
		if err := o.refuse("outputs are kept with the job, not registered as data assets", "assetName", "assetVersion", "pathOnCompute"); err != nil {
			return nil, err
		}
		mode, err := o.str("mode")
		if err != nil {
			return nil, err
		}
		if mode != "" && !strings.EqualFold(mode, "ReadWriteMount") && !strings.EqualFold(mode, "Upload") {
			return nil, chub.Invalid("UnsupportedProperty", t+".mode",
				"output mode %q is not supported: the job writes the folder and it is kept when the job ends (ReadWriteMount or Upload)", mode)
		}
		d, err := o.str("description")
		if err != nil {
			return nil, err
		}
		if err := chub.ValidateDescription(d, t+".description"); err != nil {
			return nil, err
		}
		res[name] = chub.JobOutput{Type: "uri_folder", Description: d}
	}
	return res, nil
}

func parseLimits(p *jsonObject) (time.Duration, error) {
	l, err := p.obj("limits")
	if err != nil || l == nil {
		return 0, err
	}
	if err := l.allow("jobLimitsType", "timeout"); err != nil {
		return 0, err
	}
	typ, err := l.str("jobLimitsType")
	if err != nil {
		return 0, err
	}
	if typ != "" && !strings.EqualFold(typ, "Command") {
		return 0, chub.Invalid("InvalidJobLimits", "properties.limits.jobLimitsType", `jobLimitsType %q is not a Command job's; use "Command"`, typ)
	}
	ts, err := l.str("timeout")
	if err != nil || ts == "" {
		return 0, err
	}
	d, err := chub.ParseISODuration(ts)
	if err != nil {
		return 0, chub.Invalid("InvalidJobTimeout", "properties.limits.timeout", "limits.timeout: %v", err)
	}
	if d < time.Second || d > maxJobTimeout {
		return 0, chub.Invalid("InvalidJobTimeout", "properties.limits.timeout",
			"limits.timeout must be between 1 second (PT1S) and 30 days (P30D), got %s", ts)
	}
	return d, nil
}

// retarget prefixes the target of a chub error.
func retarget(err error, prefix string) error {
	if e, ok := err.(*chub.Error); ok {
		c := *e
		c.Target = prefix + c.Target
		return &c
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// imageKey is an image name as compared between an environment and an
// instance: "" and "host" are the default image.
func imageKey(image string) string {
	if image == "" || strings.EqualFold(image, "host") {
		return "host"
	}
	return strings.ToLower(image)
}
