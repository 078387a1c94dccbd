package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/openai"
	"github.com/regate/gateway/gateway/proxy"
)

// Error types of the OpenAI envelope.
const (
	typeInvalidRequest = "invalid_request_error"
	typeServer         = "server_error"
)

// statusClientClosed is logged for requests the client abandoned (nginx's
// 499); the client never sees it.
const statusClientClosed = 499

var (
	errInternal = errors.New("internal error")
	// errPolicy wraps a policy evaluation failure: a deny, reported as 500.
	errPolicy = errors.New("policy evaluation failed")
)

// writeError is the one place that turns an error into a status and an
// OpenAI envelope. Internal error text never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if sw, ok := w.(*statusWriter); ok && sw.wrote {
		// The response is already under way; the proxy reports in-band.
		s.log.Warn("error after response started", "request_id", requestCtx(r).id, "error", err)
		return
	}
	status, body, retry := s.mapError(r, err)
	h := w.Header()
	if !retry {
		h.Set("X-Should-Retry", "false")
	}
	var le *gateway.LimitError
	if errors.As(err, &le) {
		setRateHeaders(h, le.Rate)
		if le.Kind != gateway.LimitBudget {
			h.Set("Retry-After", strconv.FormatInt(retrySeconds(le.RetryAfter), 10))
		}
	}
	var ue *proxy.UpstreamError
	if errors.As(err, &ue) {
		for _, k := range []string{"Retry-After", "Retry-After-Ms"} {
			if v := ue.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(ue.Status)
		_, _ = w.Write(ue.Body)
		return
	}
	openai.WriteError(w, status, body)
}

func str(s string) *string { return &s }

// mapError returns the status, the envelope body and whether a client may
// retry.
func (s *Server) mapError(r *http.Request, err error) (int, openai.ErrorBody, bool) {
	var (
		invalidKey *gateway.InvalidKeyError
		notFound   *gateway.ModelNotFoundError
		denied     *gateway.DeniedError
		badReq     *gateway.BadRequestError
		tooLarge   *gateway.BodyTooLargeError
		maxBytes   *http.MaxBytesError
		methodNA   *gateway.MethodNotAllowedError
		recNF      *gateway.NotFoundError
		conflict   *gateway.ConflictError
		upstream   *proxy.UpstreamError
		limited    *gateway.LimitError
	)
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		return statusClientClosed, openai.ErrorBody{Message: "Client closed the request.", Type: typeInvalidRequest}, false
	case errors.Is(err, gateway.ErrMissingKey):
		return http.StatusUnauthorized, openai.ErrorBody{
			Message: "You didn't provide an API key. Provide it as a bearer token in the Authorization header (Authorization: Bearer sk-...).",
			Type:    typeInvalidRequest,
		}, false
	case errors.As(err, &invalidKey):
		return http.StatusUnauthorized, openai.ErrorBody{
			Message: fmt.Sprintf("Incorrect API key provided: %s.", invalidKey.Display),
			Type:    typeInvalidRequest,
			Code:    str("invalid_api_key"),
		}, false
	case errors.As(err, &notFound):
		return http.StatusNotFound, openai.ErrorBody{
			Message: notFound.Error(),
			Type:    typeInvalidRequest,
			Code:    str(gateway.CodeModelNotFound),
		}, false
	case errors.As(err, &denied):
		d := denied.Decision
		status := d.Status
		if status < 400 || status > 499 {
			status = http.StatusForbidden
		}
		code, msg := d.Code, d.Message
		if code == "" {
			code = gateway.CodePermissionDenied
		}
		if msg == "" {
			msg = "You do not have permission to perform this request."
		}
		return status, openai.ErrorBody{Message: msg, Type: typeInvalidRequest, Code: str(code)}, false
	case errors.As(err, &badReq):
		b := openai.ErrorBody{Message: badReq.Message, Type: typeInvalidRequest}
		if badReq.Param != "" {
			b.Param = str(badReq.Param)
		}
		if badReq.Code != "" {
			b.Code = str(badReq.Code)
		}
		return http.StatusBadRequest, b, false
	case errors.As(err, &recNF):
		return http.StatusNotFound, openai.ErrorBody{Message: recNF.Error(), Type: typeInvalidRequest, Code: str("not_found")}, false
	case errors.As(err, &conflict):
		return http.StatusBadRequest, openai.ErrorBody{Message: conflict.Error(), Type: typeInvalidRequest, Code: str("conflict")}, false
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, tooLargeBody(tooLarge.Limit), false
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge, tooLargeBody(maxBytes.Limit), false
	case errors.As(err, &methodNA):
		return http.StatusMethodNotAllowed, openai.ErrorBody{
			Message: fmt.Sprintf("Method %s is not allowed on %s.", methodNA.Method, methodNA.Path),
			Type:    typeInvalidRequest,
			Code:    str("method_not_allowed"),
		}, false
	case errors.Is(err, gateway.ErrRouteNotFound):
		return http.StatusNotFound, openai.ErrorBody{
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.EscapedPath()),
			Type:    typeInvalidRequest,
		}, false
	case errors.Is(err, gateway.ErrUnavailable):
		return http.StatusServiceUnavailable, openai.ErrorBody{
			Message: "The gateway cannot verify credentials right now. Try again shortly.",
			Type:    typeServer,
			Code:    str("service_unavailable"),
		}, true
	case errors.As(err, &limited):
		if limited.Kind == gateway.LimitBudget {
			// LiteLLM's answer: a 400 that SDKs do not retry.
			return http.StatusBadRequest, openai.ErrorBody{
				Message: limited.Error(), Type: "budget_exceeded", Code: str("budget_exceeded"),
			}, false
		}
		typ := "requests" // OpenAI's type for request limits
		if limited.Kind == gateway.LimitTPM {
			typ = "tokens"
		}
		return http.StatusTooManyRequests, openai.ErrorBody{
			Message: limited.Error(), Type: typ, Code: str("rate_limit_exceeded"),
		}, true
	case errors.As(err, &upstream):
		return upstream.Status, openai.ErrorBody{}, upstream.Retryable
	case errors.Is(err, errPolicy):
		s.log.Error("policy evaluation failed", "request_id", requestCtx(r).id, "error", err)
		return http.StatusInternalServerError, openai.ErrorBody{
			Message: "The gateway could not authorize this request.",
			Type:    typeServer,
			Code:    str("policy_error"),
		}, false
	default:
		s.log.Error("internal error", "request_id", requestCtx(r).id, "error", err)
		return http.StatusInternalServerError, openai.ErrorBody{
			Message: "The gateway had an internal error.",
			Type:    typeServer,
		}, true
	}
}

// retrySeconds is a Retry-After in whole seconds, at least 1.
func retrySeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

func tooLargeBody(limit int64) openai.ErrorBody {
	return openai.ErrorBody{
		Message: fmt.Sprintf("Request body too large: the limit is %d bytes.", limit),
		Type:    typeInvalidRequest,
		Code:    str("request_too_large"),
	}
}
