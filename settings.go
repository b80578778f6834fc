package chub

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// InstanceSettings are the user-settable ComputeInstanceProperties, in
// Azure's JSON shape. They are validated once, stored, and returned as given.
type InstanceSettings struct {
	VMSize                           string                           `json:"vmSize"`
	Subnet                           *ResourceRef                     `json:"subnet,omitempty"`
	ApplicationSharingPolicy         string                           `json:"applicationSharingPolicy,omitempty"`
	SSHSettings                      *SSHSettings                     `json:"sshSettings,omitempty"`
	PersonalComputeInstanceSettings  *PersonalComputeInstanceSettings `json:"personalComputeInstanceSettings,omitempty"`
	SetupScripts                     *SetupScripts                    `json:"setupScripts,omitempty"`
	Schedules                        *Schedules                       `json:"schedules,omitempty"`
	IdleTimeBeforeShutdown           string                           `json:"idleTimeBeforeShutdown,omitempty"`
	CustomServices                   []CustomService                  `json:"customServices,omitempty"`
	EnableRootAccess                 *bool                            `json:"enableRootAccess,omitempty"`
	EnableSSO                        *bool                            `json:"enableSSO,omitempty"`
	EnableNodePublicIP               *bool                            `json:"enableNodePublicIp,omitempty"`
	ReleaseQuotaOnStop               *bool                            `json:"releaseQuotaOnStop,omitempty"`
	ComputeInstanceAuthorizationType string                           `json:"computeInstanceAuthorizationType,omitempty"`
	// Image is a ComputeHub extension: the image the instance's disk starts
	// from ("" or "host" for the default). Azure clients never send it.
	Image string `json:"image,omitempty"`
	// OutboundNetworkAccess is a ComputeHub extension: "Enabled" (the
	// default) gives the instance outbound network through user-mode
	// networking; "Disabled" leaves it loopback only.
	OutboundNetworkAccess string `json:"outboundNetworkAccess,omitempty"`
	// MaxConcurrentJobs is a ComputeHub extension: how many of the
	// instance's jobs run at once, 1 up to the size's vCPUs; 0 means one
	// per vCPU.
	MaxConcurrentJobs int `json:"maxConcurrentJobs,omitempty"`
}

// ResourceRef is an ARM reference {"id": "..."}.
type ResourceRef struct {
	ID string `json:"id"`
}

// SSHSettings are the instance's SSH settings; AdminUserName and SSHPort are read-only.
type SSHSettings struct {
	SSHPublicAccess string `json:"sshPublicAccess,omitempty"`
	AdminUserName   string `json:"adminUserName,omitempty"`
	SSHPort         int    `json:"sshPort,omitempty"`
	AdminPublicKey  string `json:"adminPublicKey,omitempty"`
}

// PersonalComputeInstanceSettings name the user an instance was created for.
type PersonalComputeInstanceSettings struct {
	AssignedUser *AssignedUser `json:"assignedUser,omitempty"`
}

// AssignedUser is the user an instance was created on behalf of.
type AssignedUser struct {
	ObjectID string `json:"objectId"`
	TenantID string `json:"tenantId"`
}

// SetupScripts hold the creation and startup scripts.
type SetupScripts struct {
	Scripts *ScriptsToExecute `json:"scripts,omitempty"`
}

// ScriptsToExecute are the two scripts Azure knows.
type ScriptsToExecute struct {
	CreationScript *ScriptReference `json:"creationScript,omitempty"`
	StartupScript  *ScriptReference `json:"startupScript,omitempty"`
}

// ScriptReference is one setup script.
type ScriptReference struct {
	ScriptSource    string `json:"scriptSource,omitempty"`
	ScriptData      string `json:"scriptData,omitempty"`
	ScriptArguments string `json:"scriptArguments,omitempty"`
	Timeout         string `json:"timeout,omitempty"`
}

// Schedules hold the start/stop schedules.
type Schedules struct {
	ComputeStartStop []ComputeStartStopSchedule `json:"computeStartStop,omitempty"`
}

// ComputeStartStopSchedule is one start or stop schedule.
type ComputeStartStopSchedule struct {
	ID                 string      `json:"id,omitempty"`
	ProvisioningStatus string      `json:"provisioningStatus,omitempty"`
	Action             string      `json:"action,omitempty"`
	Status             string      `json:"status,omitempty"`
	TriggerType        string      `json:"triggerType,omitempty"`
	Cron               *Cron       `json:"cron,omitempty"`
	Recurrence         *Recurrence `json:"recurrence,omitempty"`
}

// Cron is a cron trigger.
type Cron struct {
	StartTime  string `json:"startTime,omitempty"`
	TimeZone   string `json:"timeZone,omitempty"`
	Expression string `json:"expression,omitempty"`
}

// Recurrence is a recurrence trigger.
type Recurrence struct {
	Frequency string              `json:"frequency,omitempty"`
	Interval  int                 `json:"interval,omitempty"`
	StartTime string              `json:"startTime,omitempty"`
	TimeZone  string              `json:"timeZone,omitempty"`
	Schedule  *RecurrenceSchedule `json:"schedule,omitempty"`
}

// RecurrenceSchedule lists when a recurrence fires.
type RecurrenceSchedule struct {
	Hours     []int    `json:"hours,omitempty"`
	Minutes   []int    `json:"minutes,omitempty"`
	WeekDays  []string `json:"weekDays,omitempty"`
	MonthDays []int    `json:"monthDays,omitempty"`
}

// CustomService is an extra application run in the instance.
type CustomService struct {
	Name                 string                      `json:"name,omitempty"`
	Image                *CustomServiceImage         `json:"image,omitempty"`
	EnvironmentVariables map[string]CustomServiceEnv `json:"environmentVariables,omitempty"`
	Docker               *CustomServiceDocker        `json:"docker,omitempty"`
	Endpoints            []CustomServiceEndpoint     `json:"endpoints,omitempty"`
	Volumes              []CustomServiceVolume       `json:"volumes,omitempty"`
	Kernel               map[string]any              `json:"kernel,omitempty"`
	AdditionalProperties map[string]any              `json:"additionalProperties,omitempty"`
}

// CustomServiceImage is a custom service's image.
type CustomServiceImage struct {
	Type      string `json:"type,omitempty"`
	Reference string `json:"reference,omitempty"`
}

// CustomServiceEnv is one environment variable of a custom service.
type CustomServiceEnv struct {
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

// CustomServiceDocker holds Docker settings of a custom service.
type CustomServiceDocker struct {
	Privileged *bool `json:"privileged,omitempty"`
}

// CustomServiceEndpoint is one published port of a custom service.
type CustomServiceEndpoint struct {
	Protocol  string `json:"protocol,omitempty"`
	Name      string `json:"name,omitempty"`
	Target    int    `json:"target,omitempty"`
	Published *int   `json:"published,omitempty"`
	HostIP    string `json:"hostIp,omitempty"`
}

// CustomServiceVolume is one volume of a custom service.
type CustomServiceVolume struct {
	Type     string `json:"type,omitempty"`
	ReadOnly *bool  `json:"readOnly,omitempty"`
	Source   string `json:"source,omitempty"`
	Target   string `json:"target,omitempty"`
}

const settingsTarget = "properties.properties."

// oneOf checks that v is empty or one of allowed (case-insensitively) and
// returns the canonical spelling.
func oneOf(v, target string, allowed ...string) (string, error) {
	if v == "" {
		return v, nil
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", Invalid("InvalidEnumValue", target, "%q is not a valid value for %s; use one of: %s", v, target, strings.Join(allowed, ", "))
}

var imageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Normalize validates the settings, canonicalizes enum spellings and fills
// defaults. Every error names the offending field in Target.
func (s *InstanceSettings) Normalize() error {
	var err error
	t := settingsTarget
	if strings.TrimSpace(s.VMSize) == "" {
		return Invalid("MissingVmSize", t+"vmSize", "vmSize is required: name a VM size such as STANDARD_DS3_V2 (list them with 'chub vmsize list')")
	}
	if s.Image != "" && !imageNameRE.MatchString(s.Image) {
		return Invalid("InvalidImageName", t+"image", "image %q is not an image name (lower-case letters, digits, '.', '_', '-')", s.Image)
	}
	if s.ApplicationSharingPolicy, err = oneOf(s.ApplicationSharingPolicy, t+"applicationSharingPolicy", "Personal", "Shared"); err != nil {
		return err
	}
	if s.ApplicationSharingPolicy == "" {
		s.ApplicationSharingPolicy = "Shared"
	}
	if s.OutboundNetworkAccess, err = oneOf(s.OutboundNetworkAccess, t+"outboundNetworkAccess", "Enabled", "Disabled"); err != nil {
		return err
	}
	if s.OutboundNetworkAccess == "" {
		s.OutboundNetworkAccess = "Enabled"
	}
	if s.ComputeInstanceAuthorizationType, err = oneOf(s.ComputeInstanceAuthorizationType, t+"computeInstanceAuthorizationType", "personal"); err != nil {
		return err
	}
	if s.Subnet != nil && s.Subnet.ID != "" && !strings.HasPrefix(strings.ToLower(s.Subnet.ID), "/subscriptions/") {
		return Invalid("InvalidSubnet", t+"subnet.id", "subnet.id must be an ARM id starting with /subscriptions/, got %q", s.Subnet.ID)
	}
	if err := s.normalizeSSH(); err != nil {
		return err
	}
	if p := s.PersonalComputeInstanceSettings; p != nil && p.AssignedUser != nil {
		if p.AssignedUser.ObjectID == "" {
			return Invalid("InvalidAssignedUser", t+"personalComputeInstanceSettings.assignedUser.objectId", "assignedUser.objectId is required when assigning an instance to a user")
		}
		if p.AssignedUser.TenantID == "" {
			return Invalid("InvalidAssignedUser", t+"personalComputeInstanceSettings.assignedUser.tenantId", "assignedUser.tenantId is required when assigning an instance to a user")
		}
	}
	if err := s.SetupScripts.validate(t + "setupScripts.scripts."); err != nil {
		return err
	}
	if err := s.Schedules.validate(t + "schedules.computeStartStop"); err != nil {
		return err
	}
	if s.MaxConcurrentJobs < 0 {
		return Invalid("InvalidMaxConcurrentJobs", t+"maxConcurrentJobs",
			"maxConcurrentJobs must be 1 up to the size's vCPUs (or 0 for one job per vCPU), got %d", s.MaxConcurrentJobs)
	}
	if s.IdleTimeBeforeShutdown != "" {
		d, err := ParseISODuration(s.IdleTimeBeforeShutdown)
		if err != nil {
			return Invalid("InvalidIdleTime", t+"idleTimeBeforeShutdown", "%v", err)
		}
		if d < 15*time.Minute || d > 72*time.Hour {
			return Invalid("InvalidIdleTime", t+"idleTimeBeforeShutdown", "idleTimeBeforeShutdown must be between 15 minutes (PT15M) and 3 days (P3D), got %s", s.IdleTimeBeforeShutdown)
		}
	}
	for i := range s.CustomServices {
		cs := &s.CustomServices[i]
		ct := fmt.Sprintf("%scustomServices[%d]", t, i)
		if cs.Name == "" {
			return Invalid("InvalidCustomService", ct+".name", "a custom service needs a name")
		}
		for j, ep := range cs.Endpoints {
			et := fmt.Sprintf("%s.endpoints[%d]", ct, j)
			if ep.Protocol, err = oneOf(ep.Protocol, et+".protocol", "tcp", "udp", "http"); err != nil {
				return err
			}
			cs.Endpoints[j].Protocol = ep.Protocol
			if ep.Target < 1 || ep.Target > 65535 {
				return Invalid("InvalidCustomService", et+".target", "endpoint target port must be between 1 and 65535, got %d", ep.Target)
			}
		}
	}
	return nil
}

// CheckMaxConcurrentJobs checks a maxConcurrentJobs setting against the
// instance's size: 0 (one job per vCPU) or 1 up to the size's vCPUs.
func CheckMaxConcurrentJobs(n int, size VMSize) error {
	if n < 0 || n > size.VCPUs {
		return Invalid("InvalidMaxConcurrentJobs", settingsTarget+"maxConcurrentJobs",
			"maxConcurrentJobs must be 1 up to %d, the vCPUs of size %s (or 0 for one job per vCPU), got %d; jobs beyond it wait Queued", size.VCPUs, size.Name, n)
	}
	return nil
}

func (s *InstanceSettings) normalizeSSH() error {
	t := settingsTarget + "sshSettings."
	if s.SSHSettings == nil {
		s.SSHSettings = &SSHSettings{}
	}
	ssh := s.SSHSettings
	var err error
	if ssh.SSHPublicAccess, err = oneOf(ssh.SSHPublicAccess, t+"sshPublicAccess", "Enabled", "Disabled"); err != nil {
		return err
	}
	if ssh.SSHPublicAccess == "" {
		ssh.SSHPublicAccess = "Disabled"
	}
	ssh.AdminUserName = "azureuser"
	ssh.SSHPort = 0
	if ssh.SSHPublicAccess == "Enabled" {
		if strings.TrimSpace(ssh.AdminPublicKey) == "" {
			return Invalid("MissingSshPublicKey", t+"adminPublicKey", "sshPublicAccess is Enabled but adminPublicKey is empty: give an OpenSSH public key such as the contents of ~/.ssh/id_ed25519.pub")
		}
		if !looksLikeSSHKey(ssh.AdminPublicKey) {
			return Invalid("InvalidSshPublicKey", t+"adminPublicKey", "adminPublicKey is not an OpenSSH public key (expected 'ssh-ed25519 AAAA...', 'ssh-rsa AAAA...' or 'ecdsa-sha2-... AAAA...')")
		}
	}
	return nil
}

// looksLikeSSHKey checks the OpenSSH authorized_keys shape: a known key
// type followed by base64 whose embedded type matches.
func looksLikeSSHKey(k string) bool {
	f := strings.Fields(k)
	if len(f) < 2 {
		return false
	}
	switch f[0] {
	case "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com":
	default:
		return false
	}
	b, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(b) < 4 {
		return false
	}
	n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	return n == len(f[0]) && len(b) >= 4+n && string(b[4:4+n]) == f[0]
}

func (s *SetupScripts) validate(t string) error {
	if s == nil || s.Scripts == nil {
		return nil
	}
	for name, r := range map[string]*ScriptReference{"creationScript": s.Scripts.CreationScript, "startupScript": s.Scripts.StartupScript} {
		if r == nil {
			continue
		}
		var err error
		if r.ScriptSource, err = oneOf(r.ScriptSource, t+name+".scriptSource", "inline", "workspaceStorage"); err != nil {
			return err
		}
		if r.ScriptSource == "inline" && r.ScriptData != "" {
			if _, err := base64.StdEncoding.DecodeString(r.ScriptData); err != nil {
				return Invalid("InvalidScriptData", t+name+".scriptData", "an inline script's scriptData must be base64: %v", err)
			}
		}
		if r.Timeout != "" {
			if _, err := time.ParseDuration(r.Timeout); err != nil {
				if _, err2 := ParseISODuration(r.Timeout); err2 != nil {
					return Invalid("InvalidScriptTimeout", t+name+".timeout", "timeout %q is not a duration such as 5m or PT5M", r.Timeout)
				}
			}
		}
	}
	return nil
}

func (s *Schedules) validate(t string) error {
	if s == nil {
		return nil
	}
	for i := range s.ComputeStartStop {
		c := &s.ComputeStartStop[i]
		it := fmt.Sprintf("%s[%d].", t, i)
		var err error
		if c.Action, err = oneOf(c.Action, it+"action", "Start", "Stop"); err != nil {
			return err
		}
		if c.Action == "" {
			return Invalid("InvalidSchedule", it+"action", "a schedule needs an action: Start or Stop")
		}
		if c.Status, err = oneOf(c.Status, it+"status", "Enabled", "Disabled"); err != nil {
			return err
		}
		if c.TriggerType, err = oneOf(c.TriggerType, it+"triggerType", "Cron", "Recurrence"); err != nil {
			return err
		}
		switch c.TriggerType {
		case "Cron":
			if c.Cron == nil {
				return Invalid("InvalidSchedule", it+"cron.expression", "a Cron schedule needs a five-field cron expression such as \"0 18 * * 1-5\"")
			}
			if _, err := ParseCron(c.Cron.Expression); err != nil {
				return Invalid("InvalidSchedule", it+"cron.expression", "%v", err)
			}
		case "Recurrence":
			if c.Recurrence == nil {
				return Invalid("InvalidSchedule", it+"recurrence", "a Recurrence schedule needs a recurrence")
			}
			if c.Recurrence.Frequency, err = oneOf(c.Recurrence.Frequency, it+"recurrence.frequency", "Minute", "Hour", "Day", "Week", "Month"); err != nil {
				return err
			}
			if r := c.Recurrence.Schedule; r != nil {
				for _, f := range []struct {
					name   string
					vals   []int
					lo, hi int
				}{{"hours", r.Hours, 0, 23}, {"minutes", r.Minutes, 0, 59}, {"monthDays", r.MonthDays, 1, 31}} {
					for _, v := range f.vals {
						if v < f.lo || v > f.hi {
							return Invalid("InvalidSchedule", it+"recurrence.schedule."+f.name, "recurrence %s must be %d-%d, got %d", f.name, f.lo, f.hi, v)
						}
					}
				}
				for j, d := range r.WeekDays {
					if d == "" {
						return Invalid("InvalidSchedule", it+"recurrence.schedule.weekDays", "a week day cannot be empty; use Monday to Sunday")
					}
					if r.WeekDays[j], err = oneOf(d, it+"recurrence.schedule.weekDays", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"); err != nil {
						return err
					}
				}
			}
			if c.Recurrence.Interval < 1 {
				return Invalid("InvalidSchedule", it+"recurrence.interval", "a recurrence interval must be 1 or more (every N %ss), got %d", strings.ToLower(c.Recurrence.Frequency), c.Recurrence.Interval)
			}
		}
	}
	return nil
}
