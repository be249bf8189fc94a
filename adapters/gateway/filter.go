package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oidcproxy/oidcproxy/domain/policy"
)

// Filtering list answers. The answer to a tools/list, prompts/list or
// resources/list request loses the entries the caller may not call, so a
// caller sees only what it may use. Only the answer to a list request the
// gateway saw (and authorized) is touched, and only when the policy has a
// rule that could hide an entry of that kind (policy.MayHide): every other
// answer streams through as before, unbuffered.
//
// A JSON answer (application/json) is one JSON-RPC response: it is read
// whole, filtered and sent with its new length. An event stream
// (text/event-stream) also carries notifications: it is passed on event by
// event as each event completes, and only the event holding the response
// whose id is the list request's is rewritten; after it, the rest of the
// stream passes untouched.
//
// Filtering is one pass of the tokenizer over the answer. Each entry of
// the list is read as one value while its top-level "name" (tools,
// prompts) or "uri" (resources) is picked up on the way; an entry the
// caller may call is copied byte for byte, the others are left out. Every
// byte outside the list is kept as it was. When an answer cannot be
// filtered (it is not valid JSON, it is compressed, it is larger than
// maxListBytes), the client gets an error, never the unfiltered list.

// maxListBytes bounds a list answer the gateway reads to filter it, and an
// event of a stream being filtered. A list of a thousand tools with large
// schemas is a few megabytes.
const maxListBytes = 32 << 20

var (
	errDuplicate    = errors.New("a member of the list answer is given twice, or twice but for case")
	errListTooLarge = fmt.Errorf("the list answer is larger than %d bytes", maxListBytes)
	errListEncoded  = errors.New("the list answer is compressed")
	errListType     = errors.New("the list answer is neither JSON nor an event stream")
)

// listFilter is the filtering of one list answer for one caller.
type listFilter struct {
	ctx    context.Context
	policy *policy.Policy
	in     *policy.Input
	// kind is what the listed entries are; KindOther means any list the
	// policy may hide entries of, recognised by its key ("tools",
	// "prompts", "resources"), for a resumed stream whose request is not
	// known.
	kind policy.Kind
	// id is the list request's id as the client wrote it; nil matches any
	// response.
	id []byte
	// method is the list method, for metrics; "" when not known.
	method string
	hidden func(ctx context.Context, method string, n int)
}

// listKey is the member of a list result that holds the entries, and
// entryKey the member of an entry the policy decides on.
func listKey(k policy.Kind) (list, entry string) {
	switch k {
	case policy.KindTool:
		return "tools", "name"
	case policy.KindPrompt:
		return "prompts", "name"
	case policy.KindResource:
		return "resources", "uri"
	}
	return "", ""
}

// kindOfKey is listKey's inverse for the lists f may filter.
func (f *listFilter) kindOfKey(key string) policy.Kind {
	var k policy.Kind
	switch key {
	case "tools":
		k = policy.KindTool
	case "prompts":
		k = policy.KindPrompt
	case "resources":
		k = policy.KindResource
	default:
		return policy.KindOther
	}
	if f.kind == k || (f.kind == policy.KindOther && f.policy.MayHide(k)) {
		return k
	}
	return policy.KindOther
}

// filterMessage filters the JSON-RPC message data when it is a response f
// applies to, appending the result to out. matched is false, and out
// untouched, for any other message.
func (f *listFilter) filterMessage(data, out []byte) (res []byte, matched bool, err error) {
	d := getDecoder(data, duplicatesAllowed)
	defer putDecoder(d)
	dec := &d.dec
	if dec.PeekKind() != '{' {
		if err := skipValue(dec); err != nil {
			return out, false, err
		}
		return out, false, nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return out, false, err
	}
	var (
		idMatches          = f.id == nil
		seenID, seenResult bool
		start              = len(out)
		arrOpen, arrEnd    = -1, -1
		hidden             int
		kind               policy.Kind
	)
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return out[:start], false, err
		}
		switch k := key.String(); k {
		case "id":
			if seenID {
				return out[:start], false, errDuplicate
			}
			seenID = true
			v, err := dec.ReadValue()
			if err != nil {
				return out[:start], false, err
			}
			idMatches = idMatches || sameID(v, f.id)
		case "result":
			if seenResult {
				return out[:start], false, errDuplicate
			}
			seenResult = true
			if dec.PeekKind() != '{' {
				if err := skipValue(dec); err != nil {
					return out[:start], false, err
				}
				continue
			}
			out, arrOpen, arrEnd, hidden, kind, err = f.filterResult(dec, data, out)
			if err != nil {
				return out[:start], false, err
			}
		default:
			if foldsTo(k, "result") || foldsTo(k, "id") {
				return out[:start], false, errDuplicate
			}
			if err := skipValue(dec); err != nil {
				return out[:start], false, err
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return out[:start], false, err
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("data after the message")
		}
		return out[:start], false, err
	}
	if arrOpen < 0 || !idMatches {
		return out[:start], false, nil
	}
	// out holds the message up to the list's '[' and the kept entries.
	res = append(out, data[arrEnd:]...)
	if f.hidden != nil && hidden > 0 {
		method := f.method
		if method == "" {
			method = listMethod(kind)
		}
		f.hidden(f.ctx, method, hidden)
	}
	return res, true, nil
}

// listMethod is the method whose answer lists entries of kind k.
func listMethod(k policy.Kind) string {
	switch k {
	case policy.KindTool:
		return policy.MethodToolsList
	case policy.KindPrompt:
		return policy.MethodPromptsList
	case policy.KindResource:
		return policy.MethodResourcesList
	}
	return ""
}

// filterResult reads a result object. At its list, it appends to out the
// message up to the list's '[' and then the entries the caller may call,
// comma-separated. arrOpen is the offset in
// data just after the list's '[', arrEnd that of its ']'; both are -1 when
// the result has no list f applies to.
func (f *listFilter) filterResult(dec *jsontext.Decoder, data, out []byte) (_ []byte, arrOpen, arrEnd, hidden int, kind policy.Kind, err error) {
	arrOpen, arrEnd = -1, -1
	if _, err = dec.ReadToken(); err != nil {
		return out, -1, -1, 0, 0, err
	}
	seen := false
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return out, -1, -1, 0, 0, err
		}
		ks := key.String()
		k := f.kindOfKey(ks)
		switch {
		case k == policy.KindOther && f.variantOfListKey(ks):
			return out, -1, -1, 0, 0, errDuplicate
		case k != policy.KindOther && seen:
			// Two lists, or one twice: the client might read the one
			// not filtered.
			return out, -1, -1, 0, 0, errDuplicate
		case k != policy.KindOther:
			seen = true
		}
		if k == policy.KindOther || dec.PeekKind() != '[' {
			if err := skipValue(dec); err != nil {
				return out, -1, -1, 0, 0, err
			}
			continue
		}
		kind = k
		if _, err := dec.ReadToken(); err != nil {
			return out, -1, -1, 0, 0, err
		}
		arrOpen = int(dec.InputOffset())
		out = append(out, data[:arrOpen]...)
		out, hidden, err = f.filterEntries(dec, data, out, k)
		if err != nil {
			return out, -1, -1, 0, 0, err
		}
		if _, err := dec.ReadToken(); err != nil {
			return out, -1, -1, 0, 0, err
		}
		arrEnd = int(dec.InputOffset()) - 1
	}
	if _, err := dec.ReadToken(); err != nil {
		return out, -1, -1, 0, 0, err
	}
	return out, arrOpen, arrEnd, hidden, kind, nil
}

// variantOfListKey reports whether key names, but for case, a list f
// filters.
func (f *listFilter) variantOfListKey(key string) bool {
	for k := policy.KindTool; k <= policy.KindResource; k++ {
		if f.kind == k || (f.kind == policy.KindOther && f.policy.MayHide(k)) {
			if list, _ := listKey(k); foldsTo(key, list) {
				return true
			}
		}
	}
	return false
}

// filterEntries reads the entries of a list up to its ']', appending those
// the caller may call to out. An entry that is not an object, or has no
// string name (uri), cannot be called and is left out.
func (f *listFilter) filterEntries(dec *jsontext.Decoder, data, out []byte, k policy.Kind) ([]byte, int, error) {
	_, entryKey := listKey(k)
	first, hidden := true, 0
	for dec.PeekKind() != ']' {
		// The entry is copied from the input, between the offsets the
		// tokenizer reports around it (less the comma before it).
		start := int(dec.InputOffset())
		name, ok, err := entryName(dec, entryKey)
		if err != nil {
			return out, 0, err
		}
		entry := trimSeparator(data[start:dec.InputOffset()])
		if !ok || !f.policy.MayCall(f.ctx, f.in, k, name) {
			hidden++
			continue
		}
		if !first {
			out = append(out, ',')
		}
		out = append(out, entry...)
		first = false
	}
	return out, hidden, nil
}

// trimSeparator drops the whitespace and the comma before an entry: what
// bytes.TrimLeft does, without building its set of bytes for each entry.
func trimSeparator(b []byte) []byte {
	for len(b) > 0 {
		switch b[0] {
		case ' ', '\t', '\r', '\n', ',':
			b = b[1:]
		default:
			return b
		}
	}
	return b
}

// entryName reads one list entry and returns its top-level string member
// key; ok is false for an entry that is not an object, has no such
// member, or has a second member named key but for case (a client
// decoding with Go's encoding/json would take that one). The members'
// values are read as raw values: the tokenizer's fast path.
func entryName(dec *jsontext.Decoder, key string) (name string, ok bool, err error) {
	ambiguous := false
	if dec.PeekKind() != '{' {
		return "", false, skipValue(dec)
	}
	if _, err := dec.ReadToken(); err != nil {
		return "", false, err
	}
	for dec.PeekKind() != '}' {
		// Names and values are read as raw values, the tokenizer's
		// fastest path; a name is unquoted only when it has escapes.
		k, err := dec.ReadValue()
		if err != nil {
			return "", false, err
		}
		isKey := rawStringIs(k, key)
		if !isKey && len(k) > 1 && (k[1]|0x20 == key[0] || k[1] == '\\') {
			// Only a name starting like key (or with an escape) can
			// fold to it: see foldsTo.
			ambiguous = ambiguous || foldsTo(rawString(k), key)
		}
		v, err := dec.ReadValue()
		if err != nil {
			return "", false, err
		}
		if isKey && len(v) > 0 && v[0] == '"' {
			// The decoder lets member names repeat here (see
			// duplicatesAllowed): a second name is as ambiguous as a
			// "Name".
			ambiguous = ambiguous || ok
			name, ok = rawString(v), true
		}
	}
	_, err = dec.ReadToken()
	return name, ok && !ambiguous, err
}

// rawStringIs reports whether the JSON string q (quotes included, as the
// tokenizer validated it) is s.
func rawStringIs(q []byte, s string) bool {
	if len(q) == len(s)+2 && string(q[1:len(q)-1]) == s {
		return true
	}
	return bytes.IndexByte(q, '\\') >= 0 && rawString(q) == s
}

// rawString is the value of the JSON string q (quotes included).
func rawString(q []byte) string {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1])
	}
	b, err := jsontext.AppendUnquote(nil, q)
	if err != nil {
		return ""
	}
	return string(b)
}

// sameID reports whether two JSON-RPC ids are the same: equal strings, or
// equal numbers however written (7 and 7.0), as JSON-RPC compares them.
func sameID(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	switch {
	case a[0] == '"' && b[0] == '"':
		ua, err1 := jsontext.AppendUnquote(nil, a)
		ub, err2 := jsontext.AppendUnquote(nil, b)
		return err1 == nil && err2 == nil && bytes.Equal(ua, ub)
	case a[0] != '"' && b[0] != '"' && a[0] != 'n' && b[0] != 'n':
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(b), 64)
		return err1 == nil && err2 == nil && x == y
	}
	return false
}

// filterResponse is the part of ReverseProxy's ModifyResponse hook that
// filters the answer to a list request. An error makes ReverseProxy answer
// 502: the client never gets a list that could not be filtered.
func (g *Gateway) filterResponse(resp *http.Response) error {
	f, ok := resp.Request.Context().Value(forwardKey{}).(*forward)
	if !ok || !f.filtering || resp.StatusCode != http.StatusOK || resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// The request went out without the client's Accept-Encoding.
		return fmt.Errorf("gateway: filter list answer: %w", errListEncoded)
	}
	ct := resp.Header.Get("Content-Type")
	switch {
	case isEventStream(ct):
		resp.Body = &sseFilter{src: resp.Body, f: &f.list}
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		return nil
	case isJSON(ct):
	default:
		return fmt.Errorf("gateway: filter list answer: %w", errListType)
	}
	// In a JSON answer, the one response is the list request's, whatever
	// id it carries.
	f.list.id = nil
	out, err := f.list.filterJSON(resp.Body, resp.ContentLength)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("gateway: filter list answer: %w", err)
	}
	body := &listBody{buf: out}
	body.Reset(out)
	resp.Body = body
	resp.ContentLength = int64(len(out))
	resp.Header["Content-Length"] = []string{strconv.Itoa(len(out))}
	return nil
}

// filterJSON reads a JSON answer of length bytes (-1: unknown) from r
// and returns it filtered, in a buffer from the pool.
func (f *listFilter) filterJSON(r io.Reader, length int64) ([]byte, error) {
	if length > maxListBytes {
		return nil, errListTooLarge
	}
	in, err := readBounded(getBuffer(int(max(length, 0))), r)
	if err != nil {
		putBuffer(in)
		return nil, err
	}
	out, matched, err := f.filterMessage(in, getBuffer(len(in)))
	switch {
	case err != nil:
		putBuffer(in)
		putBuffer(out)
		return nil, err
	case !matched:
		putBuffer(out)
		return in, nil
	}
	putBuffer(in)
	return out, nil
}

// readBounded appends all of r to buf, failing beyond maxListBytes.
func readBounded(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(sseReadSize, len(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case len(buf) > maxListBytes:
			return buf, errListTooLarge
		case errors.Is(err, io.EOF):
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

// listBody is a filtered JSON answer; closing it recycles its buffer.
type listBody struct {
	bytes.Reader
	buf []byte
}

// Close implements io.Closer.
func (b *listBody) Close() error {
	buf := b.buf
	b.buf = nil
	b.Reset(nil)
	putBuffer(buf)
	return nil
}

// maxPooledBuffer bounds the buffers kept for reuse, so that one huge list
// does not pin its memory.
const maxPooledBuffer = 1 << 20

// listBuffers recycles the buffers of list answers and event streams
// being filtered: a list answer is tens of kilobytes, and allocating them
// afresh for every list costs more garbage collection than the filtering
// itself.
var listBuffers sync.Pool

// getBuffer returns an empty buffer of capacity n or more.
func getBuffer(n int) []byte {
	if b, ok := listBuffers.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, max(n, sseReadSize))
}

// putBuffer recycles b, which its owner no longer uses.
func putBuffer(b []byte) {
	if b == nil || cap(b) > maxPooledBuffer {
		return
	}
	listBuffers.Put(&b)
}

// isJSON reports an application/json media type, parameters allowed.
func isJSON(ct string) bool {
	const mt = "application/json"
	if len(ct) < len(mt) || !strings.EqualFold(ct[:len(mt)], mt) {
		return false
	}
	rest := strings.TrimLeft(ct[len(mt):], " \t")
	return rest == "" || rest[0] == ';'
}

// modifyResponse is ReverseProxy's ModifyResponse hook: filtering first,
// so that the byte count is what the client receives.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	if err := g.filterResponse(resp); err != nil {
		return err
	}
	return g.observeResponse(resp)
}
