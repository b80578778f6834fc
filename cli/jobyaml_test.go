package cli

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub/client"
)

const baseYAML = "command: echo hi\ncompute: azureml:ci1\n"

func TestParseJobYAMLFields(t *testing.T) {
	base := "/home/u/proj"
	full := `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
name: run_1
display_name: My run
experiment_name: exp
description: trains
tags: {team: ml, epochs: 3, empty: }
properties: {k: v}
command: python train.py --lr ${{inputs.lr}} --out ${{outputs.model}}
code: ./src
environment: azureml:py:2
compute: azureml:ci1
inputs:
  lr: 0.01
  epochs: 10
  flag: true
  word: hello
  lit: {type: literal, value: 7}
  typed: {type: integer, value: 3, description: count}
outputs:
  model: {type: uri_folder}
  logs: {}
  up: {mode: upload, description: d}
  bare:
environment_variables: {A: "1", B: two, C: 3}
limits: {timeout: 600}
`
	d, err := parseJobYAML([]byte(full), base, nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	want := &jobDraft{
		Name: "run_1", DisplayName: "My run", ExperimentName: "exp", Description: "trains",
		Tags:       map[string]string{"team": "ml", "epochs": "3", "empty": ""},
		Properties: map[string]string{"k": "v"},
		Command:    "python train.py --lr ${{inputs.lr}} --out ${{outputs.model}}",
		CodePath:   filepath.Join(base, "src"), Environment: "azureml:py:2", Compute: "azureml:ci1",
		Inputs: map[string]string{"lr": "0.01", "epochs": "10", "flag": "true", "word": "hello", "lit": "7", "typed": "3"},
		Outputs: map[string]client.JobOutput{
			"model": {JobOutputType: "uri_folder"}, "logs": {JobOutputType: "uri_folder"},
			"up": {JobOutputType: "uri_folder", Mode: "Upload", Description: "d"}, "bare": {JobOutputType: "uri_folder"},
		},
		Env:     map[string]string{"A": "1", "B": "two", "C": "3"},
		Timeout: 600 * time.Second,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got %+v\nwant %+v", d, want)
	}
}

func TestParseJobYAMLForms(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		sets []string
		want func(d *jobDraft) any
		exp  any
	}{
		{"bare compute", "command: x\ncompute: ci1\n", nil, func(d *jobDraft) any { return d.Compute }, "ci1"},
		{"absolute code", baseYAML + "code: /abs/src\n", nil, func(d *jobDraft) any { return d.CodePath }, "/abs/src"},
		{"code dot", baseYAML + "code: .\n", nil, func(d *jobDraft) any { return d.CodePath }, "/base"},
		{"code version", baseYAML + "code: azureml:c:1\n", nil, func(d *jobDraft) any { return d.CodeRef }, "azureml:c:1"},
		{"env latest", baseYAML + "environment: azureml:py@latest\n", nil, func(d *jobDraft) any { return d.Environment }, "azureml:py@latest"},
		{"env inline", baseYAML + "environment: {image: host}\n", nil, func(d *jobDraft) any { return [2]any{d.EnvironmentImage, d.HasImage} }, [2]any{"host", true}},
		{"env inline linux", baseYAML + "environment: {image: img, os_type: linux}\n", nil, func(d *jobDraft) any { return d.EnvironmentImage }, "img"},
		{"null fields are absent", baseYAML + "description:\ntags:\nresources:\nidentity: null\n", nil, func(d *jobDraft) any { return d.Tags == nil }, true},
		{"type missing is command", baseYAML, nil, func(d *jobDraft) any { return d.Command }, "echo hi"},
		{"type Command", "type: Command\n" + baseYAML, nil, func(d *jobDraft) any { return d.Command }, "echo hi"},
		{"multi-line command", "command: |\n  echo a\n  echo b\ncompute: ci1\n", nil, func(d *jobDraft) any { return d.Command }, "echo a\necho b\n"},
		{"rw_mount", baseYAML + "outputs: {m: {mode: rw_mount}}\n", nil, func(d *jobDraft) any { return d.Outputs["m"].Mode }, "ReadWriteMount"},
		{"set display name", baseYAML, []string{"display_name=run 2"}, func(d *jobDraft) any { return d.DisplayName }, "run 2"},
		{"set input number", baseYAML + "inputs: {lr: 0.1}\n", []string{"inputs.lr=0.2"}, func(d *jobDraft) any { return d.Inputs["lr"] }, "0.2"},
		{"set new nested", baseYAML, []string{"environment_variables.K=V"}, func(d *jobDraft) any { return d.Env["K"] }, "V"},
		{"set compute", "command: x\n", []string{"compute=azureml:ci2"}, func(d *jobDraft) any { return d.Compute }, "azureml:ci2"},
		{"set value with colon space", baseYAML, []string{"command=echo a: b"}, func(d *jobDraft) any { return d.Command }, "echo a: b"},
		{"set empty tag", baseYAML, []string{"tags.x="}, func(d *jobDraft) any { return d.Tags["x"] }, ""},
		{"set flow mapping", baseYAML, []string{"limits={timeout: 5}"}, func(d *jobDraft) any { return d.Timeout }, 5 * time.Second},
		{"set name", baseYAML, []string{"name=abc"}, func(d *jobDraft) any { return d.Name }, "abc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := parseJobYAML([]byte(c.yaml), "/base", c.sets)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := c.want(d); !reflect.DeepEqual(got, c.exp) {
				t.Errorf("got %#v; want %#v", got, c.exp)
			}
		})
	}
}

func TestParseJobYAMLRefusals(t *testing.T) {
	cases := []struct {
		name, yaml string
		sets       []string
		want       string // in the error
	}{
		{"not yaml", "command: [", nil, "not valid YAML"},
		{"duplicate key", "command: a\ncommand: b\ncompute: c\n", nil, "not valid YAML"},
		{"list document", "- a\n", nil, "must be a mapping"},
		{"scalar document", "hello\n", nil, "must be a mapping"},
		{"empty", "", nil, "command: missing"},
		{"no command", "compute: ci1\n", nil, "command: missing"},
		{"blank command", "command: '  '\ncompute: ci1\n", nil, "command: missing"},
		{"no compute", "command: x\n", nil, "compute: missing"},
		{"empty compute", "command: x\ncompute: ''\n", nil, "compute: empty"},
		{"pipeline", "type: pipeline\n" + baseYAML, nil, "type: pipeline jobs are not supported"},
		{"sweep", "type: sweep\n" + baseYAML, nil, "type: sweep"},
		{"resources", baseYAML + "resources: {instance_count: 2}\n", nil, "resources: not supported"},
		{"distribution", baseYAML + "distribution: {type: pytorch}\n", nil, "distribution: not supported"},
		{"services", baseYAML + "services: {my_ssh: {type: ssh}}\n", nil, "services: not supported"},
		{"identity", baseYAML + "identity: {type: user_identity}\n", nil, "identity: not supported"},
		{"queue_settings", baseYAML + "queue_settings: {job_tier: spot}\n", nil, "queue_settings: not supported"},
		{"notification", baseYAML + "notification_setting: {emails: [a]}\n", nil, "notification_setting: not supported"},
		{"status read-only", baseYAML + "status: Completed\n", nil, "status: not supported: it is read-only"},
		{"unknown field", baseYAML + "colour: red\n", nil, "colour: unknown field"},
		{"command list", "command: [a, b]\ncompute: c\n", nil, "command: must be a single value, not a list"},
		{"code url", baseYAML + "code: https://x/y\n", nil, "code: https://x/y: only a local folder"},
		{"code git", baseYAML + "code: git+https://x\n", nil, "only a local folder"},
		{"code datastore", baseYAML + "code: azureml://datastores/x\n", nil, "only a local folder"},
		{"code empty", baseYAML + "code: ''\n", nil, "code: empty"},
		{"env bare", baseYAML + "environment: py:1\n", nil, "environment: \"py:1\": give a registered environment"},
		{"env conda", baseYAML + "environment: {image: x, conda_file: c.yml}\n", nil, "environment.conda_file: not supported"},
		{"env build", baseYAML + "environment: {build: {path: .}}\n", nil, "environment.build: not supported"},
		{"env unknown", baseYAML + "environment: {img: x}\n", nil, "environment.img: unknown field"},
		{"env no image", baseYAML + "environment: {os_type: linux}\n", nil, "needs image"},
		{"env windows", baseYAML + "environment: {image: x, os_type: windows}\n", nil, "os_type: windows is not supported"},
		{"env list", baseYAML + "environment: [a]\n", nil, "environment: must be"},
		{"input uri_folder", baseYAML + "inputs: {data: {type: uri_folder, path: ./d}}\n", nil, "inputs.data"},
		{"input uri_file type", baseYAML + "inputs: {data: {type: uri_file}}\n", nil, "inputs.data.type: uri_file inputs are not supported"},
		{"input mltable", baseYAML + "inputs: {t: {type: mltable}}\n", nil, "mltable inputs are not supported"},
		{"input path", baseYAML + "inputs: {data: {path: ./d}}\n", nil, "inputs.data.path: not supported"},
		{"input no value", baseYAML + "inputs: {x: {type: literal}}\n", nil, "inputs.x: no value"},
		{"input null", baseYAML + "inputs: {x: }\n", nil, "inputs.x: no value"},
		{"input list", baseYAML + "inputs: {x: [1, 2]}\n", nil, "inputs.x: must be a single value"},
		{"input unknown key", baseYAML + "inputs: {x: {value: 1, colour: r}}\n", nil, "inputs.x.colour: unknown field"},
		{"input bad name", baseYAML + "inputs: {1x: 1}\n", nil, "inputs.1x: an input name"},
		{"inputs list", baseYAML + "inputs: [a]\n", nil, "inputs: must be a mapping"},
		{"output uri_file", baseYAML + "outputs: {m: {type: uri_file}}\n", nil, "outputs.m.type: uri_file outputs are not supported"},
		{"output mlflow", baseYAML + "outputs: {m: {type: mlflow_model}}\n", nil, "mlflow_model outputs are not supported"},
		{"output path", baseYAML + "outputs: {m: {path: azureml://datastores/x}}\n", nil, "outputs.m.path: not supported"},
		{"output mode ro", baseYAML + "outputs: {m: {mode: ro_mount}}\n", nil, "outputs.m.mode: ro_mount is not supported"},
		{"output scalar", baseYAML + "outputs: {m: x}\n", nil, "outputs.m: must be a mapping"},
		{"output unknown", baseYAML + "outputs: {m: {colour: r}}\n", nil, "outputs.m.colour: unknown field"},
		{"output bad name", baseYAML + "outputs: {m-1: {}}\n", nil, "outputs.m-1: an output name"},
		{"env var null", baseYAML + "environment_variables: {A: }\n", nil, "environment_variables.A: no value"},
		{"env var list", baseYAML + "environment_variables: {A: [1]}\n", nil, "environment_variables.A: must be a single value"},
		{"env vars list", baseYAML + "environment_variables: [A]\n", nil, "environment_variables: must be a mapping"},
		{"tags list", baseYAML + "tags: [a]\n", nil, "tags: must be a mapping"},
		{"limits string", baseYAML + "limits: {timeout: 1h}\n", nil, "limits.timeout: must be a number of seconds"},
		{"limits zero", baseYAML + "limits: {timeout: 0}\n", nil, "limits.timeout: 0 is not a positive"},
		{"limits fraction", baseYAML + "limits: {timeout: 1.5}\n", nil, "limits.timeout: 1.5 is not a positive"},
		{"limits huge", baseYAML + "limits: {timeout: 99999999999999}\n", nil, "is not a positive"},
		{"limits other", baseYAML + "limits: {max_trials: 3}\n", nil, "limits.max_trials: not supported"},
		{"limits scalar", baseYAML + "limits: 5\n", nil, "limits: must be a mapping"},
		{"set no equals", baseYAML, []string{"display_name"}, "--set \"display_name\": must be key=value"},
		{"set empty key part", baseYAML, []string{"inputs..x=1"}, "empty part"},
		{"set through scalar", baseYAML, []string{"command.x=1"}, "command is not a mapping"},
		{"set refused field", baseYAML, []string{"resources.instance_count=2"}, "resources: not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := parseJobYAML([]byte(c.yaml), "/base", c.sets)
			if err == nil {
				t.Fatalf("got %+v, nil error; want an error with %q", d, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got error %q; want it to contain %q", err, c.want)
			}
		})
	}
}

func TestDraftFromFlags(t *testing.T) {
	d, err := draftFromFlags("ci1", "", "", []string{"python", "train.py", "--lr", "${{inputs.lr}}", "a b"},
		[]string{"K=V", "E="}, []string{"lr=0.1"}, []string{"model"}, []string{"t=1", "solo"}, "10m")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Command, "python train.py --lr ${{inputs.lr}} 'a b'"; got != want {
		t.Errorf("command: got %q; want %q", got, want)
	}
	if got, want := d.Env, map[string]string{"K": "V", "E": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("env: got %v; want %v", got, want)
	}
	if got, want := d.Tags, map[string]string{"t": "1", "solo": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("tags: got %v; want %v", got, want)
	}
	if got, want := d.Timeout, 10*time.Minute; got != want {
		t.Errorf("timeout: got %v; want %v", got, want)
	}
	if _, ok := d.Outputs["model"]; !ok {
		t.Errorf("outputs: got %v; want model", d.Outputs)
	}
	for _, c := range []struct {
		name            string
		compute, cmd    string
		words, env, in  []string
		out             []string
		timeout, errHas string
	}{
		{name: "no compute", words: []string{"x"}, errHas: "--compute is required"},
		{name: "no command", compute: "ci", errHas: "no command"},
		{name: "both commands", compute: "ci", cmd: "a", words: []string{"b"}, errHas: "not both"},
		{name: "bad env", compute: "ci", words: []string{"x"}, env: []string{"NOEQ"}, errHas: "--env \"NOEQ\""},
		{name: "dup env", compute: "ci", words: []string{"x"}, env: []string{"A=1", "A=2"}, errHas: "twice"},
		{name: "bad input name", compute: "ci", words: []string{"x"}, in: []string{"a-b=1"}, errHas: "--input a-b"},
		{name: "bad output name", compute: "ci", words: []string{"x"}, out: []string{"a/b"}, errHas: "--output-name"},
		{name: "bad timeout", compute: "ci", words: []string{"x"}, timeout: "soon", errHas: "--timeout"},
		{name: "tiny timeout", compute: "ci", words: []string{"x"}, timeout: "10ms", errHas: "--timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := draftFromFlags(c.compute, "", c.cmd, c.words, c.env, c.in, c.out, nil, c.timeout)
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("got error %v; want one with %q", err, c.errHas)
			}
		})
	}
}
