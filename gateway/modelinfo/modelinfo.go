// Package modelinfo is the gateway's built-in model catalog: context windows
// and token prices of well-known models, per provider, with the rules that
// match a provider's model names (DESIGN §7 "Built-in catalog").
//
// The data, prices.json, is generated from the npm package
// @pydantic/genai-prices (MIT) by tools/genprices and embedded in the
// binary; nothing is fetched at run time. Regenerate it with
//
//	go generate ./gateway/modelinfo
//
// Lookups mirror the package's own calcPrice: the model name is trimmed and
// lower-cased, the provider's models are tried in order (the first whose
// match rule holds wins), then the providers it falls back to, then the
// same again with a compact date suffix written with dashes
// ("-20240718" as "-2024-07-18").
package modelinfo

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/regate/gateway/gateway"
)

//go:generate npm --prefix ../../tools/genprices ci --no-audit --no-fund
//go:generate npm --prefix ../../tools/genprices run generate

//go:embed prices.json
var builtinData []byte

// builtin is the parsed embedded data while anything holds it. Parsed, it
// takes about 0.75 MB of heap (models and prices; a third of it compiled
// match rules), and a gateway needs it only while it loads a config,
// unless a wildcard deployment looks names up as they are resolved; so it
// is held weakly and parsed again (about 11 ms) when asked after it was
// collected.
var builtin struct {
	mu sync.Mutex
	c  weak.Pointer[Catalog]
}

// Builtin returns the embedded catalog. Its tests guarantee that it
// parses, so a failure is a broken build and panics.
func Builtin() *Catalog {
	builtin.mu.Lock()
	defer builtin.mu.Unlock()
	if c := builtin.c.Value(); c != nil {
		return c
	}
	c, err := Parse(builtinData)
	if err != nil {
		panic("modelinfo: embedded prices.json: " + err.Error())
	}
	builtin.c = weak.Make(c)
	return c
}

// providerIDs maps the gateway's provider names (the litellm_params.model
// prefixes) to the catalog's provider ids. Providers left out (ollama,
// hosted_vllm, openai_compatible, deepinfra, mock, …) serve models the
// catalog cannot know, or that it has no section for.
var providerIDs = map[string]string{
	"openai":       "openai",
	"azure":        "azure", // falls back to openai and others in the data
	"anthropic":    "anthropic",
	"openrouter":   "openrouter",
	"together_ai":  "together",
	"groq":         "groq",
	"deepseek":     "deepseek",
	"mistral":      "mistral",
	"fireworks_ai": "fireworks",
	"xai":          "x-ai",
	"gemini":       "google",
	"perplexity":   "perplexity",
	"cerebras":     "cerebras",
}

// Catalog is a parsed catalog. It is immutable and safe for concurrent use.
type Catalog struct {
	// Source and Version name the package the data was generated from.
	Source, Version string

	providers map[string]*provider
}

type provider struct {
	id       string
	fallback []string
	models   []model
}

type model struct {
	id            string
	match         matcher
	contextWindow int64
	periods       []period
}

// period is the prices in force from a date on; the first has a zero from.
type period struct {
	from                                 *time.Time
	input, output, cacheRead, cacheWrite *gateway.Price
}

// Model is the catalog entry found for a deployment.
type Model struct {
	// Provider is the catalog's provider id, ID the model's id there.
	Provider, ID string
	// ContextWindow is the input window; 0 when the catalog does not say.
	ContextWindow int64

	periods []period
}

// Find returns the model the catalog has for a deployment of provider (a
// gateway provider name such as "together_ai") serving upstreamModel, or
// false when the provider has no section in the catalog or no model of it
// matches.
func (c *Catalog) Find(provider, upstreamModel string) (Model, bool) {
	p := c.providers[providerIDs[provider]]
	if p == nil {
		return Model{}, false
	}
	name := strings.ToLower(strings.TrimSpace(upstreamModel))
	pid, m := c.find(p, name)
	if m == nil {
		if dashed := dashDates(name); dashed != name {
			pid, m = c.find(p, dashed)
		}
	}
	if m == nil {
		return Model{}, false
	}
	return Model{Provider: pid, ID: m.id, ContextWindow: m.contextWindow, periods: m.periods}, true
}

// find tries p's models, then those of the providers it falls back to (one
// level, as the package does).
func (c *Catalog) find(p *provider, name string) (string, *model) {
	if m := p.match(name); m != nil {
		return p.id, m
	}
	for _, id := range p.fallback {
		if fb := c.providers[id]; fb != nil {
			if m := fb.match(name); m != nil {
				return fb.id, m
			}
		}
	}
	return "", nil
}

func (p *provider) match(name string) *model {
	for i := range p.models {
		if p.models[i].match.matches(name) {
			return &p.models[i]
		}
	}
	return nil
}

// Covers reports whether the catalog has a section for the gateway provider
// name: whether a deployment of it could be found at all.
func (c *Catalog) Covers(provider string) bool {
	return c.providers[providerIDs[provider]] != nil
}

// Info returns what the catalog knows of a deployment's model with the
// prices in force at time at: the latest period that has started, else the
// first. Prices scheduled for a later date take effect at the next config
// load after it.
func (c *Catalog) Info(provider, upstreamModel string, at time.Time) (gateway.ModelInfo, bool) {
	m, ok := c.Find(provider, upstreamModel)
	if !ok {
		return gateway.ModelInfo{}, false
	}
	return m.Info(at), true
}

// Info returns the model's window and the prices in force at time at.
func (m Model) Info(at time.Time) gateway.ModelInfo {
	info := gateway.ModelInfo{MaxInputTokens: m.ContextWindow, Catalog: m.Provider + "/" + m.ID}
	var cur *period
	for i := range m.periods {
		if p := &m.periods[i]; p.from == nil || !at.Before(*p.from) {
			cur = p
		}
	}
	if cur != nil {
		info.InputCost, info.OutputCost = cur.input, cur.output
		info.CacheReadCost, info.CacheWriteCost = cur.cacheRead, cur.cacheWrite
	}
	return info
}

// The JSON form written by tools/genprices.
type (
	fileDoc struct {
		Source    string         `json:"source"`
		Version   string         `json:"version"`
		Providers []fileProvider `json:"providers"`
	}
	fileProvider struct {
		ID       string      `json:"id"`
		Fallback []string    `json:"fallback"`
		Models   []fileModel `json:"models"`
	}
	fileModel struct {
		ID            string       `json:"id"`
		Match         rawMatch     `json:"match"`
		ContextWindow int64        `json:"context_window"`
		Prices        []filePeriod `json:"prices"`
	}
	filePeriod struct {
		From       string     `json:"from"`
		Input      *filePrice `json:"input"`
		Output     *filePrice `json:"output"`
		CacheRead  *filePrice `json:"cache_read"`
		CacheWrite *filePrice `json:"cache_write"`
	}
	// filePrice is a price per million tokens: a number, or {base, tiers}.
	filePrice struct {
		base  float64
		tiers []fileTier
	}
	fileTier struct {
		Start int64   `json:"start"`
		Price float64 `json:"price"`
	}
)

func (p *filePrice) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &p.base); err == nil {
		return nil
	}
	var t struct {
		Base  *float64   `json:"base"`
		Tiers []fileTier `json:"tiers"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Base == nil {
		return fmt.Errorf("price %s: want a number or {base, tiers}", b)
	}
	p.base, p.tiers = *t.Base, t.Tiers
	return nil
}

// perToken converts a price per million tokens to USD per token.
func (p *filePrice) perToken() (*gateway.Price, error) {
	if p == nil {
		return nil, nil
	}
	if p.base < 0 {
		return nil, fmt.Errorf("negative price %v", p.base)
	}
	out := &gateway.Price{PerToken: p.base / 1e6}
	for i, t := range p.tiers {
		if t.Price < 0 || t.Start < 0 || (i > 0 && t.Start <= p.tiers[i-1].Start) {
			return nil, fmt.Errorf("bad tier %+v", t)
		}
		out.Tiers = append(out.Tiers, gateway.PriceTier{Above: t.Start, PerToken: t.Price / 1e6})
	}
	return out, nil
}

// Parse reads a catalog in the form tools/genprices writes.
func Parse(data []byte) (*Catalog, error) {
	var doc fileDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse catalog: %w", err)
	}
	c := &Catalog{Source: doc.Source, Version: doc.Version, providers: make(map[string]*provider, len(doc.Providers))}
	for _, fp := range doc.Providers {
		p := &provider{id: fp.ID, fallback: fp.Fallback, models: make([]model, 0, len(fp.Models))}
		for _, fm := range fp.Models {
			m, err := parseModel(fm)
			if err != nil {
				return nil, fmt.Errorf("catalog model %s/%s: %w", fp.ID, fm.ID, err)
			}
			p.models = append(p.models, m)
		}
		c.providers[p.id] = p
	}
	return c, nil
}

func parseModel(fm fileModel) (model, error) {
	m := model{id: fm.ID, contextWindow: fm.ContextWindow}
	if fm.ContextWindow < 0 {
		return m, fmt.Errorf("negative context window")
	}
	var err error
	if m.match, err = compile(fm.Match); err != nil {
		return m, err
	}
	for i, fp := range fm.Prices {
		var p period
		if i == 0 && fp.From != "" {
			return m, fmt.Errorf("prices[0]: the first period has no start date")
		}
		if fp.From != "" {
			from, err := time.Parse(time.DateOnly, fp.From)
			if err != nil {
				return m, fmt.Errorf("prices[%d]: %w", i, err)
			}
			p.from = &from
		} else if i > 0 {
			return m, fmt.Errorf("prices[%d]: only the first period may have no start date", i)
		}
		for _, f := range []struct {
			dst **gateway.Price
			src *filePrice
		}{{&p.input, fp.Input}, {&p.output, fp.Output}, {&p.cacheRead, fp.CacheRead}, {&p.cacheWrite, fp.CacheWrite}} {
			if *f.dst, err = f.src.perToken(); err != nil {
				return m, fmt.Errorf("prices[%d]: %w", i, err)
			}
		}
		m.periods = append(m.periods, p)
	}
	return m, nil
}
