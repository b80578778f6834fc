package chub

import (
	"errors"
	"fmt"
)

// Kind classifies an error; the API maps each kind to one HTTP status.
type Kind int

// The kinds of error the domain raises.
const (
	KindInternal        Kind = iota // a bug or an unexpected failure; logged
	KindInvalid                     // the request is malformed or breaks a rule (400)
	KindUnauthenticated             // no or bad credentials (401)
	KindForbidden                   // the caller may not do this (403)
	KindNotFound                    // the resource does not exist (404)
	KindConflict                    // the resource's state forbids it (409)
	KindUnavailable                 // the service cannot do it now (503)
	KindTooLarge                    // the request body is over the limit (413)
	KindTooManyRequests             // the caller must wait before trying again (429)
)

// Error is the one error type of the domain. Code is the Azure error code
// returned to clients, Target names the offending field or resource.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Target  string
}

func (e *Error) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("%s: %s (target %s)", e.Code, e.Message, e.Target)
	}
	return e.Code + ": " + e.Message
}

// Errorf builds an *Error of the given kind and Azure code.
func Errorf(kind Kind, code, target, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Target: target, Message: fmt.Sprintf(format, args...)}
}

// Invalid is a 400 error with the given Azure code and target field.
func Invalid(code, target, format string, args ...any) *Error {
	return Errorf(KindInvalid, code, target, format, args...)
}

// NotFound is a 404 ResourceNotFound error.
func NotFound(target, format string, args ...any) *Error {
	return Errorf(KindNotFound, "ResourceNotFound", target, format, args...)
}

// Conflict is a 409 error with the given Azure code.
func Conflict(code, target, format string, args ...any) *Error {
	return Errorf(KindConflict, code, target, format, args...)
}

// ErrorKind reports the kind of err: the Kind of the *Error it wraps, or
// KindInternal for anything else.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsNotFound reports whether err is (or wraps) a not-found error.
func IsNotFound(err error) bool { return err != nil && ErrorKind(err) == KindNotFound }

// ErrorDetail is an error as stored on a resource or an operation and
// returned in Azure's shape.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// Detail turns any error into an ErrorDetail, keeping the code of an *Error.
func Detail(err error) ErrorDetail {
	var e *Error
	if errors.As(err, &e) {
		return ErrorDetail{Code: e.Code, Message: e.Message, Target: e.Target}
	}
	return ErrorDetail{Code: "InternalServerError", Message: err.Error()}
}
