package api

import (
	"net/http"
	"time"

	"github.com/computehub/chub"
)

// jobResource is a job in Azure's shape (JobBase with CommandJob
// properties), plus ComputeHub's read-only extensions.
type jobResource struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	SystemData systemData    `json:"systemData"`
	Properties jobProperties `json:"properties"`
}

type jobProperties struct {
	JobType              string                   `json:"jobType"`
	Command              string                   `json:"command"`
	ComputeID            string                   `json:"computeId"`
	CodeID               *string                  `json:"codeId"`
	EnvironmentID        *string                  `json:"environmentId"`
	EnvironmentVariables map[string]string        `json:"environmentVariables"`
	Inputs               map[string]jobInputJSON  `json:"inputs"`
	Outputs              map[string]jobOutputJSON `json:"outputs"`
	Limits               jobLimitsJSON            `json:"limits"`
	DisplayName          string                   `json:"displayName"`
	ExperimentName       string                   `json:"experimentName"`
	Description          *string                  `json:"description"`
	Tags                 map[string]string        `json:"tags"`
	Properties           map[string]string        `json:"properties"`
	Status               chub.JobStatus           `json:"status"`
	IsArchived           bool                     `json:"isArchived"`
	Services             map[string]*jobService   `json:"services"`
	Parameters           map[string]any           `json:"parameters"`
	Distribution         any                      `json:"distribution"`
	Resources            map[string]any           `json:"resources"`
	Identity             any                      `json:"identity"`
	QueueSettings        any                      `json:"queueSettings"`
	ComponentID          *string                  `json:"componentId"`
	NotificationSetting  any                      `json:"notificationSetting"`
	StatusMessage        string                   `json:"statusMessage"`
	ExitCode             *int                     `json:"exitCode"`
	Error                *chub.ErrorDetail        `json:"error"`
	StartTime            *time.Time               `json:"startTime"`
	EndTime              *time.Time               `json:"endTime"`
	QueuePosition        *int                     `json:"queuePosition"`
	Artifacts            *chub.JobArtifacts       `json:"artifacts"`
}

type jobInputJSON struct {
	JobInputType string  `json:"jobInputType"`
	Value        string  `json:"value"`
	Description  *string `json:"description"`
}

type jobOutputJSON struct {
	JobOutputType string  `json:"jobOutputType"`
	Mode          string  `json:"mode"`
	URI           *string `json:"uri"`
	Description   *string `json:"description"`
}

type jobLimitsJSON struct {
	JobLimitsType string  `json:"jobLimitsType"`
	Timeout       *string `json:"timeout"`
}

type jobService struct {
	JobServiceType string            `json:"jobServiceType"`
	Endpoint       string            `json:"endpoint"`
	Status         *string           `json:"status"`
	ErrorMessage   *string           `json:"errorMessage"`
	Port           *int              `json:"port"`
	Properties     map[string]string `json:"properties"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func emptyIfNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// jobJSON renders a job; pos holds the queue positions of waiting jobs.
func (s *Server) jobJSON(r *http.Request, j *chub.Job, pos map[string]int) jobResource {
	sp := j.Spec
	inputs := map[string]jobInputJSON{}
	for k, in := range sp.Inputs {
		inputs[k] = jobInputJSON{JobInputType: "literal", Value: in.Value, Description: optString(in.Description)}
	}
	outputs := map[string]jobOutputJSON{}
	for k, o := range sp.Outputs {
		outputs[k] = jobOutputJSON{JobOutputType: "uri_folder", Mode: "ReadWriteMount", Description: optString(o.Description)}
	}
	limits := jobLimitsJSON{JobLimitsType: "Command"}
	if sp.Timeout > 0 {
		t := chub.FormatISODuration(sp.Timeout)
		limits.Timeout = &t
	}
	display := sp.DisplayName
	if display == "" {
		display = j.Name
	}
	props := jobProperties{
		JobType: "Command", Command: sp.Command, ComputeID: sp.ComputeID,
		CodeID: optString(sp.CodeID), EnvironmentID: optString(sp.EnvironmentID),
		EnvironmentVariables: emptyIfNil(sp.EnvironmentVariables), Inputs: inputs, Outputs: outputs, Limits: limits,
		DisplayName: display, ExperimentName: sp.ExperimentName, Description: optString(sp.Description),
		Tags: emptyIfNil(sp.Tags), Properties: emptyIfNil(sp.Properties),
		Status: j.Status, IsArchived: j.Archived,
		Services: map[string]*jobService{
			"Studio":   {JobServiceType: "Studio", Endpoint: studioJobURL(baseURL(r), j)},
			"Tracking": nil,
		},
		Parameters: map[string]any{}, Resources: map[string]any{"instanceCount": 1},
		StatusMessage: j.Message, ExitCode: j.ExitCode, Error: j.Error, StartTime: j.StartTime, EndTime: j.EndTime,
	}
	if props.ExperimentName == "" {
		props.ExperimentName = "Default"
	}
	if n, ok := pos[j.ID]; ok {
		props.QueuePosition = &n
	}
	if j.Artifacts.Kept {
		a := j.Artifacts
		props.Artifacts = &a
	}
	return jobResource{
		ID: j.ResourceID(), Name: j.Name, Type: jobResourceType,
		SystemData: sysData(j.CreatedBy, j.CreatedAt, j.ModifiedBy, j.ModifiedAt),
		Properties: props,
	}
}
