package config

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regate/gateway/gateway"
	"github.com/regate/gateway/gateway/catalog"
	"github.com/regate/gateway/gateway/modelinfo"
)

// Provider names with special handling. Every other provider speaks the
// OpenAI wire format at its APIBase.
const (
	// ProviderMock is the built-in local mock provider.
	ProviderMock = "mock"
	// ProviderAzure is Azure OpenAI: api-key header, api-version query
	// parameter, deployment URLs.
	ProviderAzure = "azure"
	// ProviderOpenAI is the provider of a model without a prefix.
	ProviderOpenAI = "openai"
	// ProviderOpenAICompatible is the provider of a model with an unknown
	// prefix and an api_base: any OpenAI-compatible server.
	ProviderOpenAICompatible = "openai_compatible"
)

// DefaultAzureAPIVersion is the api_version of an azure deployment that sets
// none.
const DefaultAzureAPIVersion = "2024-10-21"

// provider describes a known litellm_params.model prefix.
type provider struct {
	// base is the default api_base; empty when the provider needs one.
	base string
	// needsBase is true for providers without a public endpoint.
	needsBase bool
	// keyEnv is the variable LiteLLM reads for the provider's key when the
	// deployment sets no api_key.
	keyEnv string
}

// providers are the known prefixes (DESIGN §4, §10.16). No network access is
// made at load time; the base URLs are only defaults.
var providers = map[string]provider{
	"openai":            {base: "https://api.openai.com/v1", keyEnv: "OPENAI_API_KEY"},
	"openrouter":        {base: "https://openrouter.ai/api/v1", keyEnv: "OPENROUTER_API_KEY"},
	"together_ai":       {base: "https://api.together.xyz/v1", keyEnv: "TOGETHERAI_API_KEY"},
	"groq":              {base: "https://api.groq.com/openai/v1", keyEnv: "GROQ_API_KEY"},
	"deepseek":          {base: "https://api.deepseek.com/v1", keyEnv: "DEEPSEEK_API_KEY"},
	"mistral":           {base: "https://api.mistral.ai/v1", keyEnv: "MISTRAL_API_KEY"},
	"fireworks_ai":      {base: "https://api.fireworks.ai/inference/v1", keyEnv: "FIREWORKS_AI_API_KEY"},
	"xai":               {base: "https://api.x.ai/v1", keyEnv: "XAI_API_KEY"},
	"ollama":            {base: "http://localhost:11434/v1"},
	"ollama_chat":       {base: "http://localhost:11434/v1"},
	"anthropic":         {base: "https://api.anthropic.com/v1", keyEnv: "ANTHROPIC_API_KEY"},
	"gemini":            {base: "https://generativelanguage.googleapis.com/v1beta/openai", keyEnv: "GEMINI_API_KEY"},
	"perplexity":        {base: "https://api.perplexity.ai", keyEnv: "PERPLEXITYAI_API_KEY"},
	"cerebras":          {base: "https://api.cerebras.ai/v1", keyEnv: "CEREBRAS_API_KEY"},
	"deepinfra":         {base: "https://api.deepinfra.com/v1/openai", keyEnv: "DEEPINFRA_API_KEY"},
	"hosted_vllm":       {needsBase: true},
	"openai_compatible": {needsBase: true},
	"custom_openai":     {needsBase: true},
	"litellm_proxy":     {needsBase: true},
	"azure":             {needsBase: true, keyEnv: "AZURE_API_KEY"},
	"mock":              {},
}

// lineIndex remembers where things were defined, for problems found after
// parsing.
type lineIndex struct {
	deployments []int          // line of each entry of Config.Deployments
	deployIndex []int          // model_list index of each entry
	aliases     map[string]int // global alias name -> line
	aliasesLine int
}

func (p *parser) run(data []byte) {
	root := p.document(data)
	if root == nil {
		if len(p.problems) == 0 {
			p.warnf(0, "empty config: no model_list, the gateway serves no models")
		}
		return
	}
	fields, ok := p.mapping(root, "config")
	if !ok {
		return
	}
	idx := &lineIndex{aliases: make(map[string]int)}
	var settings *field
	sawModels := false
	for _, f := range fields {
		switch f.key {
		case "model_list":
			sawModels = true
			p.modelList(f.value, idx)
		case "router_settings":
			p.routerSettings(f.value, idx)
		case "general_settings":
			p.generalSettings(f.value)
		case "gateway_settings":
			settings = &f
		default:
			p.warnf(f.line, "%s: ignored (not used by the gateway)", f.key)
		}
	}
	if !sawModels {
		p.warnf(0, "no model_list: the gateway serves no models")
	}
	var principals *principals
	if settings != nil {
		principals = p.gatewaySettings(settings.value)
	}
	p.buildCatalog(idx)
	if p.cfg.Catalog != nil && principals != nil {
		p.validatePrincipals(principals)
	}
}

func (p *parser) modelList(n *yaml.Node, idx *lineIndex) {
	items, ok := p.sequence(n, "model_list")
	if !ok {
		return
	}
	ids := make(map[string]int)
	for i, item := range items {
		d, ok := p.deployment(i, item)
		if !ok {
			continue
		}
		if first, dup := ids[d.ID]; dup {
			p.errorf(item.Line, "model_list[%d]: deployment id %q is also the id of model_list[%d]", i, d.ID, first)
			continue
		}
		ids[d.ID] = i
		p.cfg.Deployments = append(p.cfg.Deployments, d)
		idx.deployments = append(idx.deployments, item.Line)
		idx.deployIndex = append(idx.deployIndex, i)
	}
}

// deployment parses one model_list entry.
func (p *parser) deployment(i int, n *yaml.Node) (gateway.Deployment, bool) {
	path := fmt.Sprintf("model_list[%d]", i)
	fields, ok := p.mapping(n, path)
	if !ok {
		return gateway.Deployment{}, false
	}
	d := gateway.Deployment{ID: strconv.Itoa(i)}
	var params, info *yaml.Node
	for _, f := range fields {
		switch f.key {
		case "model_name":
			d.ModelName, ok = p.str(f.value, path+".model_name")
			if !ok {
				return d, false
			}
		case "litellm_params":
			params = f.value
		case "model_info":
			info = f.value
		default:
			p.warnf(f.line, "%s.%s: ignored (not used by the gateway)", path, f.key)
		}
	}
	if d.ModelName == "" {
		p.errorf(n.Line, "%s: missing model_name", path)
		return d, false
	}
	label := fmt.Sprintf("%s (model_name %q)", path, d.ModelName)
	if info != nil && !p.modelInfo(info, path+".model_info", &d) {
		return d, false
	}
	if params == nil {
		p.errorf(n.Line, "%s: missing litellm_params", label)
		return d, false
	}
	return d, p.litellmParams(params, path+".litellm_params", label, n.Line, &d)
}

// modelInfo reads model_info: access_groups, id, the limits and prices the
// gateway uses, and any other field as given (shown by /model/info, not
// warned about: LiteLLM users keep mode, base_model, supports_* and the
// like there). A field named like a credential is dropped with a warning so
// that /model/info never shows one.
func (p *parser) modelInfo(n *yaml.Node, path string, d *gateway.Deployment) bool {
	fields, ok := p.mapping(n, path)
	if !ok {
		return false
	}
	for _, f := range fields {
		fpath := path + "." + f.key
		switch f.key {
		case "access_groups":
			groups, _, gok := p.strList(f.value, path+".access_groups")
			for _, g := range groups {
				if g == "" {
					p.errorf(f.line, "%s.access_groups: empty access group name", path)
					gok = false
				}
			}
			d.AccessGroups = groups
			ok = ok && gok
		case "id":
			id, iok := p.str(f.value, path+".id")
			if iok && id != "" {
				d.ID = id
			}
			ok = ok && iok
		case "max_input_tokens":
			ok = p.tokenLimit(f.value, fpath, &d.Info.MaxInputTokens) && ok
		case "max_output_tokens":
			ok = p.tokenLimit(f.value, fpath, &d.Info.MaxOutputTokens) && ok
		case "max_tokens":
			ok = p.tokenLimit(f.value, fpath, &d.Info.MaxTokens) && ok
		default:
			if dst := costField(&d.Info, f.key); dst != nil {
				ok = p.cost(f.value, fpath, dst) && ok
				continue
			}
			if credentialName(f.key) {
				p.warnf(f.line, "%s: ignored and never shown (model_info holds no credentials)", fpath)
				continue
			}
			v, vok := p.value(f.value, fpath, 0)
			if d.Info.Extra == nil {
				d.Info.Extra = make(map[string]any)
			}
			d.Info.Extra[f.key] = v
			ok = ok && vok
		}
	}
	// LiteLLM's legacy max_tokens is the output limit when max_output_tokens
	// is not given (its model map sets it so); it never stands for the input
	// window.
	if d.Info.MaxOutputTokens == 0 {
		d.Info.MaxOutputTokens = d.Info.MaxTokens
	}
	return ok
}

// costField returns the price of info that a model_info or litellm_params
// field sets (LiteLLM's names), or nil.
func costField(info *gateway.ModelInfo, key string) **gateway.Price {
	for _, f := range info.PriceFields() {
		if f.Name == key {
			return f.Price
		}
	}
	return nil
}

// credentialName reports whether a model_info field name looks like it
// holds a secret.
func credentialName(key string) bool {
	k := strings.ToLower(key)
	for _, s := range []string{"key", "secret", "password", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return strings.HasSuffix(k, "_token")
}

// tokenLimit reads a positive whole number of tokens into dst; null leaves
// it unknown.
func (p *parser) tokenLimit(n *yaml.Node, path string, dst *int64) bool {
	n = deref(n)
	if isNull(n) {
		return true
	}
	var v int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil || v <= 0 {
		p.errorf(n.Line, "%s: want a positive whole number of tokens, got %s", path, describeValue(n))
		return false
	}
	*dst = v
	return true
}

// cost reads a price in USD per token, a non-negative number, into dst;
// null leaves it unknown.
func (p *parser) cost(n *yaml.Node, path string, dst **gateway.Price) bool {
	n = deref(n)
	if isNull(n) {
		return true
	}
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil ||
		v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		p.errorf(n.Line, "%s: want a non-negative number (USD per token), got %s", path, describeValue(n))
		return false
	}
	*dst = &gateway.Price{PerToken: v}
	return true
}

// describeValue is describe, with a scalar's text.
func describeValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return strconv.Quote(n.Value)
	}
	return describe(n)
}

func (p *parser) litellmParams(n *yaml.Node, path, label string, line int, d *gateway.Deployment) bool {
	fields, ok := p.mapping(n, path)
	if !ok {
		return false
	}
	var model, apiBase, apiKey envRef
	hasBase, hasKey := false, false
	for _, f := range fields {
		fpath := path + "." + f.key
		switch f.key {
		case "model":
			var mok bool
			if model, mok = p.envStr(f.value, fpath); !mok {
				return false
			}
			if model.unset {
				p.errorf(f.line, "%s: environment variable %s is not set", fpath, model.name)
				return false
			}
		case "api_base":
			var bok bool
			if apiBase, bok = p.envStr(f.value, fpath); !bok {
				return false
			}
			hasBase = apiBase.value != "" || apiBase.unset
			if apiBase.unset {
				p.warnf(f.line, "%s: environment variable %s is not set; %s will fail upstream", fpath, apiBase.name, label)
			} else if apiBase.value != "" && !validBase(apiBase.value) {
				p.errorf(f.line, "%s: want an http or https URL with a host", fpath)
				ok = false
			}
		case "api_key":
			var kok bool
			if apiKey, kok = p.envStr(f.value, fpath); !kok {
				return false
			}
			hasKey = true
			if apiKey.unset {
				p.warnf(f.line, "%s: environment variable %s is not set; %s will fail upstream", fpath, apiKey.name, label)
			}
		case "api_version":
			v, vok := p.envStr(f.value, fpath)
			if !vok {
				return false
			}
			if v.unset {
				p.warnf(f.line, "%s: environment variable %s is not set", fpath, v.name)
			}
			d.APIVersion = v.value
		case "timeout":
			t, tok := p.timeout(f.value, fpath)
			ok = ok && tok
			d.Timeout = t
		case "mock_latency":
			s, sok := p.str(f.value, fpath)
			lat, err := ParseDuration(s)
			if !sok || err != nil || s == "" {
				p.errorf(f.line, "%s: want a duration like 50ms", fpath)
				ok = false
			}
			d.MockLatency = lat
		default:
			if dst := costField(&d.Info, f.key); dst != nil {
				// LiteLLM reads custom prices here too; they win over
				// model_info's.
				ok = p.cost(f.value, fpath, dst) && ok
				continue
			}
			p.warnf(f.line, "%s: ignored (not used by the gateway)", fpath)
		}
	}
	if model.value == "" {
		p.errorf(line, "%s: missing litellm_params.model", label)
		return false
	}
	d.ProviderModel = model.value
	prefix, rest, hasPrefix := strings.Cut(model.value, "/")
	spec, known := providers[prefix]
	switch {
	case !hasPrefix:
		d.Provider, spec = ProviderOpenAI, providers[ProviderOpenAI]
	case known:
		if rest == "" {
			p.errorf(line, "%s: litellm_params.model %q names no model after the provider", label, model.value)
			return false
		}
		d.Provider = prefix
	case hasBase:
		d.Provider, spec = ProviderOpenAICompatible, providers[ProviderOpenAICompatible]
	default:
		p.errorf(line, "%s: unknown provider %q in litellm_params.model %q; set api_base to use an OpenAI-compatible server", label, prefix, model.value)
		return false
	}
	d.UpstreamModel = catalog.UpstreamModel(d.Provider, d.ProviderModel)
	switch {
	case hasBase:
		d.APIBase = normalizeBase(d.Provider, apiBase.value)
	case spec.needsBase:
		p.errorf(line, "%s: provider %q needs litellm_params.api_base", label, d.Provider)
		return false
	default:
		d.APIBase = spec.base
	}
	if d.Provider == ProviderAzure && d.APIVersion == "" {
		d.APIVersion = DefaultAzureAPIVersion
	}
	switch {
	case hasKey:
		d.APIKey = gateway.Secret(apiKey.value)
	case spec.keyEnv != "":
		if v, set := p.env(spec.keyEnv); set {
			d.APIKey = gateway.Secret(v)
		}
	}
	return ok
}

func validBase(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// normalizeBase drops trailing slashes and, for ollama given as its native
// address (no path), adds the /v1 of its OpenAI-compatible API.
func normalizeBase(provider, base string) string {
	base = strings.TrimRight(base, "/")
	if provider == "ollama" || provider == "ollama_chat" {
		if u, err := url.Parse(base); err == nil && u.Path == "" {
			base += "/v1"
		}
	}
	return base
}

// timeout reads litellm_params.timeout: seconds as a number, or a duration.
func (p *parser) timeout(n *yaml.Node, path string) (time.Duration, bool) {
	n = deref(n)
	if isNull(n) {
		return 0, true
	}
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		var secs float64
		if n.Decode(&secs) == nil && secs > 0 && secs < 1e6 {
			return time.Duration(secs * float64(time.Second)), true
		}
	} else if n.Kind == yaml.ScalarNode {
		if d, err := ParseDuration(n.Value); err == nil && d > 0 {
			return d, true
		}
	}
	p.errorf(n.Line, "%s: want a positive number of seconds or a duration like 30s", path)
	return 0, false
}

func (p *parser) routerSettings(n *yaml.Node, idx *lineIndex) {
	fields, ok := p.mapping(n, "router_settings")
	if !ok {
		return
	}
	for _, f := range fields {
		if f.key != "model_group_alias" {
			p.warnf(f.line, "router_settings.%s: ignored (not used by the gateway)", f.key)
			continue
		}
		idx.aliasesLine = f.line
		aliases, ok := p.mapping(f.value, "router_settings.model_group_alias")
		if !ok {
			continue
		}
		for _, a := range aliases {
			path := "router_settings.model_group_alias." + a.key
			alias := catalog.Alias{Name: a.key}
			v := deref(a.value)
			if v.Kind == yaml.MappingNode {
				inner, _ := p.mapping(v, path)
				for _, in := range inner {
					switch in.key {
					case "model":
						alias.Target, _ = p.str(in.value, path+".model")
					case "hidden":
						alias.Hidden, _ = p.boolean(in.value, path+".hidden")
					default:
						p.warnf(in.line, "%s.%s: ignored (not used by the gateway)", path, in.key)
					}
				}
			} else if s, ok := p.str(v, path); ok {
				alias.Target = s
			} else {
				continue
			}
			if alias.Target == "" {
				p.errorf(a.line, "%s: missing target model", path)
				continue
			}
			idx.aliases[alias.Name] = a.line
			p.cfg.Aliases = append(p.cfg.Aliases, alias)
		}
	}
}

func (p *parser) generalSettings(n *yaml.Node) {
	fields, ok := p.mapping(n, "general_settings")
	if !ok {
		return
	}
	for _, f := range fields {
		switch f.key {
		case "master_key":
		case "database_url":
			p.warnf(f.line, "general_settings.database_url: ignored; the gateway reads --database-url or DATABASE_URL")
			continue
		default:
			p.warnf(f.line, "general_settings.%s: ignored (not used by the gateway)", f.key)
			continue
		}
		ref, ok := p.envStr(f.value, "general_settings.master_key")
		switch {
		case !ok:
		case ref.unset:
			p.errorf(f.line, "general_settings.master_key: environment variable %s is not set", ref.name)
		case ref.value != "" && !strings.HasPrefix(ref.value, "sk-"):
			p.errorf(f.line, "general_settings.master_key: must start with \"sk-\"")
		default:
			p.cfg.MasterKey = gateway.Secret(ref.value)
		}
	}
}

// buildCatalog builds the catalog and reports its problems at their lines.
func (p *parser) buildCatalog(idx *lineIndex) {
	builtin, now := modelinfo.Builtin(), p.now
	c, err := catalog.NewWithInfo(p.cfg.Deployments, p.cfg.Aliases, func(provider, model string) (gateway.ModelInfo, bool) {
		return builtin.Info(provider, model, now)
	})
	if err != nil {
		for _, e := range asList(err) {
			switch e := e.(type) {
			case *catalog.DeploymentError:
				line, i := 0, e.Index
				if i < len(idx.deployments) {
					line, i = idx.deployments[i], idx.deployIndex[i]
				}
				p.errorf(line, "model_list[%d] (model_name %q): %s", i, e.ModelName, e.Reason)
			case *catalog.AliasError:
				p.errorf(p.aliasLine(idx, e), "router_settings.model_group_alias: %s", e.Error())
			default:
				p.errorf(0, "%s", e.Error())
			}
		}
		return
	}
	p.cfg.Catalog = c
	p.warnUnpriced(idx, builtin)
	for _, e := range asList(c.CheckAliases(nil, nil)) {
		line := idx.aliasesLine
		if ae, ok := e.(*catalog.AliasError); ok {
			line = p.aliasLine(idx, ae)
		}
		p.errorf(line, "router_settings.model_group_alias: %s", e.Error())
	}
}

// warnUnpriced lists in Config.Unpriced each deployment whose calls have no
// price, neither configured nor built in (DESIGN §11): their cost counts 0.
// The built-in mock provider costs nothing and is left out.
func (p *parser) warnUnpriced(idx *lineIndex, builtin *modelinfo.Catalog) {
	deps := p.cfg.Catalog.Deployments()
	for _, i := range p.cfg.Catalog.Unpriced(builtin.Covers) {
		d := deps[i]
		if d.Provider == ProviderMock {
			continue
		}
		p.cfg.Unpriced = append(p.cfg.Unpriced, Warning{
			Line: idx.deployments[i],
			Message: fmt.Sprintf("model_list[%d] (model_name %q): no price for %s, in model_info or in the built-in catalog (%s %s): its calls cost 0",
				idx.deployIndex[i], d.ModelName, d.ProviderModel, builtin.Source, builtin.Version),
		})
	}
}

func (p *parser) aliasLine(idx *lineIndex, e *catalog.AliasError) int {
	if l, ok := idx.aliases[e.Name]; ok {
		return l
	}
	return idx.aliasesLine
}

// asList flattens a catalog error into its problems.
func asList(err error) []error {
	if err == nil {
		return nil
	}
	if l, ok := err.(catalog.ErrorList); ok {
		return l
	}
	return []error{err}
}
