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

// foreignProviders are LiteLLM providers that do not speak the OpenAI wire
// format. Without an api_base their deployments load with a warning and are
// not served (DESIGN §10.16); with one they are served as an
// OpenAI-compatible server, with a warning, like any unknown prefix.
var foreignProviders = map[string]bool{
	"bedrock": true, "bedrock_converse": true, "sagemaker": true, "sagemaker_chat": true,
	"vertex_ai": true, "vertex_ai_beta": true, "palm": true, "cohere": true, "cohere_chat": true,
	"huggingface": true, "replicate": true, "ai21": true, "aleph_alpha": true, "nlp_cloud": true,
	"petals": true, "baseten": true, "predibase": true, "watsonx": true, "watsonx_text": true,
	"cloudflare": true, "clarifai": true, "triton": true, "voyage": true, "databricks": true,
	"oobabooga": true, "maritalk": true, "vllm": true,
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
		case "litellm_settings":
			p.litellmSettings(f)
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
	p.finishRouter()
	if p.cfg.Catalog != nil && principals != nil {
		p.validatePrincipals(principals)
	}
}

func (p *parser) modelList(n *yaml.Node, idx *lineIndex) {
	items, ok := p.sequence(n, "model_list")
	if !ok {
		return
	}
	type entry struct {
		d        gateway.Deployment
		i, line  int
		unserved string
	}
	var entries []entry
	explicit := make(map[string]int)
	for i, item := range items {
		d, unserved, ok := p.deployment(i, item)
		if !ok {
			continue
		}
		if d.ID != "" {
			if first, dup := explicit[d.ID]; dup {
				p.errorf(item.Line, "model_list[%d]: deployment id %q is also the id of model_list[%d]", i, d.ID, first)
				continue
			}
			explicit[d.ID] = i
		}
		entries = append(entries, entry{d, i, item.Line, unserved})
	}
	// Generated ids come after every explicit one is known, so that they
	// never take an id some deployment sets (unserved ones included).
	taken := make(map[string]bool, len(entries))
	for id := range explicit {
		taken[id] = true
	}
	var unserved []gateway.Deployment
	for _, e := range entries {
		if e.d.ID == "" {
			e.d.ID = GeneratedID(e.i, taken)
			taken[e.d.ID] = true
		}
		if e.unserved != "" {
			p.warnf(e.line, "model_list[%d] (model_name %q, model %q): not served: %s", e.i, e.d.ModelName, e.d.ProviderModel, e.unserved)
			p.cfg.Unserved = append(p.cfg.Unserved, UnservedDeployment{
				Line: e.line, Index: e.i, ID: e.d.ID, ModelName: e.d.ModelName, Model: e.d.ProviderModel, Reason: e.unserved,
			})
			unserved = append(unserved, e.d)
			continue
		}
		p.cfg.Deployments = append(p.cfg.Deployments, e.d)
		idx.deployments = append(idx.deployments, e.line)
		idx.deployIndex = append(idx.deployIndex, e.i)
	}
	p.shadowCatalog(unserved)
}

// GeneratedID is the id of the deployment at model_list[index] when it sets
// no model_info.id: the index ("0", "1", ...), or, when that is taken,
// "<index>-1", "<index>-2", ... the first that is not. taken holds every
// explicit id of the file and the ids generated so far, so a generated id
// never equals an explicit one, and two generated ids never meet: the text
// before the first "-" is the index.
func GeneratedID(index int, taken map[string]bool) string {
	id := strconv.Itoa(index)
	for n := 1; taken[id]; n++ {
		id = strconv.Itoa(index) + "-" + strconv.Itoa(n)
	}
	return id
}

// deployment parses one model_list entry. ID is model_info.id, or empty
// when the entry sets none. unserved, when not empty, says why the gateway
// cannot serve the deployment (DESIGN §10.16): it loads, with a warning, and
// serves nothing.
func (p *parser) deployment(i int, n *yaml.Node) (d gateway.Deployment, unserved string, ok bool) {
	path := fmt.Sprintf("model_list[%d]", i)
	fields, ok := p.mapping(n, path)
	if !ok {
		return d, "", false
	}
	var params, info *yaml.Node
	var top []field
	for _, f := range fields {
		switch f.key {
		case "model_name":
			d.ModelName, ok = p.str(f.value, path+".model_name")
			if !ok {
				return d, "", false
			}
		case "litellm_params":
			params = f.value
		case "model_info":
			info = f.value
		case "rpm", "tpm":
			// LiteLLM reads a deployment's caps here too; litellm_params
			// wins when both set one.
			top = append(top, f)
		default:
			p.warnf(f.line, "%s.%s: ignored (not used by the gateway)", path, f.key)
		}
	}
	if d.ModelName == "" {
		p.errorf(n.Line, "%s: missing model_name", path)
		return d, "", false
	}
	label := fmt.Sprintf("%s (model_name %q)", path, d.ModelName)
	if info != nil && !p.modelInfo(info, path+".model_info", &d) {
		return d, "", false
	}
	if params == nil {
		p.errorf(n.Line, "%s: missing litellm_params", label)
		return d, "", false
	}
	capsOK := true
	for _, f := range top {
		capsOK = p.cap(f, path+"."+f.key, &d) && capsOK
	}
	unserved, ok = p.litellmParams(params, path+".litellm_params", label, n.Line, &d)
	return d, unserved, ok && capsOK
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

func (p *parser) litellmParams(n *yaml.Node, path, label string, line int, d *gateway.Deployment) (unserved string, ok bool) {
	fields, ok := p.mapping(n, path)
	if !ok {
		return "", false
	}
	var model, apiBase, apiKey envRef
	hasBase, hasKey := false, false
	// failing are the "will fail upstream" warnings, given only for a
	// deployment that is served: an unserved one has its own warning.
	var failing []Warning
	defer func() {
		if unserved == "" {
			p.cfg.Warnings = append(p.cfg.Warnings, failing...)
		}
	}()
	for _, f := range fields {
		fpath := path + "." + f.key
		switch f.key {
		case "model":
			var mok bool
			if model, mok = p.envStr(f.value, fpath); !mok {
				return "", false
			}
			if model.unset {
				p.errorf(f.line, "%s: environment variable %s is not set", fpath, model.name)
				return "", false
			}
		case "api_base":
			var bok bool
			if apiBase, bok = p.envStr(f.value, fpath); !bok {
				return "", false
			}
			hasBase = apiBase.value != "" || apiBase.unset
			if apiBase.unset {
				failing = append(failing, Warning{f.line, fmt.Sprintf("%s: environment variable %s is not set; %s will fail upstream", fpath, apiBase.name, label)})
			} else if apiBase.value != "" && !validBase(apiBase.value) {
				p.errorf(f.line, "%s: want an http or https URL with a host", fpath)
				ok = false
			}
		case "api_key":
			var kok bool
			if apiKey, kok = p.envStr(f.value, fpath); !kok {
				return "", false
			}
			hasKey = true
			if apiKey.unset {
				failing = append(failing, Warning{f.line, fmt.Sprintf("%s: environment variable %s is not set; %s will fail upstream", fpath, apiKey.name, label)})
			}
		case "api_version":
			v, vok := p.envStr(f.value, fpath)
			if !vok {
				return "", false
			}
			if v.unset {
				p.warnf(f.line, "%s: environment variable %s is not set", fpath, v.name)
			}
			d.APIVersion = v.value
		case "timeout":
			t, tok := p.timeout(f.value, fpath)
			ok = ok && tok
			d.Timeout = t
		case "stream_timeout":
			t, tok := p.timeout(f.value, fpath)
			ok = ok && tok
			d.StreamTimeout = t
		case "rpm", "tpm":
			ok = p.cap(f, fpath, d) && ok
		case "weight":
			w, wok := p.positive(f.value, fpath)
			ok = ok && wok
			d.Weight = w
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
		return "", false
	}
	d.ProviderModel = model.value
	prefix, rest, hasPrefix := strings.Cut(model.value, "/")
	spec, known := providers[prefix]
	switch {
	case !hasPrefix:
		d.Provider, spec = ProviderOpenAI, providers[ProviderOpenAI]
	case known:
		if rest == "" {
			return fmt.Sprintf("litellm_params.model %q names no model after the provider", model.value), ok
		}
		d.Provider = prefix
	case hasBase:
		d.Provider, spec = ProviderOpenAICompatible, providers[ProviderOpenAICompatible]
		if foreignProviders[prefix] {
			p.warnf(line, "%s: provider %q does not speak the OpenAI wire format; served as an OpenAI-compatible server at its api_base, upstream model %q", label, prefix, model.value)
		}
	case foreignProviders[prefix]:
		return fmt.Sprintf("provider %q does not speak the OpenAI wire format and no api_base is set", prefix), ok
	default:
		return fmt.Sprintf("unknown provider %q and no api_base is set (an api_base makes it an OpenAI-compatible server)", prefix), ok
	}
	d.UpstreamModel = catalog.UpstreamModel(d.Provider, d.ProviderModel)
	switch {
	case hasBase:
		d.APIBase = normalizeBase(d.Provider, apiBase.value)
	case spec.needsBase:
		return fmt.Sprintf("provider %q needs litellm_params.api_base", d.Provider), ok
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
	return "", ok
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

// cap reads a deployment's rpm or tpm (DESIGN §12: a routing weight and
// a cap per minute).
func (p *parser) cap(f field, path string, d *gateway.Deployment) bool {
	n := deref(f.value)
	if isNull(n) {
		return true
	}
	v, ok := p.integer(n, path)
	if !ok {
		return false
	}
	if v <= 0 {
		p.errorf(f.line, "%s: want a positive integer", path)
		return false
	}
	if f.key == "rpm" {
		d.RPM = v
	} else {
		d.TPM = v
	}
	return true
}

// positive reads a positive number (a routing weight).
func (p *parser) positive(n *yaml.Node, path string) (float64, bool) {
	n = deref(n)
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil || !(v > 0) || math.IsInf(v, 0) {
		p.errorf(n.Line, "%s: want a positive number, got %s", path, describe(n))
		return 0, false
	}
	return v, true
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
		p.setting("router_settings", f)
		if f.key != "model_group_alias" {
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

// settingNotes says, for the router_settings and litellm_settings keys
// LiteLLM users set most that the gateway does not apply, what it does
// instead (DESIGN §12 describes what it applies; keep this table in step
// with the router, and claim nothing it does not do).
var settingNotes = map[string]string{
	"routing_strategy_args":  "the strategies use their own fixed parameters",
	"max_retries":            "retries follow num_retries",
	"retry_policy":           "retries follow num_retries, whatever the error",
	"retry_after":            "a failed attempt moves on to the next deployment at once",
	"allowed_fails_policy":   "allowed_fails counts every kind of failure alike",
	"enable_pre_call_checks": "no context-window check picks the deployment; rpm and tpm caps do",
	"cache":                  "the gateway caches no responses",
	"cache_params":           "the gateway caches no responses",
	"cache_responses":        "the gateway caches no responses",
	"redis_host":             "the gateway shares no router state or cache through Redis: each replica routes on its own",
	"redis_port":             "the gateway shares no router state or cache through Redis: each replica routes on its own",
	"redis_password":         "the gateway shares no router state or cache through Redis: each replica routes on its own",
	"redis_url":              "the gateway shares no router state or cache through Redis: each replica routes on its own",
	"guardrails":             "the gateway runs no guardrails; a custom Rego policy can refuse calls",
	"drop_params":            "the gateway drops no request parameters",
	"success_callback":       "no LiteLLM callbacks; the gateway has its own decision log, metrics and traces",
	"failure_callback":       "no LiteLLM callbacks; the gateway has its own decision log, metrics and traces",
	"callbacks":              "no LiteLLM callbacks; the gateway has its own decision log, metrics and traces",
}

// setting records one router_settings or litellm_settings key in
// Config.Settings, applying the router settings (router.go).
func (p *parser) setting(section string, f field) {
	s := Setting{Line: f.line, Name: section + "." + f.key}
	if note, applied, ok := p.routerSetting(section, f); ok {
		s.Applied, s.Note = applied, note
		p.cfg.Settings = append(p.cfg.Settings, s)
		return
	}
	switch {
	case section == "router_settings" && f.key == "model_group_alias":
		s.Applied, s.Note = true, "global aliases"
	case settingNotes[f.key] != "":
		s.Note = settingNotes[f.key]
	default:
		s.Note = "not used by the gateway"
	}
	p.cfg.Settings = append(p.cfg.Settings, s)
}

// litellmSettings records the keys of litellm_settings, none of which the
// gateway applies. A section that is not a mapping is ignored with a
// warning, as LiteLLM fields are never errors.
func (p *parser) litellmSettings(f field) {
	n := deref(f.value)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.warnf(f.line, "litellm_settings: ignored (want a mapping, got %s)", describe(n))
		return
	}
	fields, _ := p.mapping(n, "litellm_settings")
	for _, sf := range fields {
		p.setting("litellm_settings", sf)
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
// A global alias whose target only unserved deployments would serve (or
// only aliases dropped so) is dropped with a warning rather than refused:
// the config must load (DESIGN §10.16).
func (p *parser) buildCatalog(idx *lineIndex) {
	// The closure holds what it reads, not the parser (and through it the
	// whole parsed file) for as long as the catalog lives.
	builtin, now := modelinfo.Builtin(), p.now
	for {
		c, err := catalog.NewWithInfo(p.cfg.Deployments, p.cfg.Aliases, func(provider, model string) (gateway.ModelInfo, bool) {
			return builtin.Info(provider, model, now)
		})
		if err != nil {
			p.catalogProblems(idx, err)
			return
		}
		drop := p.unservedAliases(c.CheckAliases(nil, nil), gateway.SourceGlobal, p.droppedGlobal)
		if len(drop) == 0 {
			p.cfg.Catalog = c
			break
		}
		kept := p.cfg.Aliases[:0]
		for _, a := range p.cfg.Aliases {
			if e, ok := drop[a.Name]; ok {
				p.warnf(p.aliasLine(idx, e), "router_settings.model_group_alias.%s: dropped: its target %q names only deployments that are not served", a.Name, e.Chain[1])
				continue
			}
			kept = append(kept, a)
		}
		p.cfg.Aliases = kept
	}
	p.warnUnpriced(idx, builtin)
	for _, e := range asList(p.cfg.Catalog.CheckAliases(nil, nil)) {
		line := idx.aliasesLine
		if ae, ok := e.(*catalog.AliasError); ok {
			line = p.aliasLine(idx, ae)
		}
		p.errorf(line, "router_settings.model_group_alias: %s", e.Error())
	}
}

func (p *parser) catalogProblems(idx *lineIndex, err error) {
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
}

// shadowCatalog keeps a catalog of the unserved deployments, used only to
// tell whether a name an alias or allow-list entry refers to is one they
// would serve. Deployments it refuses (malformed ones) are left out: they
// serve nothing in any case.
func (p *parser) shadowCatalog(unserved []gateway.Deployment) {
	var ok []gateway.Deployment
	for _, d := range unserved {
		d.ID = ""
		if strings.Count(d.ProviderModel, "*") <= strings.Count(d.ModelName, "*") {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return
	}
	if c, err := catalog.New(ok, nil); err == nil {
		p.cfg.unserved = c
	}
}

// unservedAliases returns, by alias name, the aliases of source whose
// target resolves to nothing served but to an unserved deployment or an
// alias already dropped (in dropped, which it extends).
func (p *parser) unservedAliases(err error, source string, dropped map[string]bool) map[string]*catalog.AliasError {
	var out map[string]*catalog.AliasError
	for _, e := range asList(err) {
		ae, ok := e.(*catalog.AliasError)
		if !ok || ae.Kind != catalog.AliasDangling || ae.Source != source || len(ae.Chain) != 2 {
			continue
		}
		if !p.cfg.servesNothingServed(ae.Chain[1]) && !dropped[ae.Chain[1]] {
			continue
		}
		if out == nil {
			out = make(map[string]*catalog.AliasError)
		}
		out[ae.Name] = ae
		dropped[ae.Name] = true
		p.cfg.droppedAliases[ae.Name] = true
	}
	return out
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
