package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// maxSecretFileSize bounds a secret file: a mistyped path to a large file
// should fail fast rather than be read into a client secret.
const maxSecretFileSize = 64 << 10

// Load reads every source. args are the arguments after the subcommand;
// getenv is os.Getenv in production; sections are the providers' own
// settings, filled from the same sources (see Sections). It parses but does
// not validate: call Validate on the result. Positional arguments are an
// error. Asking for help (-h) prints the flags to standard error and
// returns an error wrapping flag.ErrHelp.
func Load(args []string, getenv func(string) string, sections Sections) (Config, error) {
	fs := flag.NewFlagSet("oidcproxy", flag.ContinueOnError)
	cfg, err := LoadFlags(fs, args, getenv, sections)
	if err != nil {
		return Config{}, err
	}
	if n := fs.NArg(); n > 0 {
		// The arguments are not quoted back: a stray word is most often the
		// second half of an unquoted secret.
		return Config{}, fmt.Errorf("config: %d unexpected argument(s) after the flags; every setting is a --flag", n)
	}
	return cfg, nil
}

// LoadFlags is Load with a flag set the caller owns: it defines one flag
// per setting, the sections' included (and --config, and --<secret>-file)
// on fs, parses args with it, and leaves positional arguments in fs.Args()
// for the caller. It fails without parsing when fs already defines one of
// those names.
func LoadFlags(fs *flag.FlagSet, args []string, getenv func(string) string, sections Sections) (Config, error) {
	if fs == nil || getenv == nil {
		return Config{}, errors.New("config: load: flag set and getenv are required")
	}
	l, err := newLoader(sections)
	if err != nil {
		return Config{}, err
	}
	flags, err := defineFlags(fs, l.bound)
	if err != nil {
		return Config{}, err
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: parse flags: %w", err)
	}

	l.defaults()
	path := getenv(ConfigEnv)
	if flags.config.set() {
		path = flags.config.last()
	}
	if path != "" {
		if err := l.file(path); err != nil {
			return Config{}, err
		}
	}
	l.env(getenv)
	l.flags(flags)
	if len(l.errs) > 0 {
		return Config{}, fmt.Errorf("config: load (%s):\n%w", problems(len(l.errs)), errors.Join(l.errs...))
	}

	// BASE_URL is a prefix for the endpoint URLs, so a trailing slash would
	// only produce "//" in them. ISSUER_URL, in contrast, is kept exactly as
	// given: clients compare it byte for byte.
	l.cfg.BaseURL = strings.TrimRight(l.cfg.BaseURL, "/")
	if l.cfg.IssuerURL == "" {
		l.cfg.IssuerURL = l.cfg.BaseURL
	}
	if len(l.sections) > 0 {
		l.cfg.ProviderSections = l.sections
	}
	return l.cfg, nil
}

// flagValue records the raw text of a flag; parsing happens later so that
// every bad flag is reported together with every other problem.
type flagValue struct {
	isBool bool
	values []string
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return strings.Join(v.values, ",")
}

func (v *flagValue) Set(s string) error {
	v.values = append(v.values, s)
	return nil
}

// IsBoolFlag lets boolean settings be given as a bare --strict.
func (v *flagValue) IsBoolFlag() bool { return v.isBool }

func (v *flagValue) set() bool    { return len(v.values) > 0 }
func (v *flagValue) last() string { return v.values[len(v.values)-1] }

// raw returns the flag's text: repeated list and map flags accumulate
// (--required-scopes a --required-scopes b), other flags keep the last.
func (v *flagValue) raw(typ string) string {
	if typ == typeList || typ == typeMap {
		return strings.Join(v.values, ",")
	}
	return v.last()
}

type definedFlags struct {
	config *flagValue
	values map[int]*flagValue // by position in the loader's bound settings
	files  map[int]*flagValue // the same, secrets only
}

func defineFlags(fs *flag.FlagSet, bound []binding) (definedFlags, error) {
	d := definedFlags{config: &flagValue{}, values: map[int]*flagValue{}, files: map[int]*flagValue{}}
	define := func(v *flagValue, name, usage string) error {
		if fs.Lookup(name) != nil {
			return fmt.Errorf("config: define flags: flag -%s is already defined", name)
		}
		fs.Var(v, name, usage)
		return nil
	}
	if err := define(d.config, ConfigFlag, fmt.Sprintf("Read settings from the YAML file at `path` (env %s).", ConfigEnv)); err != nil {
		return d, err
	}
	for i, b := range bound {
		s := b.spec
		v := &flagValue{isBool: s.Type == typeBool}
		// The flag package prints a back-quoted word as the value's
		// placeholder (-access-token-ttl duration) instead of "value".
		usage := fmt.Sprintf("%s (`%s`, env %s", s.Help, s.Type, s.Env)
		if s.Type == typeBool {
			usage = fmt.Sprintf("%s (env %s", s.Help, s.Env)
		}
		if s.Default != "" {
			usage += fmt.Sprintf(", default %s", s.Default)
		}
		usage += ")"
		if s.Secret {
			usage += fmt.Sprintf(" Prefer --%s: other local users can read command lines.", s.FileFlag)
		}
		if err := define(v, s.Flag, usage); err != nil {
			return d, err
		}
		d.values[i] = v
		if s.Secret {
			fv := &flagValue{}
			usage := fmt.Sprintf("Read --%s from the file at `path`, trailing newlines trimmed (env %s).", s.Flag, s.FileEnv)
			if err := define(fv, s.FileFlag, usage); err != nil {
				return d, err
			}
			d.files[i] = fv
		}
	}
	return d, nil
}

// loader applies the sources in increasing precedence onto cfg and the
// sections, collecting every problem instead of stopping at the first.
type loader struct {
	cfg      Config
	sections map[string]any // by provider name
	bound    []binding      // every setting, Config's first
	errs     []error
}

// binding is a setting and the struct field it sets.
type binding struct {
	spec
	dst reflect.Value
}

// newLoader binds every setting of Config and of a new section per
// provider to the field it sets.
func newLoader(sections Sections) (*loader, error) {
	sc, err := newSchema(sections)
	if err != nil {
		return nil, err
	}
	l := &loader{sections: sc.sections}
	structs := map[string]reflect.Value{"": reflect.ValueOf(&l.cfg).Elem()}
	for name, section := range sc.sections {
		structs[name] = reflect.ValueOf(section).Elem()
	}
	for _, s := range sc.specs {
		l.bound = append(l.bound, binding{spec: s, dst: structs[s.Provider].Field(s.index)})
	}
	return l, nil
}

func (l *loader) fail(s spec, origin, format string, args ...any) {
	l.errs = append(l.errs, &SettingError{Setting: s.Env, Problem: origin + ": " + fmt.Sprintf(format, args...)})
}

func (l *loader) defaults() {
	for _, b := range l.bound {
		if b.Default != "" {
			l.setRaw(b, "default", b.Default)
		}
	}
}

func (l *loader) env(getenv func(string) string) {
	for _, b := range l.bound {
		s := b.spec
		value := getenv(s.Env)
		var file string
		if s.Secret {
			file = getenv(s.FileEnv)
		}
		switch {
		case value != "" && file != "":
			l.fail(s, "environment", "both %s and %s are set; set only one", s.Env, s.FileEnv)
		case file != "":
			l.setFile(b, "environment "+s.FileEnv, file)
		case value != "":
			l.setRaw(b, "environment", value)
		}
	}
}

func (l *loader) flags(d definedFlags) {
	for i, b := range l.bound {
		s := b.spec
		value := d.values[i]
		file, hasFile := d.files[i]
		switch {
		case value.set() && hasFile && file.set():
			l.fail(s, "flags", "both --%s and --%s are given; set only one", s.Flag, s.FileFlag)
		case hasFile && file.set():
			l.setFile(b, "flag --"+s.FileFlag, file.last())
		case value.set():
			l.setRaw(b, "flag --"+s.Flag, value.raw(s.Type))
		}
	}
}

// file applies the YAML file at path. Problems with individual keys are
// collected; an unreadable or unparsable file ends loading at once.
func (l *loader) file(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: read config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("config: parse config file %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: parse config file %s: it must hold exactly one YAML document", path)
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config: parse config file %s: line %d: the top level must be a mapping of setting names to values", path, root.Line)
	}

	byKey := map[string]*yaml.Node{}
	known := map[string]bool{}
	for _, b := range l.bound {
		known[b.YAML] = true
		if b.Secret {
			known[b.FileYAML] = true
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := resolve(root.Content[i]), resolve(root.Content[i+1])
		where := fmt.Sprintf("config file %s line %d", path, key.Line)
		switch {
		case key.Kind != yaml.ScalarNode:
			l.errs = append(l.errs, fmt.Errorf("%s: a setting name must be a plain string", where))
		case !known[key.Value]:
			// Strict on purpose: a misspelt key silently falling back to a
			// default is how insecure deployments happen.
			l.errs = append(l.errs, fmt.Errorf("%s: unknown setting %q", where, key.Value))
		case byKey[key.Value] != nil:
			l.errs = append(l.errs, fmt.Errorf("%s: setting %q appears twice", where, key.Value))
		default:
			byKey[key.Value] = value
		}
	}

	dir := filepath.Dir(path)
	for _, b := range l.bound {
		s := b.spec
		value, file := byKey[s.YAML], (*yaml.Node)(nil)
		if s.Secret {
			file = byKey[s.FileYAML]
		}
		hasValue, hasFile := value != nil && !isNull(value), file != nil && !isNull(file)
		switch {
		case hasValue && hasFile:
			l.fail(s, fmt.Sprintf("config file %s line %d", path, value.Line),
				"both %s and %s are set; set only one", s.YAML, s.FileYAML)
		case hasFile:
			origin := fmt.Sprintf("config file %s line %d (%s)", path, file.Line, s.FileYAML)
			if file.Kind != yaml.ScalarNode || file.Value == "" {
				l.fail(s, origin, "must be a file path")
				continue
			}
			p := file.Value
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			l.setFile(b, origin, p)
		case hasValue:
			l.setNode(b, fmt.Sprintf("config file %s line %d", path, value.Line), value)
		}
	}
	return nil
}

// resolve follows YAML aliases (*name) to the node they refer to.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// setNode sets a field from a YAML value. Scalars use the same text parsing
// as flags and environment variables, so "90s" or "true" mean the same in
// every source; lists may also be sequences and maps must be mappings.
func (l *loader) setNode(b binding, origin string, n *yaml.Node) {
	s, f := b.spec, b.dst
	switch {
	case s.Type == typeList && n.Kind == yaml.SequenceNode:
		list := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			item = resolve(item)
			if item.Kind != yaml.ScalarNode {
				l.fail(s, origin, "list items must be plain values")
				return
			}
			if v := strings.TrimSpace(item.Value); v != "" {
				list = append(list, v)
			}
		}
		f.Set(reflect.ValueOf(list))
	case s.Type == typeMap:
		if n.Kind != yaml.MappingNode {
			l.fail(s, origin, "must be a mapping of parameter names to values")
			return
		}
		m := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || k.Value == "" {
				l.fail(s, origin, "must map non-empty names to plain values")
				return
			}
			if _, dup := m[k.Value]; dup {
				l.fail(s, origin, "parameter %q appears twice", k.Value)
				return
			}
			m[k.Value] = v.Value
		}
		f.Set(reflect.ValueOf(m))
	case n.Kind != yaml.ScalarNode:
		if s.Type == typeList {
			l.fail(s, origin, "must be a list or a comma-separated string")
		} else {
			l.fail(s, origin, "must be a single value")
		}
	default:
		l.setRaw(b, origin, n.Value)
	}
}

// setFile sets a secret from a file, trimming trailing newlines.
func (l *loader) setFile(b binding, origin, path string) {
	value, err := readSecretFile(path)
	if err != nil {
		l.fail(b.spec, origin, "%v", err)
		return
	}
	b.dst.SetString(value)
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	if len(data) > maxSecretFileSize {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", path, maxSecretFileSize)
	}
	value := strings.TrimRight(string(data), "\r\n")
	if value == "" {
		// An empty mounted secret must not silently turn into "unset": for
		// ENCRYPTION_KEY that would generate a fresh key file.
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return value, nil
}

// setRaw parses text from a flag, an environment variable, a default or a
// YAML scalar into the field. Parse errors quote the text, which is safe
// because secrets are plain strings and never fail to parse.
func (l *loader) setRaw(b binding, origin, raw string) {
	s, f := b.spec, b.dst
	switch s.Type {
	case typeString:
		f.SetString(raw)
	case typeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			l.fail(s, origin, "%q is not a boolean (use true or false)", raw)
			return
		}
		f.SetBool(b)
	case typeInt:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			l.fail(s, origin, "%q is not a whole number", raw)
			return
		}
		f.SetInt(int64(n))
	case typeDuration:
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			l.fail(s, origin, "%q is not a Go duration such as 90s, 15m or 1h", raw)
			return
		}
		f.SetInt(int64(d))
	case typeList:
		f.Set(reflect.ValueOf(splitList(raw)))
	case typeMap:
		m, err := parseMap(raw)
		if err != nil {
			l.fail(s, origin, "%v", err)
			return
		}
		f.Set(reflect.ValueOf(m))
	default:
		l.fail(s, origin, "setting has %s, which the loader cannot parse", s.Type)
	}
}

// splitList splits on commas and white space: operators write scopes the
// OAuth way ("openid email") and patterns the env-var way ("a,b").
func splitList(raw string) []string {
	return strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// parseMap parses "k=v,k2=v2". Values cannot contain commas; YAML mappings
// have no such limit.
func parseMap(raw string) (map[string]string, error) {
	m := map[string]string{}
	for _, entry := range strings.Split(raw, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %q is not of the form name=value", entry)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("parameter %q appears twice", k)
		}
		m[k] = strings.TrimSpace(v)
	}
	return m, nil
}
