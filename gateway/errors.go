package gateway

import (
	"errors"
	"fmt"
)

// Sentinel errors for static cases.
var (
	// ErrNotFound is returned by stores for a missing record.
	ErrNotFound = errors.New("not found")
	// ErrMissingKey means the request carried no credential.
	ErrMissingKey = errors.New("missing api key")
	// ErrUnavailable means a dependency (the store) cannot answer now.
	ErrUnavailable = errors.New("service unavailable")
	// ErrRouteNotFound is an unknown path.
	ErrRouteNotFound = errors.New("route not found")
)

// InvalidKeyError is an unknown, blocked or expired key. Display is the
// redacted key (at most its last 4 characters).
type InvalidKeyError struct {
	Display string
	Reason  string // "unknown", "blocked", "expired"; never sent to clients
}

func (e *InvalidKeyError) Error() string {
	return fmt.Sprintf("invalid api key %s: %s", e.Display, e.Reason)
}

// ModelNotFoundError is a model that does not exist or that the caller may
// not use; the two are indistinguishable on purpose.
type ModelNotFoundError struct {
	Model string
}

func (e *ModelNotFoundError) Error() string {
	return fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", e.Model)
}

// DeniedError is a policy deny with the policy's status, code and message.
type DeniedError struct {
	Decision Decision
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("denied by policy: %d %s", e.Decision.Status, e.Decision.Code)
}

// BadRequestError is a malformed request. Message is safe to show clients.
type BadRequestError struct {
	Param   string
	Code    string
	Message string
}

func (e *BadRequestError) Error() string { return e.Message }

// BodyTooLargeError is a request body over the configured limit.
type BodyTooLargeError struct {
	Limit int64
}

func (e *BodyTooLargeError) Error() string {
	return fmt.Sprintf("request body exceeds %d bytes", e.Limit)
}

// MethodNotAllowedError is a known path with a method it does not serve.
type MethodNotAllowedError struct {
	Method, Path string
}

func (e *MethodNotAllowedError) Error() string {
	return fmt.Sprintf("method %s not allowed on %s", e.Method, e.Path)
}

// NotFoundError is a missing admin record (a key, team or user). It is not
// used for models: those are ModelNotFoundError, identical for unknown and
// forbidden.
type NotFoundError struct {
	Kind, ID string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s not found", e.Kind, e.ID)
}

// ConflictError is an admin write that would duplicate a record.
type ConflictError struct {
	Kind, ID string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s already exists", e.Kind, e.ID)
}
