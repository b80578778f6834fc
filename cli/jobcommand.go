package cli

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// shellSafe matches a word bash reads as itself.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellBinding matches a ${{inputs.x}} / ${{outputs.x}} binding, which is
// left bare so the server's substitution reads as the user wrote it.
var shellBinding = regexp.MustCompile(`\$\{\{\s*(inputs|outputs)\.[a-zA-Z_][a-zA-Z0-9_]*\s*\}\}`)

// shellQuote quotes a word for bash when it needs it.
func shellQuote(w string) string {
	if w == "" {
		return "''"
	}
	if shellSafe.MatchString(shellBinding.ReplaceAllString(w, "x")) {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'"'"'`) + "'"
}

// shellJoin joins the words after -- into one bash command line that runs
// exactly those words.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

// isoDuration writes d as ISO 8601 in whole seconds (PT600S), rounding up.
func isoDuration(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("PT%dS", secs)
}

var jobAdjectives = []string{"amber", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "eager", "fancy",
	"gentle", "happy", "honest", "jolly", "keen", "kind", "lively", "lucky", "mellow", "modest", "neat", "nice",
	"patient", "plucky", "polite", "quick", "quiet", "shy", "sleepy", "sunny", "swift", "tidy", "upbeat", "witty", "zen"}

var jobNouns = []string{"apple", "basket", "beach", "boat", "brush", "candle", "cloud", "comet", "cup", "feather",
	"garden", "grape", "island", "kettle", "kite", "lamp", "leaf", "lemon", "melon", "moon", "mountain", "night",
	"ocean", "pasta", "pear", "pencil", "pepper", "plum", "river", "rocket", "seed", "snail", "spoon", "tiger", "tomato", "yak"}

// newJobName makes a friendly random job name like az ml's:
// adjective_noun_8 hex digits (matches chub.JobNamePattern).
func newJobName(rnd io.Reader) (string, error) {
	var b [6]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("make a job name: %w", err)
	}
	return jobAdjectives[int(b[0])%len(jobAdjectives)] + "_" + jobNouns[int(b[1])%len(jobNouns)] + "_" + hex.EncodeToString(b[2:]), nil
}

// randomJobName is newJobName over crypto/rand.
func randomJobName() (string, error) { return newJobName(rand.Reader) }

// digestHex is the hex SHA-256 of s.
func digestHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
