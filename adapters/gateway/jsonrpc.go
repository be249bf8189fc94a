package gateway

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// Reading JSON-RPC messages. The gateway decides on the request body it
// already holds (body.go), in one pass of a streaming tokenizer that
// copies nothing but the method and the name: no unmarshalling into
// structures, no second parse. The reading is strict where leniency would
// let the gateway and the MCP server read different things out of one
// body: a member the gateway reads given twice (one reader takes the
// first, another the last), invalid UTF-8 (one reader replaces it, another
// refuses it), and anything after the message are all refused as parse
// errors; a member whose name differs from one the gateway reads only in
// case ("Method", "NAME", or "paramſ" with a long s) as an invalid
// request: Go's encoding/json matches struct fields case-insensitively,
// and a server decoding with it would take
// {"name":"search","Name":"delete_all"} for a call of delete_all that the
// gateway authorized as search.

// rpcKind is what a JSON-RPC message is.
type rpcKind uint8

const (
	rpcRequest      rpcKind = iota + 1 // a method and an id
	rpcNotification                    // a method and no id
	rpcResponse                        // a result or an error, and an id
)

// rpcMessage is what the gateway reads of one JSON-RPC message.
type rpcMessage struct {
	kind   rpcKind
	method string
	// name is params.name of tools/call and prompts/get, or params.uri of
	// resources/read and resources/subscribe: what the policy decides on.
	// Empty for other methods.
	name string
	// id is the id exactly as the body wrote it, a slice of the body; nil
	// when the message has none.
	id []byte
}

// Headers of the MCP Streamable HTTP transport (2026-07-28) that mirror
// the body, so that intermediaries can route without parsing it.
const (
	headerMethod = "Mcp-Method" // the JSON-RPC method
	headerName   = "Mcp-Name"   // params.name or params.uri
)

// The Base64 form of a mirrored header value that is not plain ASCII
// (MCP 2026-07-28, Streamable HTTP, "Value Encoding").
const (
	base64Prefix = "=?base64?"
	base64Suffix = "?="
)

// JSON-RPC error codes of the gateway's answers, besides the transport
// ones in proxy.go.
const (
	rpcParseError    = -32700
	rpcInvalidParams = -32602
	// rpcHeaderMismatch is MCP's HeaderMismatch (2026-07-28): the mirrored
	// headers disagree with the body.
	rpcHeaderMismatch = -32020
	// rpcForbidden answers a request the policy refused. MCP reserves
	// -32000 to -32099 and asks for application codes outside the JSON-RPC
	// range; the HTTP status (403) and, for missing scopes, the challenge
	// are what clients act on.
	rpcForbidden = -31403
)

// rpcFault is why a request body is not a message the gateway can decide
// on; it becomes a 400 answer with a JSON-RPC error.
type rpcFault struct {
	code    int
	message string
}

var (
	faultParse     = &rpcFault{rpcParseError, "Parse error: the request body is not valid JSON"}
	faultBatch     = &rpcFault{rpcInvalidRequest, "Invalid Request: JSON-RPC batches are not supported"}
	faultNotObject = &rpcFault{rpcInvalidRequest, "Invalid Request: the request body is not a JSON-RPC message"}
	faultVersion   = &rpcFault{rpcInvalidRequest, `Invalid Request: "jsonrpc" must be "2.0"`}
	faultMethod    = &rpcFault{rpcInvalidRequest, `Invalid Request: "method" must be a string`}
	faultID        = &rpcFault{rpcInvalidRequest, `Invalid Request: "id" must be a string or a number`}
	faultShape     = &rpcFault{rpcInvalidRequest, "Invalid Request: the body is neither a request, a notification nor a response"}
	faultName      = &rpcFault{rpcInvalidParams, "Invalid params: the method needs params.name, a string"}
	faultURI       = &rpcFault{rpcInvalidParams, "Invalid params: the method needs params.uri, a string"}
	faultURIPath   = &rpcFault{rpcInvalidParams, "Invalid params: params.uri has a dot segment or a percent-encoded dot, slash or backslash, which the gateway does not pass"}
	faultCase      = &rpcFault{rpcInvalidRequest, "Invalid Request: a member name differs from a JSON-RPC or MCP name only in case"}
	faultDuplicate = &rpcFault{rpcParseError, "Parse error: a member name is given twice"}
)

// jsonDecoder is a pooled streaming tokenizer over an in-memory document.
type jsonDecoder struct {
	dec jsontext.Decoder
	src bytes.Buffer
}

var decoders = sync.Pool{New: func() any { return new(jsonDecoder) }}

// getDecoder returns a decoder reading data. Reading from a bytes.Buffer,
// the tokenizer works on data itself, without copying it, so the input
// offsets it reports index data.
func getDecoder(data []byte, opts ...jsontext.Options) *jsonDecoder {
	d := decoders.Get().(*jsonDecoder)
	d.src = *bytes.NewBuffer(data)
	d.dec.Reset(&d.src, opts...)
	return d
}

// duplicatesAllowed lets the tokenizer accept member names given twice.
// Checking every object of a tool call's arguments or a tool's schema for
// repeated names costs a fifth of the reading, and a repeated name deep in
// them decides nothing: the gateway refuses the repeats that matter itself
// (in a request the JSON-RPC members, params.name and params.uri; in a
// list answer the id, the result, the list, an entry's name).
var duplicatesAllowed = jsontext.AllowDuplicateNames(true)

// putDecoder recycles d, without keeping its document alive.
func putDecoder(d *jsonDecoder) {
	d.src = bytes.Buffer{}
	d.dec.Reset(&d.src)
	decoders.Put(d)
}

// readMessage reads the JSON-RPC message of a request body.
func readMessage(body []byte) (rpcMessage, *rpcFault) {
	d := getDecoder(body, duplicatesAllowed)
	defer putDecoder(d)
	return d.readMessage(body)
}

// params is what readMessage keeps of a message's params.
type params struct {
	name, uri       string
	hasName, hasURI bool
}

func (d *jsonDecoder) readMessage(body []byte) (rpcMessage, *rpcFault) {
	var msg rpcMessage
	dec := &d.dec
	switch dec.PeekKind() {
	case '{':
	case '[':
		return msg, faultBatch
	case 0:
		return msg, faultParse
	default:
		if err := skipValue(dec); err != nil {
			return msg, faultParse
		}
		return msg, faultNotObject
	}
	if _, err := dec.ReadToken(); err != nil {
		return msg, faultParse
	}
	var (
		p                    params
		hasMethod, outcome   bool
		version, badVersion  bool
		methodBad, idPresent bool
		idBad                bool
		seen                 memberSet
	)
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return msg, faultParse
		}
		k := key.String()
		if !seen.add(k, topLevelNames) {
			return rpcMessage{}, faultDuplicate
		}
		switch k {
		case "jsonrpc":
			version = true
			v, isString, err := readString(dec)
			if err != nil {
				return msg, faultParse
			}
			badVersion = !isString || v != "2.0"
		case "method":
			hasMethod = true
			v, isString, err := readString(dec)
			if err != nil {
				return msg, faultParse
			}
			methodBad, msg.method = !isString, v
		case "id":
			v, err := dec.ReadValue()
			if err != nil {
				return msg, faultParse
			}
			idPresent = true
			switch v.Kind() {
			case '"', '0', 'n':
				end := int(dec.InputOffset())
				msg.id = body[end-len(v) : end : end]
			default:
				idBad = true
			}
		case "params":
			variant, err := readParams(dec, &p)
			switch {
			case errors.Is(err, errRepeated):
				return rpcMessage{}, faultDuplicate
			case err != nil:
				return msg, faultParse
			case variant:
				return rpcMessage{}, faultCase
			}
		case "result", "error":
			outcome = true
			if err := skipValue(dec); err != nil {
				return msg, faultParse
			}
		default:
			if caseVariant(k, topLevelNames) {
				return rpcMessage{}, faultCase
			}
			if err := skipValue(dec); err != nil {
				return msg, faultParse
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return msg, faultParse
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		// Trailing data, or a second message: the server might read it.
		return rpcMessage{}, faultParse
	}
	switch {
	case !version || badVersion:
		return msg, faultVersion
	case idBad:
		return rpcMessage{}, faultID
	case methodBad:
		return msg, faultMethod
	case hasMethod && idPresent:
		msg.kind = rpcRequest
	case hasMethod:
		msg.kind = rpcNotification
	case outcome && idPresent:
		msg.kind = rpcResponse
		return msg, nil
	default:
		return msg, faultShape
	}
	switch policy.KindOf(msg.method) {
	case policy.KindTool, policy.KindPrompt:
		if !p.hasName {
			return msg, faultName
		}
		msg.name = p.name
	case policy.KindResource:
		if !p.hasURI {
			return msg, faultURI
		}
		if !plainResourceURI(p.uri) {
			return msg, faultURIPath
		}
		msg.name = p.uri
	}
	return msg, nil
}

// plainResourceURI reports whether a resource URI names what its bytes
// say. Rules match resource URIs as written, while a backend may resolve
// "docs://public/../private/payroll" (or its %2e%2e form) to a resource no
// rule allows; the gateway refuses dot segments, as it does in its own
// paths, and the percent-encoded forms of ".", "/" and "\" rather than
// guess how each backend decodes them.
func plainResourceURI(uri string) bool {
	if hasDotSegment(uri) {
		return false
	}
	for i := 0; i+2 < len(uri); i++ {
		if uri[i] != '%' {
			continue
		}
		switch hex := strings.ToLower(uri[i+1 : i+3]); hex {
		case "2e", "2f", "5c":
			return false
		}
	}
	return true
}

// readParams reads params.name and params.uri, when they are strings, and
// skips everything else; variant reports a member named like one of them
// but for case.
func readParams(dec *jsontext.Decoder, p *params) (variant bool, err error) {
	if dec.PeekKind() != '{' {
		return false, skipValue(dec)
	}
	if _, err := dec.ReadToken(); err != nil {
		return false, err
	}
	var seen memberSet
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return false, err
		}
		k := key.String()
		if !seen.add(k, paramNames) {
			return false, errRepeated
		}
		var dst *string
		var ok *bool
		switch k {
		case "name":
			dst, ok = &p.name, &p.hasName
		case "uri":
			dst, ok = &p.uri, &p.hasURI
		default:
			variant = variant || caseVariant(k, paramNames)
		}
		if dst == nil {
			if err := skipValue(dec); err != nil {
				return false, err
			}
			continue
		}
		v, isString, err := readString(dec)
		if err != nil {
			return false, err
		}
		if isString {
			*dst, *ok = v, true
		}
	}
	_, err = dec.ReadToken()
	return variant, err
}

// readString reads the next value: its text when it is a string
// (isString), and skips it otherwise.
func readString(dec *jsontext.Decoder) (v string, isString bool, err error) {
	if dec.PeekKind() != '"' {
		return "", false, skipValue(dec)
	}
	t, err := dec.ReadToken()
	if err != nil {
		return "", false, err
	}
	return t.String(), true, nil
}

// errRepeated is a member the gateway reads given twice.
var errRepeated = errors.New("a member name is given twice")

// memberSet records which of a list of member names (at most 8) an object
// has had, to refuse a name given twice: the tokenizer lets names repeat
// (duplicatesAllowed), because checking every object of a tool's
// arguments for repeats would cost more than reading the message, and
// only the names the gateway reads decide anything.
type memberSet uint8

// add records k and reports false when k is one of names and was seen.
func (s *memberSet) add(k string, names []string) bool {
	for i, n := range names {
		if k == n {
			bit := memberSet(1) << i
			if *s&bit != 0 {
				return false
			}
			*s |= bit
			return true
		}
	}
	return true
}

// The member names the gateway reads, which no other member may equal but
// for case.
var (
	topLevelNames = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	paramNames    = []string{"name", "uri"}
)

// caseVariant reports whether k equals one of names under Unicode case
// folding (as encoding/json matches struct fields) without being it. It
// runs on every member name the gateway skips, so it first compares the
// first letter: none of the names starts with a letter that folds to a
// non-ASCII one, and the folds of 'k' and 's' (the Kelvin sign, the long
// s) occur only later in them.
func caseVariant(k string, names []string) bool {
	for _, n := range names {
		if foldsTo(k, n) {
			return true
		}
	}
	return false
}

// foldsTo is caseVariant for one name.
func foldsTo(k, name string) bool {
	return k != "" && k[0]|0x20 == name[0] && k != name && strings.EqualFold(k, name)
}

// skipValue reads past the next value. The decoder's SkipValue walks an
// object or array token by token; reading it as one raw value checks it
// just as strictly and is several times faster.
func skipValue(dec *jsontext.Decoder) error {
	_, err := dec.ReadValue()
	return err
}

// hasMirrors reports whether the request carries the headers that mirror
// its body.
func hasMirrors(h http.Header) bool {
	return h[headerMethod] != nil || h[headerName] != nil
}

// checkMirrors compares the Mcp-Method and Mcp-Name headers, where
// present, with the message, and returns why they disagree ("" when they
// agree). The gateway decides on the body, but the MCP server or another
// intermediary behind it may route on the headers: a request whose
// headers say one thing and whose body another is refused, as the MCP
// specification requires of everyone who processes the body. A missing
// header is left to the server, which the specification charges with
// refusing it; Mcp-Name is compared only for the methods whose name the
// policy decides on.
func checkMirrors(h http.Header, msg *rpcMessage) string {
	if v, ok := h[headerMethod]; ok {
		switch {
		case len(v) != 1:
			return "Header mismatch: more than one Mcp-Method header"
		case msg.kind == rpcResponse:
			return "Header mismatch: an Mcp-Method header on a message that is not a request"
		case v[0] != msg.method:
			return "Header mismatch: the Mcp-Method header does not match the method of the body"
		}
	}
	kind := policy.KindOf(msg.method)
	if v, ok := h[headerName]; ok && kind != policy.KindOther {
		if len(v) != 1 {
			return "Header mismatch: more than one Mcp-Name header"
		}
		name, ok := decodeMirror(v[0])
		switch {
		case !ok:
			return "Header mismatch: the Mcp-Name header is not valid Base64 between =?base64? and ?="
		case name != msg.name && kind == policy.KindResource:
			return "Header mismatch: the Mcp-Name header does not match params.uri of the body"
		case name != msg.name:
			return "Header mismatch: the Mcp-Name header does not match params.name of the body"
		}
	}
	return ""
}

// decodeMirror decodes a mirrored header value: as written, or the UTF-8
// bytes Base64-encoded between =?base64? and ?= (a name that is not plain
// ASCII, or that itself looks like that form).
func decodeMirror(v string) (string, bool) {
	if len(v) < len(base64Prefix)+len(base64Suffix) ||
		!strings.HasPrefix(v, base64Prefix) || !strings.HasSuffix(v, base64Suffix) {
		return v, true
	}
	b, err := base64.StdEncoding.Strict().DecodeString(v[len(base64Prefix) : len(v)-len(base64Suffix)])
	if err != nil {
		return "", false
	}
	return string(b), true
}

// rpcErrorBody is a JSON-RPC error response: id is the request's id as
// written (nil for null).
func rpcErrorBody(id []byte, code int, message string) []byte {
	b := make([]byte, 0, 64+len(id)+len(message))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, id...)
	}
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b, _ = jsontext.AppendQuote(b, message) // a valid UTF-8 string cannot fail
	return append(b, "}}"...)
}

// maxNameInText bounds a tool name or URI quoted in an answer or a log
// record: it is the client's own input, up to MaxBodyBytes long.
const maxNameInText = 256

// shorten cuts s to at most maxNameInText bytes, at a character boundary.
func shorten(s string) string {
	if len(s) <= maxNameInText {
		return s
	}
	cut := maxNameInText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
