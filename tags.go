package chub

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Azure's limits on a resource's tags, and ComputeHub's on a description.
const (
	MaxTags           = 50
	MaxTagNameLen     = 512
	MaxTagValueLen    = 256
	MaxDescriptionLen = 5000
)

// tagNameForbidden are the characters Azure refuses in tag names.
const tagNameForbidden = "<>%&\\?/"

// ValidateTags checks a resource's tags against Azure's limits: at most 50,
// names of 1 to 512 characters without < > % & \ ? /, values of at most 256
// characters. The one check for computes and workspaces.
func ValidateTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return Invalid("InvalidTag", "tags", "a resource can have at most %d tags, got %d; remove some", MaxTags, len(tags))
	}
	names := make([]string, 0, len(tags))
	for k := range tags {
		names = append(names, k)
	}
	sort.Strings(names) // the same error for the same request
	for _, k := range names {
		switch n := utf8.RuneCountInString(k); {
		case strings.TrimSpace(k) == "":
			return Invalid("InvalidTag", "tags", "a tag name cannot be empty")
		case n > MaxTagNameLen:
			return Invalid("InvalidTag", "tags", "the tag name %q... is %d characters long; the limit is %d", k[:32], n, MaxTagNameLen)
		case strings.ContainsAny(k, tagNameForbidden):
			return Invalid("InvalidTag", "tags", "the tag name %q contains one of %s, which tag names cannot contain", k, tagNameForbidden)
		}
		if n := utf8.RuneCountInString(tags[k]); n > MaxTagValueLen {
			return Invalid("InvalidTag", "tags."+k, "the value of tag %q is %d characters long; the limit is %d", k, n, MaxTagValueLen)
		}
	}
	return nil
}

// ValidateDescription checks a resource's description (at most 5000
// characters); target names the field.
func ValidateDescription(d, target string) error {
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLen {
		return Invalid("InvalidDescription", target, "the description is %d characters long; the limit is %d", n, MaxDescriptionLen)
	}
	return nil
}
