// Package gateway holds the core domain of the model gateway: principals (keys,
// teams, users), model resolution results (alias chains, deployments), the
// policy input and decision documents, the ports adapters implement, and the
// errors the HTTP edge maps to OpenAI-shaped responses.
//
// It imports only the standard library. Adapters (HTTP, proxy, Rego, stores)
// import it; only cmd/ wires adapters together.
package gateway
