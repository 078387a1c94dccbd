package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/regate/gateway/gateway"
)

// route is one row of the route table.
type route struct {
	method    string
	path      string // without the /v1 prefix
	class     string // gateway.Route*
	operation string
	v1        bool // also served under /v1
	handle    handlerFunc
}

// handlerFunc is a handler that returns its error to the one mapper.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

// inferenceRoutes are the OpenAI endpoints proxied upstream.
// Bodies are JSON, or multipart/form-data where the client sends files
// (audio transcriptions); the handler reads the Content-Type.
var inferenceRoutes = []struct{ path, operation string }{
	{"/chat/completions", "chat.completions"},
	{"/completions", "completions"},
	{"/embeddings", "embeddings"},
	{"/responses", "responses"},
	{"/images/generations", "images.generations"},
	{"/audio/speech", "audio.speech"},
	{"/audio/transcriptions", "audio.transcriptions"},
	{"/moderations", "moderations"},
}

// table returns every route the gateway serves, in one place.
func (s *Server) table() []route {
	var rs []route
	for _, ir := range inferenceRoutes {
		rs = append(rs, route{http.MethodPost, ir.path, gateway.RouteInference, ir.operation, true, s.inference(ir.path)})
	}
	rs = append(rs,
		route{http.MethodGet, "/models", gateway.RouteModelsList, "models.list", true, s.listModels},
		route{http.MethodGet, "/models/{model:.+}", gateway.RouteModelsGet, "models.retrieve", true, s.getModel},
		route{http.MethodDelete, "/models/{model:.+}", gateway.RouteAdmin, "models.delete", true, s.deleteModel},
		route{http.MethodGet, "/health/liveliness", gateway.RouteHealth, "health.liveliness", false, s.liveliness},
		route{http.MethodGet, "/health/liveness", gateway.RouteHealth, "health.liveliness", false, s.liveliness},
		route{http.MethodGet, "/health/readiness", gateway.RouteHealth, "health.readiness", false, s.readiness},
	)
	if s.cfg.Metrics != nil {
		rs = append(rs, route{http.MethodGet, "/metrics", gateway.RouteHealth, "metrics", false, s.metrics})
	}
	rs = append(rs, s.policyRoutes()...)
	if s.cfg.Admin != nil {
		for _, ep := range s.cfg.Admin.Endpoints() {
			class := gateway.RouteAdmin
			if ep.Operation == "model.info" {
				// Every key may ask which deployments it may use; the
				// answer is filtered by the model rule.
				class = gateway.RouteModelsList
			}
			rs = append(rs, route{ep.Method, ep.Path, class, ep.Operation, false, s.adminEndpoint(ep)})
		}
	}
	return rs
}

// routes builds the mux router. Encoded paths and SkipClean keep model ids
// with "/" (raw or %2F) intact and stop mux from redirecting "//" paths.
func (s *Server) routes() *mux.Router {
	r := mux.NewRouter().UseEncodedPath().SkipClean(true)
	for _, rt := range s.table() {
		paths := []string{rt.path}
		if rt.v1 {
			paths = append(paths, "/v1"+rt.path)
		}
		for _, p := range paths {
			r.Handle(p, s.wrap(rt, p)).Methods(rt.method)
		}
	}
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return r
}

// wrap attaches the route's class, operation and template to the request
// context, names the server span, and sends the handler's error to the
// mapper.
func (s *Server) wrap(rt route, template string) http.Handler {
	name := spanName(rt.method, template)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := requestCtx(r)
		rc.class = rt.class
		rc.operation = rt.operation
		rc.template = template
		nameSpan(r, rc, rt.method, name, template)
		if err := rt.handle(w, r, rc); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, gateway.ErrRouteNotFound)
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &gateway.MethodNotAllowedError{Method: r.Method, Path: r.URL.EscapedPath()})
}
