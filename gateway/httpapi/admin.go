package httpapi

import (
	"net/http"

	"github.com/regate/gateway/gateway/admin"
)

// adminEndpoint authenticates, asks the policy about the admin route (with
// request.self for a key reading its own info) and runs the endpoint.
func (s *Server) adminEndpoint(ep admin.Endpoint) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		p, err := s.authenticate(r.Context(), r)
		if err != nil {
			return err
		}
		rc.principal = p
		self := ep.Self != nil && ep.Self(p, r)
		if err := s.authorizeRequest(r, rc, p, nil, false, self); err != nil {
			return err
		}
		v, err := ep.Handle(r.Context(), p, r)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, v)
	}
}
