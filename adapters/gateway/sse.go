package gateway

import (
	"bytes"
	"io"
	"slices"
)

// sseFilter passes a Server-Sent Events stream on event by event and
// filters the list answer in it (see filter.go). An event is held only
// until its blank line arrives; once the list answer has gone out, the
// rest of the stream is passed on as it is read.
//
// The event stream format (WHATWG HTML, "Server-sent events"): lines end
// with CRLF, LF or CR; an event ends with a blank line; "data:" lines
// carry the event's data, joined with LF; one space after the colon is
// not part of the value. The rewritten event keeps the other lines of the
// original (id, event, retry, comments) and carries the filtered message
// in data lines.
type sseFilter struct {
	src io.ReadCloser
	f   *listFilter
	// in holds bytes read but not passed on: the beginning of an event.
	in []byte
	// scan is where the search for the end of the event in in resumes:
	// the start of its last line, which has not ended yet; in[scan:clean]
	// holds no line ending, so the search for one resumes at clean.
	scan, clean int
	// out holds bytes ready for the client, a slice of outBuf or in.
	out, outBuf []byte
	// data and msg are scratch space for an event's data and its
	// filtered message.
	data, msg []byte
	// done is set once the list answer went out: the rest passes through;
	// ended, when the list answer could not be filtered: the rest is
	// dropped.
	done, ended bool
	// err is the source's error (io.EOF at its end), returned once in and
	// out are drained.
	err error
}

// sseReadSize is the least free space a read from the backend gets.
const sseReadSize = 4 << 10

// Read implements io.Reader.
func (s *sseFilter) Read(p []byte) (int, error) {
	for {
		if len(s.out) > 0 {
			n := copy(p, s.out)
			s.out = s.out[n:]
			return n, nil
		}
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			if len(s.in) > 0 {
				s.out, s.in = s.in, nil
				continue
			}
			return s.src.Read(p)
		}
		s.fill()
	}
}

// Close implements io.Closer; it recycles the buffers.
func (s *sseFilter) Close() error {
	for _, b := range []*[]byte{&s.in, &s.outBuf, &s.data, &s.msg} {
		putBuffer(*b)
		*b = nil
	}
	s.out = nil
	return s.src.Close()
}

// fill reads from the backend and moves the events that are complete
// from in to out.
func (s *sseFilter) fill() {
	switch {
	case s.in == nil:
		s.in = getBuffer(sseReadSize)
	case cap(s.in)-len(s.in) < sseReadSize:
		s.in = slices.Grow(s.in, len(s.in)+sseReadSize)
	}
	n, err := s.src.Read(s.in[len(s.in):cap(s.in)])
	s.in = s.in[:len(s.in)+n]
	if cap(s.outBuf) < len(s.in) {
		putBuffer(s.outBuf)
		s.outBuf = getBuffer(len(s.in))
	}
	s.outBuf = s.outBuf[:0]
	consumed := 0
	for !s.done {
		end, resume, clean := nextEvent(s.in, s.scan, s.clean, err != nil)
		if end < 0 {
			s.scan, s.clean = resume, clean
			break
		}
		s.event(s.in[consumed:end])
		consumed, s.scan, s.clean = end, end, end
	}
	if err != nil && !s.done && consumed < len(s.in) {
		// The stream ended inside an event, which clients discard; it
		// is filtered all the same, in case one does not.
		s.event(s.in[consumed:])
		consumed = len(s.in)
	}
	switch {
	case s.ended:
		s.in = s.in[:0]
	case s.done:
		// The rest of what was read goes out after the rewritten event.
		s.outBuf = append(s.outBuf, s.in[consumed:]...)
		s.in = s.in[:0]
	default:
		rest := copy(s.in, s.in[consumed:])
		s.in = s.in[:rest]
		s.scan -= consumed
		s.clean -= consumed
		if len(s.in) > maxListBytes {
			// An event this large is not passed on unfiltered.
			s.failEvent(nil)
		}
	}
	s.out = s.outBuf
	if err != nil && s.err == nil {
		s.err = err
	}
}

// failEvent replaces an event that may hold the list answer and cannot be
// filtered (ev: its other lines, nil for none) with an error answer to the
// list request, and ends the stream after it: what follows might be the
// list answer.
func (s *sseFilter) failEvent(ev []byte) {
	if s.f.id != nil {
		s.outBuf = appendEventData(s.outBuf, ev,
			rpcErrorBody(s.f.id, rpcInternalError, "Internal error: the gateway could not filter the list answer"))
	}
	s.in = s.in[:0]
	s.done, s.ended = true, true
	s.err = io.EOF
}

// event passes one complete event on, rewritten when it is the list
// answer.
func (s *sseFilter) event(ev []byte) {
	data, ok := s.eventData(ev)
	if !ok {
		s.outBuf = append(s.outBuf, ev...)
		return
	}
	if cap(s.msg) < len(data) {
		putBuffer(s.msg)
		s.msg = getBuffer(len(data))
	}
	msg, matched, err := s.f.filterMessage(data, s.msg[:0])
	s.msg = msg[:0]
	switch {
	case err != nil && s.f.id == nil:
		// Not JSON, so not a message any client could use: in a
		// resumed stream, where any response may be a list, it is left
		// out rather than passed on unfiltered.
	case err != nil:
		s.failEvent(ev)
	case !matched:
		s.outBuf = append(s.outBuf, ev...)
	default:
		s.outBuf = appendEventData(s.outBuf, ev, msg)
		// Only the one answer is filtered; a resumed stream may replay
		// several.
		s.done = s.f.id != nil
	}
}

// eventData returns the data of an event; ok is false for an event
// without data lines.
func (s *sseFilter) eventData(ev []byte) (data []byte, ok bool) {
	lines := 0
	for rest := ev; len(rest) > 0; {
		line, next := cutLine(rest)
		rest = next
		value, isData := dataValue(line)
		if !isData {
			continue
		}
		lines++
		switch lines {
		case 1:
			data = value
		case 2:
			s.data = append(append(append(s.data[:0], data...), '\n'), value...)
			data = s.data
		default:
			s.data = append(append(s.data, '\n'), value...)
			data = s.data
		}
	}
	return data, lines > 0
}

// appendEventData appends an event with the non-data lines of ev and data
// as its data.
func appendEventData(dst, ev, data []byte) []byte {
	for rest := ev; len(rest) > 0; {
		line, next := cutLine(rest)
		rest = next
		if _, isData := dataValue(line); isData || len(line) == 0 {
			continue
		}
		dst = append(append(dst, line...), '\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		dst = append(append(append(dst, "data: "...), data[:i]...), '\n')
		data = data[i+1:]
	}
	dst = append(append(append(dst, "data: "...), data...), '\n')
	return append(dst, '\n')
}

// dataValue returns the value of a "data" field line.
func dataValue(line []byte) ([]byte, bool) {
	const field = "data"
	if len(line) < len(field) || string(line[:len(field)]) != field {
		return nil, false
	}
	rest := line[len(field):]
	switch {
	case len(rest) == 0:
		return rest, true
	case rest[0] != ':':
		return nil, false
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, true
}

// cutLine splits b after its first line: the line without its ending, and
// the rest. A line without an ending is the whole of b.
func cutLine(b []byte) (line, rest []byte) {
	n, term := lineEnd(b)
	if n < 0 {
		return b, nil
	}
	return b[:n], b[n+term:]
}

// lineEnd finds the end of the first line of b: its length and the length
// of its ending (CRLF, LF or CR); n is -1 when b holds no line ending.
func lineEnd(b []byte) (n, term int) {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		if cr+1 < len(b) && b[cr+1] == '\n' {
			return cr, 2
		}
		return cr, 1
	}
	if lf >= 0 {
		return lf, 1
	}
	return -1, 0
}

// nextEvent finds the first event of b, reading lines from the line that
// starts at from, knowing that b[from:clean] holds no line ending. It
// returns the offset just past the blank line that ends the event, or -1,
// the start of the line that has not ended yet and how far that line is
// known to hold no ending. A CR at the very end of b may be the first half
// of a CRLF: it ends a line only when atEOF.
func nextEvent(b []byte, from, clean int, atEOF bool) (end, resume, cleanTo int) {
	i := from
	for i < len(b) {
		j := max(i, clean)
		n, term := lineEnd(b[j:])
		if n < 0 {
			return -1, i, len(b)
		}
		n += j - i
		if term == 1 && b[i+n] == '\r' && i+n+1 == len(b) && !atEOF {
			return -1, i, i + n
		}
		next := i + n + term
		if n == 0 {
			return next, next, next
		}
		i = next
	}
	return -1, i, i
}
