// Package openai holds the OpenAI wire format as the gateway needs it: the
// error envelope, the request fields the gateway reads from a body (model,
// stream) and the exact rewriting of the model, SSE framing, and the model
// objects of GET /v1/models.
//
// The body scanners are exact on purpose: the gateway and the upstream must
// never read different models from one body, so a body the scanners cannot
// read unambiguously is refused with a *gateway.BadRequestError.
package openai
