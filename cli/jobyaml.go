package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/computehub/chub/client"
)

// jobDraft is a job as the user described it (YAML or flags), before the
// CLI resolves its references (compute, code upload, environment) and
// submits it.
type jobDraft struct {
	Name    string
	Command string
	// CodePath is a local file or folder to upload ("" for none); CodeRef
	// an existing code version (azureml:name:version or an ARM id).
	CodePath string
	CodeRef  string
	// Environment is an azureml: reference; EnvironmentImage an inline
	// environment's image (HasImage says one was given).
	Environment      string
	EnvironmentImage string
	HasImage         bool
	Compute          string // azureml:NAME, NAME or azureml:/subscriptions/...
	Inputs           map[string]string
	Outputs          map[string]client.JobOutput
	Env              map[string]string
	DisplayName      string
	ExperimentName   string
	Description      string
	Tags             map[string]string
	Properties       map[string]string
	Timeout          time.Duration
}

// bindingName is what an input or output name must match to be usable in
// the command as ${{inputs.NAME}}.
var bindingName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// unsupportedJobFields are az ml YAML fields of jobs that a ComputeHub job
// does not act on, with what to do instead.
var unsupportedJobFields = map[string]string{
	"resources":            "a job runs inside its compute instance with the instance's CPU, memory and GPUs; pick the instance's size instead",
	"distribution":         "distributed training (MPI, PyTorch, TensorFlow) across nodes is not run: a job runs on one instance",
	"services":             "job services (SSH, JupyterLab, VS Code, TensorBoard) are not run; use the instance's own applications and terminal",
	"identity":             "a job runs as the instance's user; there is no job identity to set",
	"queue_settings":       "every instance has one queue in submission order; there is no job tier or priority",
	"notification_setting": "job notifications (email, webhooks) are not sent",
	"parent_job_name":      "pipelines are not run",
	"component":            "components are not run; write the command in the job",
	"jobs":                 "pipeline jobs are not run",
	"settings":             "pipeline settings are not run",
	"trial":                "sweep jobs are not run",
	"search_space":         "sweep jobs are not run",
	"sampling_algorithm":   "sweep jobs are not run",
	"objective":            "sweep jobs are not run",
	"early_termination":    "sweep jobs are not run",
	"is_deterministic":     "components are not run",
	"status":               "it is read-only (the output of chub job show): remove it",
	"creation_context":     "it is read-only (the output of chub job show): remove it",
	"id":                   "it is read-only (the output of chub job show): remove it",
	"services_endpoints":   "it is read-only: remove it",
}

// parseJobYAML reads an az ml v2 command job YAML. Relative code paths are
// taken from baseDir (the YAML's folder). sets are --set key=value
// overrides (dotted keys, values read as YAML). Every field the CLI does
// not act on is refused, naming it.
func parseJobYAML(data []byte, baseDir string, sets []string) (*jobDraft, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the YAML must be a mapping of a command job's fields (type: command, command: ..., compute: azureml:NAME), not a %s", kindOf(doc))
	}
	for _, s := range sets {
		if err := applySet(top, s); err != nil {
			return nil, err
		}
	}
	d := &jobDraft{}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := top[k]
		if v == nil {
			continue // an empty field is an absent one
		}
		if err := d.setField(k, v, baseDir); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(d.Command) == "" {
		return nil, fmt.Errorf("command: missing; a command job needs one, e.g. command: python train.py --lr ${{inputs.lr}}")
	}
	if d.Compute == "" {
		return nil, fmt.Errorf("compute: missing; name the compute instance the job runs on, e.g. compute: azureml:ci1")
	}
	return d, nil
}

func (d *jobDraft) setField(k string, v any, baseDir string) error {
	var err error
	switch k {
	case "$schema":
		// Editors' schema link; nothing to act on.
	case "type":
		t, err := scalarString(k, v)
		if err != nil {
			return err
		}
		if !strings.EqualFold(t, "command") {
			return fmt.Errorf("type: %s jobs are not supported: only command jobs run (type: command)", t)
		}
	case "name":
		d.Name, err = scalarString(k, v)
	case "display_name":
		d.DisplayName, err = scalarString(k, v)
	case "experiment_name":
		d.ExperimentName, err = scalarString(k, v)
	case "description":
		d.Description, err = scalarString(k, v)
	case "command":
		d.Command, err = scalarString(k, v)
	case "compute":
		d.Compute, err = scalarString(k, v)
		if err == nil && d.Compute == "" {
			err = fmt.Errorf("compute: empty; name the compute instance, e.g. compute: azureml:ci1")
		}
	case "code":
		var c string
		if c, err = scalarString(k, v); err != nil {
			return err
		}
		return d.setCode(c, baseDir)
	case "environment":
		return d.setEnvironment(v)
	case "environment_variables":
		d.Env, err = stringMap(k, v, false)
	case "tags":
		d.Tags, err = stringMap(k, v, true)
	case "properties":
		d.Properties, err = stringMap(k, v, true)
	case "inputs":
		return d.setInputs(v)
	case "outputs":
		return d.setOutputs(v)
	case "limits":
		return d.setLimits(v)
	default:
		if why, ok := unsupportedJobFields[k]; ok {
			return fmt.Errorf("%s: not supported: %s; remove it from the YAML", k, why)
		}
		return fmt.Errorf("%s: unknown field of a command job; the fields are type, name, display_name, experiment_name, description, tags, properties, command, code, environment, compute, inputs, outputs, environment_variables, limits", k)
	}
	return err
}

func (d *jobDraft) setCode(c, baseDir string) error {
	switch {
	case c == "":
		return fmt.Errorf("code: empty; give a local folder (code: ./src) or remove it")
	case strings.HasPrefix(c, "azureml://") || strings.Contains(c, "://") || strings.HasPrefix(c, "git+"):
		return fmt.Errorf("code: %s: only a local folder or file (code: ./src) or a code version (azureml:NAME:VERSION) is supported", c)
	case strings.HasPrefix(c, "azureml:"):
		d.CodeRef = c
	default:
		if !filepath.IsAbs(c) {
			c = filepath.Join(baseDir, c)
		}
		d.CodePath = filepath.Clean(c)
	}
	return nil
}

func (d *jobDraft) setEnvironment(v any) error {
	switch e := v.(type) {
	case string:
		if !strings.HasPrefix(e, "azureml:") {
			return fmt.Errorf("environment: %q: give a registered environment as azureml:NAME:VERSION or azureml:NAME@latest, or an inline one as environment: {image: IMAGE}", e)
		}
		d.Environment = e
		return nil
	case map[string]any:
		for k, x := range e {
			if x == nil {
				continue
			}
			switch k {
			case "image":
				img, err := scalarString("environment.image", x)
				if err != nil {
					return err
				}
				d.EnvironmentImage, d.HasImage = img, true
			case "os_type":
				os, err := scalarString("environment.os_type", x)
				if err != nil {
					return err
				}
				if !strings.EqualFold(os, "linux") {
					return fmt.Errorf("environment.os_type: %s is not supported: jobs run on Linux", os)
				}
			case "conda_file", "build", "inference_config", "name", "version", "description", "tags", "datastore", "intellectual_property":
				return fmt.Errorf("environment.%s: not supported: a job runs in its instance's own software (install packages in the instance with pip or conda and jobs see them); an inline environment has only image", k)
			default:
				return fmt.Errorf("environment.%s: unknown field of an environment; an inline environment has only image (environment: {image: IMAGE})", k)
			}
		}
		if !d.HasImage {
			return fmt.Errorf("environment: an inline environment needs image (environment: {image: IMAGE})")
		}
		return nil
	default:
		return fmt.Errorf("environment: must be azureml:NAME:VERSION, azureml:NAME@latest or a mapping {image: IMAGE}, not a %s", kindOf(v))
	}
}

func (d *jobDraft) setInputs(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("inputs: must be a mapping of names to values (inputs: {lr: 0.01}), not a %s", kindOf(v))
	}
	d.Inputs = map[string]string{}
	for name, x := range m {
		at := "inputs." + name
		if !bindingName.MatchString(name) {
			return fmt.Errorf("%s: an input name is letters, digits and _ and does not start with a digit", at)
		}
		switch in := x.(type) {
		case nil:
			return fmt.Errorf("%s: no value; write a literal value (%s: 0.01)", at, name)
		case map[string]any:
			var val string
			var has bool
			for k, y := range in {
				switch k {
				case "type":
					t, err := scalarString(at+".type", y)
					if err != nil {
						return err
					}
					switch strings.ToLower(t) {
					case "literal", "string", "integer", "number", "boolean":
					default:
						return fmt.Errorf("%s.type: %s inputs are not supported: only literal values run; put the data in the instance (its disk or the workspace share) and pass its path as a literal", at, t)
					}
				case "value":
					if y == nil {
						return fmt.Errorf("%s.value: no value", at)
					}
					s, err := scalarString(at+".value", y)
					if err != nil {
						return err
					}
					val, has = s, true
				case "description":
				case "path", "mode", "datastore", "path_on_compute":
					return fmt.Errorf("%s.%s: not supported: only literal inputs run (%s: {type: literal, value: X}); put the data in the instance and pass its path as a literal", at, k, name)
				default:
					return fmt.Errorf("%s.%s: unknown field of an input; a literal input has type: literal and value", at, k)
				}
			}
			if !has {
				return fmt.Errorf("%s: no value; write %s: {type: literal, value: X} or just %s: X", at, name, name)
			}
			d.Inputs[name] = val
		default:
			s, err := scalarString(at, x)
			if err != nil {
				return err
			}
			d.Inputs[name] = s
		}
	}
	return nil
}

// outputModes maps the az ml YAML output modes the server accepts to the
// API's names.
var outputModes = map[string]string{"rw_mount": "ReadWriteMount", "readwritemount": "ReadWriteMount", "upload": "Upload"}

func (d *jobDraft) setOutputs(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("outputs: must be a mapping of names to output folders (outputs: {model: {type: uri_folder}}), not a %s", kindOf(v))
	}
	d.Outputs = map[string]client.JobOutput{}
	for name, x := range m {
		at := "outputs." + name
		if !bindingName.MatchString(name) {
			return fmt.Errorf("%s: an output name is letters, digits and _ and does not start with a digit", at)
		}
		o := client.JobOutput{JobOutputType: "uri_folder"}
		switch out := x.(type) {
		case nil:
		case map[string]any:
			for k, y := range out {
				if y == nil {
					continue
				}
				s, err := scalarString(at+"."+k, y)
				if err != nil {
					return err
				}
				switch k {
				case "type":
					if s != "uri_folder" {
						return fmt.Errorf("%s.type: %s outputs are not supported: an output is a folder the job writes (type: uri_folder), kept by the server", at, s)
					}
				case "mode":
					mode, ok := outputModes[strings.ToLower(s)]
					if !ok {
						return fmt.Errorf("%s.mode: %s is not supported: an output folder is written in place and kept after the job (mode: rw_mount or upload)", at, s)
					}
					o.Mode = mode
				case "description":
					o.Description = s
				case "path", "name", "version", "datastore":
					return fmt.Errorf("%s.%s: not supported: the server keeps a job's outputs itself; download them with chub job download -n JOB", at, k)
				default:
					return fmt.Errorf("%s.%s: unknown field of an output; an output has type: uri_folder (and mode, description)", at, k)
				}
			}
		default:
			return fmt.Errorf("%s: must be a mapping ({type: uri_folder}) or empty, not a %s", at, kindOf(x))
		}
		d.Outputs[name] = o
	}
	return nil
}

func (d *jobDraft) setLimits(v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("limits: must be a mapping (limits: {timeout: 3600}), not a %s", kindOf(v))
	}
	for k, x := range m {
		if x == nil {
			continue
		}
		if k != "timeout" {
			return fmt.Errorf("limits.%s: not supported: a command job's only limit is timeout (seconds)", k)
		}
		n, ok := x.(json.Number)
		if !ok {
			return fmt.Errorf("limits.timeout: must be a number of seconds (timeout: 3600), not %s", kindOf(x))
		}
		secs, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || secs <= 0 || secs > math.MaxInt64/int64(time.Second) {
			return fmt.Errorf("limits.timeout: %s is not a positive whole number of seconds (timeout: 3600)", n)
		}
		d.Timeout = time.Duration(secs) * time.Second
	}
	return nil
}

// scalarString renders a YAML scalar as the string the job gets.
func scalarString(at string, v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case json.Number:
		return s.String(), nil
	case bool:
		return strconv.FormatBool(s), nil
	default:
		return "", fmt.Errorf("%s: must be a single value, not a %s", at, kindOf(v))
	}
}

// stringMap reads a mapping of scalars; nullOK lets a null value be "".
func stringMap(at string, v any, nullOK bool) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: must be a mapping of names to values, not a %s", at, kindOf(v))
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		if x == nil {
			if !nullOK {
				return nil, fmt.Errorf("%s.%s: no value; write %s: \"\" for an empty one", at, k, k)
			}
			out[k] = ""
			continue
		}
		s, err := scalarString(at+"."+k, x)
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// applySet applies one --set key=value (dotted key, the value read as YAML).
func applySet(top map[string]any, s string) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("--set %q: must be key=value, e.g. --set display_name=run1 or --set inputs.lr=0.1", s)
	}
	js, err := yaml.YAMLToJSONStrict([]byte(val))
	if err != nil {
		return fmt.Errorf("--set %s: the value is not valid YAML: %w", key, err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		v = val
	}
	switch v.(type) {
	case map[string]any, []any:
		// Only flow syntax makes a mapping or list: "a: b" is a string.
		if t := strings.TrimSpace(val); !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
			v = val
		}
	case nil:
		if val == "" {
			v = ""
		}
	}
	parts := strings.Split(key, ".")
	m := top
	for i, p := range parts[:len(parts)-1] {
		if p == "" {
			return fmt.Errorf("--set %s: empty part in the key", key)
		}
		next, ok := m[p].(map[string]any)
		if !ok {
			if m[p] != nil {
				return fmt.Errorf("--set %s: %s is not a mapping", key, strings.Join(parts[:i+1], "."))
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := parts[len(parts)-1]
	if last == "" {
		return fmt.Errorf("--set %s: empty part in the key", key)
	}
	m[last] = v
	return nil
}
